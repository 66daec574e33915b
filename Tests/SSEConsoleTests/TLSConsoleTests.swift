import Foundation
import SSETestSupport
import Testing

/// `sse-console --tls-cert --tls-key`: https with a certificate made at test time, checked with
/// curl (which offers `h2` and `http/1.1` by ALPN and verifies the certificate), and the errors a
/// file that cannot serve gets at start.
@Suite(.timeLimit(.minutes(1)))
struct TLSConsoleTests {
    @Test func https_negotiatesHTTP11ByALPN_andStreamsEvents() async throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        let console = try ConsoleProcess.start(["--no-tui", "--port", "0", "--tls-cert", certificate.certificate, "--tls-key", certificate.key])
        defer { console.killIfRunning() }
        let (scheme, port) = try await console.listening()
        #expect(scheme == "https")
        let url = "https://127.0.0.1:\(port)"

        let stream = try ChildProcess.launch(["curl", "-sSvN", "--cacert", certificate.certificate, "\(url)/connect?id=tls"])
        defer { stream.terminate() }
        _ = try await stream.waitForLine { $0.hasPrefix(": connected tls") }
        #expect(stream.stderrText.contains("ALPN: server accepted http/1.1"), "\(stream.stderrText)")

        let publish = try ChildProcess.launch([
            "curl", "-sS", "--cacert", certificate.certificate, "-X", "POST", "--data", "over tls", "\(url)/broadcast?type=secure",
        ])
        _ = try await publish.waitForLine { $0.contains(#""delivered":1"#) }
        #expect(publish.waitForExit() == 0)
        _ = try await stream.waitForLine { $0 == "event: secure" }
        _ = try await stream.waitForLine { $0 == "data: over tls" }

        kill(console.pid, SIGTERM)
        #expect(try await console.waitForExit(within: .seconds(10)) == 0)
    }

    @Test func sighup_reloadsTheFiles_forNewConnections_andKeepsTheOldPairWhenTheNewCannotServe() async throws {
        let first = try TestCertificate.make()
        let second = try TestCertificate.make()
        let served = try TestCertificate.make()  // the files the console reads: first's, then second's
        defer { [first, second, served].forEach { $0.remove() } }
        func install(_ certificate: TestCertificate) throws {
            for (from, to) in [(certificate.certificate, served.certificate), (certificate.key, served.key)] {
                try FileManager.default.removeItem(atPath: to)
                try FileManager.default.copyItem(atPath: from, toPath: to)
            }
        }
        try install(first)
        let console = try ConsoleProcess.start(["--no-tui", "--port", "0", "--tls-cert", served.certificate, "--tls-key", served.key])
        defer { console.killIfRunning() }
        let url = "https://127.0.0.1:\(try await console.listening().port)"
        func healthz(trusting certificate: TestCertificate) throws -> Int32 {
            try ChildProcess.launch(["curl", "-sS", "-o", "/dev/null", "--cacert", certificate.certificate, "\(url)/healthz"]).waitForExit()
        }
        let stream = try ChildProcess.launch(["curl", "-sSN", "--cacert", first.certificate, "\(url)/connect?id=before"])
        defer { stream.terminate() }
        _ = try await stream.waitForLine { $0.hasPrefix(": connected before") }

        try install(second)
        kill(console.pid, SIGHUP)
        try await console.waitForStandardError(containing: "tls: certificate reloaded")
        #expect(try healthz(trusting: second) == 0)
        #expect(try healthz(trusting: first) != 0)

        // A broken pair is refused with its reason; the second stays in use.
        try "not a certificate\n".write(toFile: served.certificate, atomically: true, encoding: .utf8)
        kill(console.pid, SIGHUP)
        try await console.waitForStandardError(containing: "tls: certificate not reloaded")
        #expect(console.standardError.contains("holds no PEM certificate"))
        #expect(try healthz(trusting: second) == 0)

        // The stream accepted with the first certificate is still open.
        let publish = try ChildProcess.launch(["curl", "-sS", "--cacert", second.certificate, "-X", "POST", "--data", "still here", "\(url)/broadcast"])
        #expect(publish.waitForExit() == 0)
        _ = try await stream.waitForLine { $0 == "data: still here" }
        kill(console.pid, SIGTERM)
        #expect(try await console.waitForExit(within: .seconds(10)) == 0)
    }

    @Test func unusableFiles_exit1_withTheReason() async throws {
        let certificate = try TestCertificate.make()
        let other = try TestCertificate.make()
        let expired = try TestCertificate.make(days: -1)
        defer { [certificate, other, expired].forEach { $0.remove() } }
        let missing = certificate.directory + "/missing.pem"
        let cases: [(certificate: String, key: String, message: String)] = [
            (missing, certificate.key, "--tls-cert: cannot read \(missing)"),
            (certificate.certificate, missing, "--tls-key: cannot read \(missing)"),
            (certificate.key, certificate.key, "holds no PEM certificate"),
            (certificate.certificate, certificate.certificate, "holds no PEM private key"),
            (certificate.certificate, other.key, "is not the private key of the certificate"),
            (expired.certificate, expired.key, "expired on"),
        ]
        for entry in cases {
            let console = try ConsoleProcess.start(["--no-tui", "--port", "0", "--tls-cert", entry.certificate, "--tls-key", entry.key])
            defer { console.killIfRunning() }
            #expect(try await console.waitForExit(within: .seconds(10)) == 1, "\(entry.message)")
            #expect(console.standardError.contains(entry.message), "\(console.standardError)")
        }
    }
}
