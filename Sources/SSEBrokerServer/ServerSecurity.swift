import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import SSEBroker

/// Who may publish and subscribe, from which browser origins, and how much of the server one peer
/// may hold. The default is the open broker of earlier versions, with the resource limits on.
///
/// ```swift
/// let security = ServerSecurity(
///     publishToken: try PublishToken("s3cret-for-producers"),
///     subscriberTokens: try SubscriberTokenVerifier(secret: hs256Secret),
///     publisherTokens: try PublisherTokenVerifier(secret: publisherSecret),
///     cors: try CORSPolicy(allowedOrigins: ["https://app.example.com"]),
///     limits: ServerLimits(maxClients: 10_000, maxConnectionsPerClientID: 8)
/// )
/// let server = BrokerServer(broker: broker, security: security)
/// ```
public struct ServerSecurity: Sendable {
    /// Required as `Authorization: Bearer …` on `POST /broadcast`; `nil` lets anyone publish.
    public var publishToken: PublishToken?
    /// Checks publisher tokens (JWTs whose `publish` claim lists the types they may publish) on
    /// `POST /broadcast`, accepted beside ``publishToken``; with either set, publishing needs one.
    public var publisherTokens: PublisherTokenVerifier?
    /// Checks subscriber tokens on `GET /connect`; `nil` lets anyone subscribe under any id.
    public var subscriberTokens: SubscriberTokenVerifier?
    /// Cross-origin access for browsers; `nil` sends no CORS headers and checks no `Origin`.
    public var cors: CORSPolicy?
    /// Connection, header and timing limits.
    public var limits: ServerLimits

    public init(
        publishToken: PublishToken? = nil,
        subscriberTokens: SubscriberTokenVerifier? = nil,
        publisherTokens: PublisherTokenVerifier? = nil,
        cors: CORSPolicy? = nil,
        limits: ServerLimits = ServerLimits()
    ) {
        self.publishToken = publishToken
        self.publisherTokens = publisherTokens
        self.subscriberTokens = subscriberTokens
        self.cors = cors
        self.limits = limits
    }

    /// A short description for status lines: `auth pub+sub`, `auth pub`, `auth sub` or `auth off`.
    public var authSummary: String {
        switch (self.publishToken != nil || self.publisherTokens != nil, self.subscriberTokens != nil) {
        case (true, true): "auth pub+sub"
        case (true, false): "auth pub"
        case (false, true): "auth sub"
        case (false, false): "auth off"
        }
    }
}

/// Bounds on what one peer, or all of them, can make the server hold.
public struct ServerLimits: Sendable, Equatable {
    /// Most event streams open at once; beyond it `GET /connect` gets `503` with `Retry-After`.
    /// `nil`: no limit.
    public var maxClients: Int?
    /// Most streams one client id may have open at once (tabs of one user); beyond it `429` with
    /// `Retry-After`. `nil`: no limit.
    public var maxConnectionsPerClientID: Int?
    /// Largest request line plus headers, in bytes; beyond it `431` and the connection is closed.
    /// Default 16 KiB.
    public var maxHeaderBytes: Int
    /// How long a connection may take to send a complete request head (from its accept, or from the
    /// previous response on a keep-alive connection): slow-loris requests get `408` and are closed.
    /// An idle keep-alive connection is closed quietly. Default 10 s.
    public var headerTimeout: Duration
    /// How long a `POST /broadcast` body may take to arrive after its head; beyond it `408` and the
    /// connection is closed. Default 30 s.
    public var bodyTimeout: Duration
    /// The `Retry-After` hint sent with `503` and `429`. Default 5 s.
    public var retryAfter: Duration
    /// Most new event streams accepted per second (a token bucket holding one second's worth);
    /// beyond it `GET /connect` gets `503` with `Retry-After`. `nil` (the default): no limit — one
    /// node registers 10,000 streams arriving within a second without delaying its events
    /// (BENCHMARKS.md, Storms); limit it when what a connect costs elsewhere (token checks, replay,
    /// an upstream) must be protected.
    public var maxConnectRate: Int?

    public init(
        maxClients: Int? = nil,
        maxConnectionsPerClientID: Int? = nil,
        maxHeaderBytes: Int = 16 << 10,
        headerTimeout: Duration = .seconds(10),
        bodyTimeout: Duration = .seconds(30),
        retryAfter: Duration = .seconds(5),
        maxConnectRate: Int? = nil
    ) {
        self.maxConnectRate = maxConnectRate
        self.maxClients = maxClients
        self.maxConnectionsPerClientID = maxConnectionsPerClientID
        self.maxHeaderBytes = maxHeaderBytes
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.retryAfter = retryAfter
    }

    /// Throws ``BrokerError/invalidConfiguration(_:)`` naming the first value out of range.
    public func validate() throws(BrokerError) {
        func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(BrokerError) {
            if !condition { throw .invalidConfiguration(message()) }
        }
        if let maxClients { try require(maxClients >= 1, "maxClients must be at least 1 (got \(maxClients))") }
        if let perID = self.maxConnectionsPerClientID {
            try require(perID >= 1, "maxConnectionsPerClientID must be at least 1 (got \(perID))")
        }
        // A browser's request head is rarely under 512 bytes; less would refuse everybody.
        try require(self.maxHeaderBytes >= 512, "maxHeaderBytes must be at least 512 (got \(self.maxHeaderBytes))")
        try require(self.headerTimeout > .zero, "headerTimeout must be positive (got \(self.headerTimeout))")
        try require(self.bodyTimeout > .zero, "bodyTimeout must be positive (got \(self.bodyTimeout))")
        try require(self.retryAfter >= .zero, "retryAfter must not be negative (got \(self.retryAfter))")
        if let rate = self.maxConnectRate { try require(rate >= 1, "maxConnectRate must be at least 1 (got \(rate))") }
    }

    /// `Retry-After` in whole seconds, rounded up.
    var retryAfterSeconds: Int64 {
        let (seconds, attoseconds) = self.retryAfter.components
        return seconds + (attoseconds > 0 ? 1 : 0)
    }
}

// MARK: Producers

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
func bearerToken(in headers: HTTPHeaders) -> Substring? {
    let values = headers[canonicalForm: "authorization"]
    guard values.count == 1, let value = values.first else { return nil }
    let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
    guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
    let token = parts[1].drop { $0 == " " }
    return token.isEmpty ? nil : token
}

// MARK: Subscribers

/// A verified subscriber token.
public struct SubscriberToken: Sendable, Equatable {
    /// The client id the token was issued for (its `sub` claim).
    public var subject: String
    /// When it stops being valid (its `exp` claim); the stream is closed then.
    public var expiresAt: Date?
    /// The topics it may subscribe to (its `topics` claim); `nil`: any. A connection that asks for
    /// none gets exactly these.
    public var topics: [Topic]?

    public init(subject: String, expiresAt: Date? = nil, topics: [Topic]? = nil) {
        self.subject = subject
        self.expiresAt = expiresAt
        self.topics = topics
    }
}

/// Why a subscriber token was refused.
public enum SubscriberTokenError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    case unsupportedAlgorithm(String)
    case badSignature
    case expired(Date)
    case notYetValid(Date)
    case invalidSubject(String)

    public var description: String {
        switch self {
        case .malformed(let reason): "malformed token: \(reason)"
        case .unsupportedAlgorithm(let alg): "unsupported token algorithm \"\(alg)\" (only HS256 is accepted)"
        case .badSignature: "the token's signature does not match"
        case .expired(let date): "the token expired at \(Self.format(date))"
        case .notYetValid(let date): "the token is not valid before \(Self.format(date))"
        case .invalidSubject(let reason): "the token's subject is not a valid client id: \(reason)"
        }
    }

    private static func format(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}

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
    public func credential(in head: HTTPRequestHead, query: QueryParameters) -> String? {
        if let bearer = bearerToken(in: head.headers) { return String(bearer) }
        if let cookie = Self.cookie(named: self.cookieName, in: head.headers) { return cookie }
        if let parameter = query[self.queryParameter], !parameter.isEmpty { return parameter }
        return nil
    }

    /// The value of cookie `name` in the `Cookie` headers (RFC 6265 §5.4: `a=1; b=2`).
    static func cookie(named name: String, in headers: HTTPHeaders) -> String? {
        for header in headers[canonicalForm: "cookie"] {
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

/// Unpadded base64url (RFC 4648 §5), as JWTs use it.
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        // One leftover character can never be valid; padding is not used in JWTs.
        guard text.count % 4 != 1 else { return nil }
        var standard: [UInt8] = []
        standard.reserveCapacity(text.count + 3)
        for byte in text {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                standard.append(byte)
            case UInt8(ascii: "-"): standard.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): standard.append(UInt8(ascii: "/"))
            default: return nil
            }
        }
        while standard.count % 4 != 0 { standard.append(UInt8(ascii: "=")) }
        return Data(base64Encoded: Data(standard)).map(Array.init)
    }
}

// MARK: Browsers

/// Cross-origin resource sharing for browser pages on other origins.
///
/// With an explicit list, a listed `Origin` is echoed in `Access-Control-Allow-Origin` (with
/// `Vary: Origin`) and credentials — the token cookie — are allowed; with `*`, any origin may read
/// but never with credentials (browsers refuse `*` with credentials, rightly). A request whose
/// `Origin` is not allowed is refused with `403`, so a page elsewhere cannot even make a simple
/// `POST /broadcast`. Preflight `OPTIONS` requests for both endpoints are answered with `204`.
public struct CORSPolicy: Sendable, Equatable {
    /// `nil` means any origin (`*`).
    public let allowedOrigins: Set<String>?
    /// Whether `Access-Control-Allow-Credentials: true` is sent; only ever with an explicit list.
    public let allowsCredentials: Bool
    /// How long a browser may cache a preflight answer. Default 10 min.
    public var maxAge: Duration = .seconds(600)

    /// - Parameters:
    ///   - allowedOrigins: `scheme://host[:port]` origins, or `["*"]` for any.
    ///   - allowCredentials: send `Access-Control-Allow-Credentials: true` (explicit origins only).
    /// - Throws: ``BrokerError/invalidConfiguration(_:)`` for an empty list, a malformed origin, `*`
    ///   mixed with origins, or credentials with `*`.
    public init(allowedOrigins: [String], allowCredentials: Bool = true) throws(BrokerError) {
        guard !allowedOrigins.isEmpty else { throw .invalidConfiguration("no CORS origin given") }
        if allowedOrigins.contains("*") {
            guard allowedOrigins.count == 1 else { throw .invalidConfiguration("CORS origin \"*\" cannot be combined with others") }
            self.allowedOrigins = nil
            self.allowsCredentials = false
            return
        }
        var origins = Set<String>()
        for origin in allowedOrigins {
            let normalized = Self.normalize(origin)
            guard normalized.hasPrefix("http://") || normalized.hasPrefix("https://"),
                !normalized.dropFirst(8).contains("/"), !normalized.contains(where: { $0.isWhitespace || $0.isNewline })
            else {
                throw .invalidConfiguration("CORS origin \"\(origin)\" is not of the form scheme://host[:port]")
            }
            origins.insert(normalized)
        }
        self.allowedOrigins = origins
        self.allowsCredentials = allowCredentials
    }

    private static func normalize(_ origin: String) -> String {
        var text = origin.lowercased()
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// Whether a request from `origin` is allowed.
    public func allows(_ origin: String) -> Bool {
        guard let allowedOrigins else { return true }
        return allowedOrigins.contains(Self.normalize(origin))
    }

    /// The headers for an actual (non-preflight) response to an allowed `origin`.
    public func responseHeaders(for origin: String) -> HTTPHeaders {
        var headers = HTTPHeaders()
        if self.allowedOrigins == nil {
            headers.add(name: "Access-Control-Allow-Origin", value: "*")
        } else {
            headers.add(name: "Access-Control-Allow-Origin", value: origin)
            headers.add(name: "Vary", value: "Origin")
            if self.allowsCredentials {
                headers.add(name: "Access-Control-Allow-Credentials", value: "true")
            }
        }
        headers.add(
            name: "Access-Control-Expose-Headers", value: "X-SSE-Client-ID, Retry-After, WWW-Authenticate, Idempotent-Replayed"
        )
        return headers
    }

    /// The headers of a `204` answer to a preflight from an allowed `origin` for `methods`.
    public func preflightHeaders(for origin: String, methods: [HTTPMethod]) -> HTTPHeaders {
        var headers = self.responseHeaders(for: origin)
        headers.add(name: "Access-Control-Allow-Methods", value: (methods + [.OPTIONS]).map(\.rawValue).joined(separator: ", "))
        // Last-Event-ID: a reconnecting EventSource sends it; Authorization: tokens from fetch-based clients;
        // Idempotency-Key: retries from fetch-based producers.
        headers.add(name: "Access-Control-Allow-Headers", value: "Authorization, Content-Type, Last-Event-ID, Idempotency-Key")
        headers.add(name: "Access-Control-Max-Age", value: String(self.maxAge.components.seconds))
        return headers
    }
}

// MARK: Admission

/// Counts the open streams, in all and per client id, so the server can refuse a new one beyond
/// ``ServerLimits/maxClients`` or ``ServerLimits/maxConnectionsPerClientID``. Share one instance
/// between all the ``BrokerHTTPHandler``s of a server. Thread-safe.
public final class AdmissionControl: Sendable {
    private struct Counts {
        var total = 0
        var byClientID: [String: Int] = [:]
    }

    /// The limits enforced.
    public let limits: ServerLimits
    private let counts = Locked(Counts())
    private let connectRate: ConnectRateLimiter?

    public init(limits: ServerLimits = ServerLimits()) {
        self.limits = limits
        self.connectRate = limits.maxConnectRate.map { ConnectRateLimiter(rate: $0) }
    }

    /// Reserves a stream slot for `clientID`; every successful call must be paired with ``release(_:)``.
    /// - Throws: ``BrokerError/connectRateExceeded(perSecond:)``, ``BrokerError/tooManyClients(limit:)``
    ///   or ``BrokerError/tooManyConnections(clientID:limit:)``.
    public func admit(_ clientID: String) throws(BrokerError) {
        try self.connectRate?.take()
        let limits = self.limits
        let refusal: BrokerError? = self.counts.withLock { counts in
            if let max = limits.maxClients, counts.total >= max { return .tooManyClients(limit: max) }
            let forID = counts.byClientID[clientID, default: 0]
            if let max = limits.maxConnectionsPerClientID, forID >= max {
                return .tooManyConnections(clientID: clientID, limit: max)
            }
            counts.total += 1
            counts.byClientID[clientID] = forID + 1
            return nil
        }
        if let refusal { throw refusal }
    }

    /// Gives back a slot taken by ``admit(_:)``.
    public func release(_ clientID: String) {
        self.counts.withLock { counts in
            counts.total -= 1
            let left = counts.byClientID[clientID, default: 1] - 1
            counts.byClientID[clientID] = left > 0 ? left : nil
        }
    }

    /// Streams admitted and not yet released.
    public var openStreams: Int {
        self.counts.withLock { $0.total }
    }
}
