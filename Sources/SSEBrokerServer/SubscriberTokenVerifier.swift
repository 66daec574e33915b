import Foundation
import HTTPTypes
import SSEBroker

/// Verifies subscriber tokens: JSON Web Tokens (RFC 7519) signed with HMAC-SHA256 (`HS256`) under
/// a shared secret, whose `sub` claim is the client id they may subscribe as, with an optional
/// `exp` (the stream is closed at that moment), `nbf`, and `topics` (the topics and patterns the
/// bearer may subscribe to).
///
/// A token is accepted from, in this order: an `Authorization: Bearer` header, the cookie
/// ``cookieName``, or the ``queryParameter`` (a browser's `EventSource` cannot set headers).
///
/// Verification is deliberately strict and synchronous (it runs on the connection's event loop):
/// the header must say `"alg":"HS256"` (no `none`, no algorithm confusion) and carry no `crit`
/// extensions, the signature is checked in constant time before the claims are even decoded, and
/// `exp`/`nbf` are honoured without leeway (``PublisherTokenVerifier`` shares the code).
public struct SubscriberTokenVerifier: Sendable {
    /// The cookie a token may come in. Default `sse_token`.
    public var cookieName: String
    /// The query parameter a token may come in. Default `token`.
    public var queryParameter: String
    /// The longest token considered, in bytes. Default 4 KiB.
    public var maxTokenBytes: Int {
        get { self.token.maxTokenBytes }
        set { self.token.maxTokenBytes = newValue }
    }
    private var token: HS256Token

    /// - Parameter secret: the HMAC key, at least 32 bytes (256 bits, as RFC 7518 §3.2 requires for HS256).
    /// - Throws: ``BrokerError/invalidConfiguration(_:)`` for a shorter secret.
    public init(secret: some Collection<UInt8>, cookieName: String = "sse_token", queryParameter: String = "token")
        throws(BrokerError)
    {
        self.token = try HS256Token(secret: secret, purpose: "subscriber token")
        self.cookieName = cookieName
        self.queryParameter = queryParameter
    }

    /// A secret given as text (its UTF-8 bytes).
    public init(secret: String, cookieName: String = "sse_token", queryParameter: String = "token") throws(BrokerError) {
        try self.init(secret: Array(secret.utf8), cookieName: cookieName, queryParameter: queryParameter)
    }

    /// Signs a token for `subject`, for servers that mint them (and for tests).
    /// - Parameter topics: the `topics` claim; `nil` leaves it out (any topic).
    /// - Throws: the encoder's error if the claims cannot be encoded; a token is never signed over
    ///   anything but its claims.
    public func makeToken(subject: String, expiresAt: Date? = nil, issuedAt: Date = Date(), topics: [String]? = nil) throws
        -> String
    {
        try self.token.sign(
            MintedClaims(
                exp: expiresAt.map { Int($0.timeIntervalSince1970.rounded(.up)) },
                iat: Int(issuedAt.timeIntervalSince1970),
                sub: subject,
                topics: topics
            )
        )
    }

    /// Checks `token` and returns its subject, expiry and topics.
    public func verify(_ token: some StringProtocol, now: Date = Date()) throws(SubscriberTokenError) -> SubscriberToken {
        let (claims, expiresAt) = try self.token.verify(
            token,
            as: Claims.self,
            shape: "a string \"sub\", numeric \"exp\"/\"nbf\" and an array of strings \"topics\"",
            now: now
        )
        guard let subject = claims.sub else { throw .malformed("the token has no \"sub\" (client id) claim") }
        do {
            try Validation.validateClientID(subject)
        } catch {
            throw .invalidSubject("\(error)")
        }
        let topics = try claims.topics.map { names throws(SubscriberTokenError) in
            try HS256Token.topics(names, claim: "topics")
        }
        return SubscriberToken(subject: subject, expiresAt: expiresAt, topics: topics)
    }

    /// The token a request presents, if any: `Authorization: Bearer`, else the cookie, else the query parameter.
    public func credential(in request: HTTPRequest, query: QueryParameters) -> String? {
        if let bearer = bearerToken(in: request.headerFields) { return String(bearer) }
        if let cookie = Self.cookie(named: self.cookieName, in: request.headerFields) { return cookie }
        if let parameter = query[self.queryParameter], !parameter.isEmpty { return parameter }
        return nil
    }

    /// The value of cookie `name` in the `Cookie` headers (RFC 6265 §5.4: `a=1; b=2`).
    static func cookie(named name: String, in headers: HTTPFields) -> String? {
        for header in headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name else { continue }
                var value = parts[1].trimmingCharacters(in: .whitespaces)
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                    value = String(value.dropFirst().dropLast())
                }
                if !value.isEmpty { return value }
            }
        }
        return nil
    }

    private struct MintedClaims: Encodable {
        var exp: Int?
        var iat: Int
        var sub: String
        var topics: [String]?
    }

    private struct Claims: TimeBoundClaims {
        var sub: String?
        var exp: Double?
        var nbf: Double?
        var topics: [String]?
    }
}
