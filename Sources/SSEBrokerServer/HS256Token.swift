import Crypto
import Foundation
import SSEBroker

/// The claims every token of this server may carry to bound its validity.
protocol TimeBoundClaims: Decodable {
    /// Expiry, seconds since 1970.
    var exp: Double? { get }
    /// Not before, seconds since 1970.
    var nbf: Double? { get }
}

/// A JSON Web Token (RFC 7519) signed with HMAC-SHA256, checked the one strict way every token of
/// this server is — subscriber tokens (``SubscriberTokenVerifier``) and publisher tokens
/// (``PublisherTokenVerifier``) alike.
///
/// The header must say `"alg":"HS256"` (no `none`, no algorithm confusion) and carry no `crit`
/// extensions; the signature is checked in constant time before the claims are even decoded; `exp`
/// and `nbf` are honoured without leeway. Synchronous: it runs on the connection's event loop.
struct HS256Token: Sendable {
    /// The longest token considered, in bytes.
    var maxTokenBytes = 4096
    private let key: SymmetricKey

    /// - Parameter purpose: what the secret is for, in the error (`subscriber token`).
    /// - Throws: ``BrokerError/invalidConfiguration(_:)`` for a secret under 32 bytes (256 bits, as
    ///   RFC 7518 §3.2 requires for HS256).
    init(secret: some Collection<UInt8>, purpose: String) throws(BrokerError) {
        guard secret.count >= 32 else {
            throw .invalidConfiguration("the \(purpose) secret is \(secret.count) bytes; HS256 needs at least 32 (256 bits)")
        }
        self.key = SymmetricKey(data: Array(secret))
    }

    /// Signs `claims`. - Throws: the encoder's error; a token is never signed over anything but its claims.
    func sign(_ claims: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        // Sorted keys: the same claims always give the same token.
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let payload = try encoder.encode(claims)
        let signingInput = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + Base64URL.encode(Array(payload))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: self.key)
        return signingInput + "." + Base64URL.encode(Array(mac))
    }

    /// Checks `token` and returns its claims and expiry.
    /// - Parameter shape: the claims expected, for the error when they do not decode.
    func verify<Claims: TimeBoundClaims>(
        _ token: some StringProtocol,
        as _: Claims.Type,
        shape: String,
        now: Date
    ) throws(SubscriberTokenError) -> (claims: Claims, expiresAt: Date?) {
        let bytes = Array(token.utf8)
        guard bytes.count <= self.maxTokenBytes else {
            throw .malformed("it is \(bytes.count) bytes long; the limit is \(self.maxTokenBytes)")
        }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("a JWT has three dot-separated parts, this one has \(parts.count)") }
        guard let headerBytes = Base64URL.decode(parts[0]), let payloadBytes = Base64URL.decode(parts[1]),
            let signature = Base64URL.decode(parts[2])
        else { throw .malformed("a part is not base64url") }

        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(headerBytes))
        } catch {
            throw .malformed("the header is not a JSON object with a string \"alg\"")
        }
        guard header.alg == "HS256" else { throw .unsupportedAlgorithm(header.alg) }
        guard header.crit == nil else { throw .malformed("the header has critical extensions this server does not know") }

        // The signature covers the encoded header and payload exactly as sent.
        let signingInput = bytes[..<(parts[0].count + 1 + parts[1].count)]
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: Array(signingInput), using: self.key) else {
            throw .badSignature
        }

        let claims: Claims
        do {
            claims = try JSONDecoder().decode(Claims.self, from: Data(payloadBytes))
        } catch {
            throw .malformed("the claims are not a JSON object with \(shape)")
        }
        let expiresAt = try claims.exp.map { value throws(SubscriberTokenError) -> Date in
            guard value.isFinite else { throw .malformed("\"exp\" is not a number") }
            return Date(timeIntervalSince1970: value)
        }
        if let expiresAt, expiresAt <= now { throw .expired(expiresAt) }
        if let notBefore = claims.nbf, notBefore.isFinite {
            let date = Date(timeIntervalSince1970: notBefore)
            if date > now { throw .notYetValid(date) }
        }
        return (claims, expiresAt)
    }

    /// Validates the topics of a claim. - Throws: ``SubscriberTokenError/malformed(_:)`` naming the claim.
    static func topics(_ names: [String], claim: String) throws(SubscriberTokenError) -> [Topic] {
        var topics: [Topic] = []
        for name in names {
            do {
                topics.append(try Topic(name))
            } catch {
                throw .malformed("the \"\(claim)\" claim has an invalid topic \(Topic.quotedForMessage(name))")
            }
        }
        guard Set(topics).count <= Topic.maxPerConnection else {
            throw .malformed("the \"\(claim)\" claim has more than \(Topic.maxPerConnection) topics")
        }
        return topics
    }

    private struct Header: Decodable {
        var alg: String
        var crit: [String]?
    }
}
