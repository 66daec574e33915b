import ArgumentParser
import Foundation
import NIOSSL

/// `--tls-cert` and `--tls-key`: https on the embedded server, checked at start so that a file that
/// cannot serve is an error with its reason (exit code 1), not a handshake that fails later.
struct TLSOptions: ParsableArguments {
    @Option(
        name: .customLong("tls-cert"),
        help: ArgumentHelp("PEM certificate to serve https with (a chain: the server's certificate first); needs --tls-key.", valueName: "file")
    )
    var certificate: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("PEM private key of --tls-cert.", valueName: "file"))
    var key: String?

    func validate() throws {
        if (self.certificate == nil) != (self.key == nil) {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
    }

    /// The server's TLS configuration, or `nil` without the options. It names no ALPN protocols:
    /// the server offers `h2` and `http/1.1` (``HTTP2ConsoleOptions``).
    /// - Throws: ``TLSSetupError`` saying which file and why: unreadable, not PEM, a certificate
    ///   expired or not yet valid at `now`, or a key that does not match the certificate.
    func configuration(now: Date = Date()) throws(TLSSetupError) -> TLSConfiguration? {
        guard let certificatePath = self.certificate, let keyPath = self.key else { return nil }
        for (flag, path) in [("--tls-cert", certificatePath), ("--tls-key", keyPath)] where !FileManager.default.isReadableFile(atPath: path) {
            throw TLSSetupError("\(flag): cannot read \(path)")
        }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw TLSSetupError("--tls-cert: \(certificatePath) holds no PEM certificate (\(error))")
        }
        guard let leaf = chain.first else { throw TLSSetupError("--tls-cert: \(certificatePath) holds no PEM certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw TLSSetupError("--tls-key: \(keyPath) holds no PEM private key (\(error))")
        }
        let validFrom = Date(timeIntervalSince1970: TimeInterval(leaf.notValidBefore))
        let validUntil = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))
        if validUntil < now {
            throw TLSSetupError("--tls-cert: the certificate in \(certificatePath) expired on \(Self.format(validUntil))")
        }
        if validFrom > now {
            throw TLSSetupError("--tls-cert: the certificate in \(certificatePath) is not valid before \(Self.format(validFrom))")
        }
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key)
        )
        // A key that is not the certificate's is refused here, where the context checks the pair.
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError("--tls-key: \(keyPath) is not the private key of the certificate in \(certificatePath) (\(error))")
        }
        return configuration
    }

    private static func format(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        return formatter.string(from: date)
    }
}

/// Why the TLS files cannot serve; `sse-console` prints it and exits with code 1.
struct TLSSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
