import Foundation
import SSETestSupport
import Testing

/// `sse-console --tls-cert --tls-key`: https with a certificate made at test time, checked with
/// curl (which offers `h2` and `http/1.1` by ALPN and verifies the certificate), and the errors a
/// file that cannot serve gets at start.
@Suite(.timeLimit(.minutes(1)))
struct TLSConsoleTests {
    @Test(arguments: [(["--port", "0"], "h2"), (["--port", "0", "--no-http2"], "http/1.1")])
    func https_negotiatesByALPN_andStreamsEvents(options: [String], protocolName: String) async throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        let console = try ConsoleProcess.start(["--no-tui"] + options + ["--tls-cert", certificate.certificate, "--tls-key", certificate.key])
        defer { console.killIfRunning() }
        let (scheme, port) = try await console.listening()
        #expect(scheme == "https")
        let url = "https://127.0.0.1:\(port)"

        let stream = try ChildProcess.launch(["curl", "-sSvN", "--cacert", certificate.certificate, "\(url)/connect?id=tls"])
        defer { stream.terminate() }
        _ = try await stream.waitForLine { $0.hasPrefix(": connected tls") }
        #expect(stream.stderrText.contains("ALPN: server accepted \(protocolName)"), "\(stream.stderrText)")

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

    @Test func h2c_servesPriorKnowledgeHTTP2_andHTTP11_onOnePort() async throws {
        let console = try ConsoleProcess.start(["--no-tui", "--port", "0", "--h2c"])
        defer { console.killIfRunning() }
        let (scheme, port) = try await console.listening()
        #expect(scheme == "http")
        for (flag, version) in [("--http2-prior-knowledge", "2"), ("--http1.1", "1.1")] {
            let probe = try ChildProcess.launch(["curl", "-sS", flag, "-o", "/dev/null", "-w", "%{http_version} %{http_code}\n", "http://127.0.0.1:\(port)/healthz"])
            #expect(try await probe.waitForLine { _ in true } == "\(version) 200")
        }
        kill(console.pid, SIGTERM)
        #expect(try await console.waitForExit(within: .seconds(10)) == 0)
    }

    @Test func http2Options_thatContradict_areRefusedAtStart() async throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        for (options, message) in [
            (["--h2c", "--no-http2"], "--h2c and --no-http2 contradict each other"),
            (["--h2c", "--tls-cert", certificate.certificate, "--tls-key", certificate.key], "--h2c is for plain http"),
            (["--max-streams", "0"], "--max-streams must be between 1 and 10000 (got 0)"),
        ] {
            let console = try ConsoleProcess.start(["--no-tui", "--port", "0"] + options)
            defer { console.killIfRunning() }
            #expect(try await console.waitForExit(within: .seconds(10)) != 0)
            try await console.waitForStandardError(containing: message)
        }
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
