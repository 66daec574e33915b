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
