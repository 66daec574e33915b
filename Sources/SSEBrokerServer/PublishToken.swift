import Crypto
import HTTPTypes
import SSEBroker

/// The shared secret producers present as `Authorization: Bearer <secret>`.
///
/// Only a SHA-256 digest of the secret is kept, and a presented token is compared digest to digest
/// in constant time: the time a comparison takes depends on neither the secret nor how much of it
/// a guess got right (nor its length).
public struct PublishToken: Sendable {
    private let digest: [UInt8]

    /// - Throws: ``BrokerError/invalidConfiguration(_:)`` for an empty secret or one with surrounding
    ///   whitespace (a token read from a file with its newline would never match).
    public init(_ secret: String) throws(BrokerError) {
        guard !secret.isEmpty else { throw .invalidConfiguration("the publish token is empty") }
        guard secret.trimmingCharacters(in: .whitespacesAndNewlines) == secret, !secret.contains(where: \.isWhitespace)
        else { throw .invalidConfiguration("the publish token contains whitespace") }
        self.digest = Array(SHA256.hash(data: Array(secret.utf8)))
    }

    /// Whether `presented` is the secret.
    public func accepts(_ presented: some StringProtocol) -> Bool {
        let other = Array(SHA256.hash(data: Array(presented.utf8)))
        return constantTimeEqual(self.digest, other)
    }
}

/// Compares two byte strings of equal length without an early exit.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices {
        difference |= a[index] ^ b[index]
    }
    return difference == 0
}

/// Finds the token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive,
/// RFC 6750 §2.1). Several `Authorization` headers are ambiguous and give `nil`.
func bearerToken(in headers: HTTPFields) -> Substring? {
    let values = headers[values: .authorization]
    guard values.count == 1, let value = values.first else { return nil }
    let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
    guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
    let token = parts[1].drop { $0 == " " }
    return token.isEmpty ? nil : token
}
