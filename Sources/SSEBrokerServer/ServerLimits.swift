import SSEBroker

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
