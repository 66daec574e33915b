#if Hummingbird
import Hummingbird
import HummingbirdHTTP2
import HummingbirdTesting
import SSEBroker
import SSEBrokerHummingbird
import SSETestSupport
import Testing

/// The Hummingbird mount served by Hummingbird's own TLS + HTTP/2 server (`.http2Upgrade`): the
/// adapter writes through Hummingbird's response body writer, whatever the protocol. The client is
/// Python's `h2` over TLS (ALPN `h2`).
@Suite(.timeLimit(.minutes(1)))
struct HummingbirdHTTP2Tests {
    @Test func overTLSAndH2_streamsAndPublishes() async throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        let broker = try Broker(configuration: .predictable, logger: quietLogger)
        let router = Router(context: BasicBrokerRequestContext.self)
        router.addSSEBroker(broker, connect: "/connect", broadcast: "/broadcast")
        let tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: certificate.key, format: .pem))
        )
        let app = Application(
            router: router,
            server: try .http2Upgrade(tlsConfiguration: tls),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            logger: quietLogger
        )
        try await app.test(.live) { client in
            let h2 = try await HTTP2TestClient.connect(port: try #require(client.port), tls: true)
            defer { h2.close() }
            // Streams never end by themselves; the server's graceful shutdown waits for them.
            defer { broker.shutdown() }
            for id in ["a", "b", "c"] {
                #expect(try await h2.open(id) == 200)
            }
            let accepted = try await h2.run("post /broadcast over-h2", answer: "response ")
            #expect(accepted.hasPrefix("response 202 ") && accepted.contains(#""delivered":3"#), "\(accepted)")
            try await h2.waitForEvents(1)
            let report = try await h2.report()
            #expect(Set(["a", "b", "c"].compactMap { report.streams[$0]?.events }) == [["1"]])
        }
    }
}
#endif
