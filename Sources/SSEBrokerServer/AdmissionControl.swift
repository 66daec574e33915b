import SSEBroker

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
