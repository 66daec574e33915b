import NIOCore

/// Decides, per event and connection, whether to write or to count a miss — the slow-client policy.
///
/// The Go original waits up to `Timeout` on each client in turn, so a few stalled clients delay
/// every broadcast. Here nobody waits: a connection whose socket is not draining keeps accepting
/// events into a bounded backlog until it has been unwritable for `writeTimeout` or the backlog is
/// full; from then on each event it misses is one sequential error, and at `tolerance` errors it is
/// closed. Any successful write resets the count.
public struct TolerancePolicy: Sendable, Hashable {
    public var writeTimeout: Duration
    public var tolerance: Int
    public var maxBacklogBytes: Int

    public init(writeTimeout: Duration, tolerance: Int, maxBacklogBytes: Int) {
        self.writeTimeout = writeTimeout
        self.tolerance = tolerance
        self.maxBacklogBytes = maxBacklogBytes
    }

    public init(_ configuration: BrokerConfiguration) {
        self.init(
            writeTimeout: configuration.writeTimeout,
            tolerance: configuration.tolerance,
            maxBacklogBytes: configuration.maxClientBacklogBytes
        )
    }

    /// Whether a connection that is not writable (its socket buffer is full) may still queue `size`
    /// more bytes. A writable connection always may.
    /// - Parameters:
    ///   - unwritableFor: how long the connection has been unwritable.
    ///   - backlogBytes: bytes already queued for it.
    ///   - size: the bytes to queue.
    public func mayQueue(unwritableFor: Duration, backlogBytes: Int, size: Int) -> Bool {
        // Subtracted, not added: a transport that cannot tell its backlog reports a huge one.
        unwritableFor < self.writeTimeout && size <= self.maxBacklogBytes && backlogBytes <= self.maxBacklogBytes - size
    }

    /// Whether a connection with `consecutiveErrors` sequential misses must be disconnected.
    public func mustDisconnect(consecutiveErrors: Int) -> Bool {
        consecutiveErrors >= self.tolerance
    }
}
