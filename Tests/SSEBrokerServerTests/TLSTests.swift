#if TLS
import NIOPosix
import NIOSSL
import SSEBroker
import SSEBrokerServer
import SSETestSupport
import Testing

/// `BrokerServer.useTLS(_:)`: https, and a certificate rotation that applies to new connections
/// while open streams keep theirs. The client is curl, verifying against one certificate or the other.
@Suite(.timeLimit(.minutes(1)))
struct TLSTests {
    private static func configuration(_ certificate: TestCertificate) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: certificate.key, format: .pem))
        )
        configuration.applicationProtocols = ["http/1.1"]
        return configuration
    }

    /// `curl` verifying the server against `certificate`; returns its exit status and output.
    private static func curl(_ arguments: [String], trusting certificate: TestCertificate) async throws -> (status: Int32, output: String) {
        let child = try ChildProcess.launch(["curl", "-sS", "--cacert", certificate.certificate, "-w", "\n"] + arguments)
        let output = (try? await child.waitForLine { _ in true }) ?? ""
        return (child.waitForExit(), output)
    }

    @Test func rotation_newConnectionsGetTheNewCertificate_openStreamsKeepStreaming() async throws {
        let first = try TestCertificate.make()
        let second = try TestCertificate.make()
        defer { [first, second].forEach { $0.remove() } }
        let broker = try Broker(logger: quietLogger)
        let server = BrokerServer(broker: broker, port: 0, group: MultiThreadedEventLoopGroup.singleton, logger: quietLogger)
        try server.useTLS(Self.configuration(first))
        #expect(server.scheme == "https")
        let port = try #require(try await server.start().port)
        let url = "https://127.0.0.1:\(port)"

        let stream = try ChildProcess.launch(["curl", "-sSN", "--cacert", first.certificate, "\(url)/connect?id=kept"])
        defer { stream.terminate() }
        _ = try await stream.waitForLine { $0.hasPrefix(": connected kept") }

        try server.useTLS(Self.configuration(second))
        // A new connection is served with the second certificate: trusting only the first fails.
        #expect(try await Self.curl(["\(url)/healthz"], trusting: first).status != 0)
        let published = try await Self.curl(["-X", "POST", "--data", "after rotation", "\(url)/broadcast"], trusting: second)
        #expect(published.status == 0 && published.output.contains(#""delivered":1"#), "\(published)")
        // The stream opened before the rotation is still there and gets the event.
        _ = try await stream.waitForLine { $0 == "data: after rotation" }
        try await server.shutdown()
    }
}
#endif
