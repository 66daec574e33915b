import Logging
import SSEBrokerServer
import ServiceLifecycle
import UnixSignals

/// On SIGHUP, reads `--tls-cert` and `--tls-key` again and serves new connections with them; open
/// connections keep the certificate they were accepted with. A pair that cannot serve (unreadable,
/// expired, mismatched) is logged and the certificate in use stays. Headless only: in the terminal
/// console SIGHUP means the terminal went away, and the console quits.
struct CertificateReloader: Service {
    let server: BrokerServer
    let options: TLSOptions

    func run() async {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let logger = Logger(label: "sse.tls")
        await cancelWhenGracefulShutdown {
            for await _ in hangups {
                do {
                    guard let configuration = try self.options.configuration() else { continue }
                    try self.server.useTLS(configuration)
                    logger.notice("tls: certificate reloaded; new connections use it", metadata: ["file": "\(self.options.certificate ?? "")"])
                } catch {
                    logger.error("tls: certificate not reloaded, the one in use stays: \(error)")
                }
            }
        }
    }
}
