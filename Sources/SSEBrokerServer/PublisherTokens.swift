import Foundation

import SSEBroker

/// A verified publisher token.
public struct PublisherToken: Sendable, Equatable {
    /// Who it was issued to (its `sub` claim, if any), for logs.
    public var subject: String?
    /// The event types it may publish (its `publish` claim): exact types or patterns (`orders.*`);
    /// an untyped event has the type `message`.
    public var allowedTypes: [Topic]
    /// When it stops being valid (its `exp` claim).
    public var expiresAt: Date?

    public init(subject: String? = nil, allowedTypes: [Topic], expiresAt: Date? = nil) {
        self.subject = subject
        self.allowedTypes = allowedTypes
        self.expiresAt = expiresAt
    }

    /// Whether it allows publishing an event of `type` (`nil` or empty: `message`).
    public func allows(_ type: String?) -> Bool {
        self.allowedTypes.contains { $0.matches(type) }
    }
}

/// Verifies publisher tokens: JSON Web Tokens signed with HMAC-SHA256 (`HS256`) under their own
/// secret (not the subscribers'), presented as `Authorization: Bearer <token>` on `POST /broadcast`,
/// whose `publish` claim lists the event types the bearer may publish. Accepted beside the single
/// ``PublishToken``, which may publish anything.
///
/// As strict as ``SubscriberTokenVerifier`` — it is the same code (pinned `HS256`, no `crit`,
/// constant-time MAC before the claims are decoded, `exp`/`nbf` without leeway).
public struct PublisherTokenVerifier: Sendable {
    private var token: HS256Token

    /// The longest token considered, in bytes. Default 4 KiB.
    public var maxTokenBytes: Int {
        get { self.token.maxTokenBytes }
        set { self.token.maxTokenBytes = newValue }
    }

    /// - Parameter secret: the HMAC key, at least 32 bytes.
    /// - Throws: ``BrokerError/invalidConfiguration(_:)`` for a shorter secret.
    public init(secret: some Collection<UInt8>) throws(BrokerError) {
        self.token = try HS256Token(secret: secret, purpose: "publisher token")
    }

    /// A secret given as text (its UTF-8 bytes).
    public init(secret: String) throws(BrokerError) {
        try self.init(secret: Array(secret.utf8))
    }

    /// Signs a token that may publish `types`, for servers that mint them (and for tests).
    public func makeToken(publish types: [String], subject: String? = nil, expiresAt: Date? = nil, issuedAt: Date = Date()) throws
        -> String
    {
        try self.token.sign(
            MintedClaims(
                exp: expiresAt.map { Int($0.timeIntervalSince1970.rounded(.up)) },
                iat: Int(issuedAt.timeIntervalSince1970),
                publish: types,
                sub: subject
            )
        )
    }

    /// Checks `token` and returns what it may publish.
    public func verify(_ token: some StringProtocol, now: Date = Date()) throws(SubscriberTokenError) -> PublisherToken {
        let (claims, expiresAt) = try self.token.verify(
            token,
            as: Claims.self,
            shape: "an array of strings \"publish\", numeric \"exp\"/\"nbf\" and a string \"sub\"",
            now: now
        )
        guard let publish = claims.publish else { throw .malformed("the token has no \"publish\" claim (the types it may publish)") }
        return PublisherToken(subject: claims.sub, allowedTypes: try HS256Token.topics(publish, claim: "publish"), expiresAt: expiresAt)
    }

    private struct MintedClaims: Encodable {
        var exp: Int?
        var iat: Int
        var publish: [String]
        var sub: String?
    }

    private struct Claims: TimeBoundClaims {
        var publish: [String]?
        var sub: String?
        var exp: Double?
        var nbf: Double?
    }
}

/// What a producer's credentials allow it to publish.
public enum PublisherGrant: Sendable, Equatable {
    /// Any event: no credentials are required, or the single publish token was presented.
    case anything
    /// The events a publisher token allows.
    case token(PublisherToken)

    /// - Throws: ``SecurityRefusal`` with ``BrokerError/forbidden(_:)`` naming the type when the
    ///   credentials do not allow publishing an event of `type`.
    public func authorize(type: String?) throws(SecurityRefusal) {
        guard case .token(let token) = self, !token.allows(type) else { return }
        let name = type.flatMap { $0.isEmpty ? nil : $0 } ?? Topic.untypedEventType
        throw SecurityRefusal(
            error: .forbidden("the publisher token does not allow publishing events of type \(Topic.quotedForMessage(name))"),
            challenge: SecurityRefusal.realm
        )
    }
}
