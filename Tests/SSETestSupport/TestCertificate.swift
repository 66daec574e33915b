import Foundation

/// A self-signed certificate and its key (P-256, `CN=localhost`, `subjectAltName` 127.0.0.1),
/// made at test time with the `openssl` command in a directory of its own.
public struct TestCertificate: Sendable {
    public let directory: String
    /// The certificate, PEM.
    public var certificate: String { self.directory + "/cert.pem" }
    /// Its private key, PEM.
    public var key: String { self.directory + "/key.pem" }

    /// - Parameter days: how long it is valid from now; negative for one that has expired.
    public static func make(days: Int = 1) throws -> TestCertificate {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sse-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let made = TestCertificate(directory: directory)
        try run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", made.key])
        let request = directory + "/request.csr"
        try run(["openssl", "req", "-new", "-key", made.key, "-subj", "/CN=localhost", "-out", request])
        let extensions = directory + "/san.ext"
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(toFile: extensions, atomically: true, encoding: .utf8)
        // `x509 -req -days` takes a negative count too, which makes an expired certificate.
        try run([
            "openssl", "x509", "-req", "-in", request, "-signkey", made.key, "-days", String(days), "-extfile", extensions,
            "-out", made.certificate,
        ])
        return made
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    private static func run(_ arguments: [String]) throws {
        let child = try ChildProcess.launch(arguments)
        let status = child.waitForExit()
        guard status == 0 else {
            throw ChildProcessError.failed("\(arguments.prefix(2).joined(separator: " ")) exited \(status): \(child.stderrText)")
        }
    }
}
