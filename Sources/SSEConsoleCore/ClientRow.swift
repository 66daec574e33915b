/// Why a connection went away; shown instead of its age while the row fades out.
public enum DepartureReason: String, Sendable, Hashable, CaseIterable {
    case closed, kicked, overTolerance, banned, shutdown, expired

    /// Short label that fits the age column.
    public var label: String {
        switch self {
        case .closed: "closed"
        case .kicked: "kicked"
        case .overTolerance: "over-tol"
        case .banned: "banned"
        case .shutdown: "shutdown"
        case .expired: "expired"
        }
    }
}

/// When and why a connection disconnected.
public struct Departure: Sendable, Hashable {
    public var reason: DepartureReason
    /// Unix timestamp in seconds, same clock as `ClientRow.connectedAt`.
    public var at: Double

    public init(reason: DepartureReason, at: Double) {
        self.reason = reason
        self.at = at
    }
}

/// Where the row of another node's connection comes from: that node's latest snapshot.
public struct RemoteSnapshot: Sendable, Hashable {
    /// The connection's id on its node (the row's `connectionID` mixes in the node's name, as ids
    /// are per node).
    public var connectionID: UInt64
    /// When the node took the snapshot (Unix seconds, the database's clock).
    public var takenAt: Double

    public init(connectionID: UInt64, takenAt: Double) {
        self.connectionID = connectionID
        self.takenAt = takenAt
    }
}

/// One connection as the app sees it this frame. Timestamps are Unix seconds (`Double`); the age
/// is computed against the `now` passed to rendering.
public struct ClientRow: Sendable, Hashable {
    /// Unique per connection; the selection follows it across updates.
    public var connectionID: UInt64
    /// Client id; several connections may share one.
    public var id: String
    public var remoteAddress: String
    public var connectedAt: Double
    public var eventsSent: Int
    public var bytesSent: Int
    public var consecutiveErrors: Int
    public var totalErrors: Int
    public var backlogBytes: Int
    /// The topics it subscribed to; empty: every event.
    public var topics: [String]
    /// Set for a connection that just disconnected: drawn dimmed, then removed.
    public var departure: Departure?
    /// The cluster node it is connected to, in the all-nodes table; `nil` for this node's live rows.
    public var node: String? = nil
    /// `HTTP/1.1`, or `h2` for an HTTP/2 stream (`ClientInfo.httpVersion`).
    public var httpVersion = "HTTP/1.1"
    /// Set for another node's connection (all-nodes table): known only from that node's snapshot.
    public var remote: RemoteSnapshot? = nil

    public init(
        connectionID: UInt64, id: String, remoteAddress: String, connectedAt: Double,
        eventsSent: Int = 0, bytesSent: Int = 0, consecutiveErrors: Int = 0, totalErrors: Int = 0,
        backlogBytes: Int = 0, topics: [String] = [], departure: Departure? = nil
    ) {
        self.topics = topics
        self.connectionID = connectionID
        self.id = id
        self.remoteAddress = remoteAddress
        self.connectedAt = connectedAt
        self.eventsSent = eventsSent
        self.bytesSent = bytesSent
        self.consecutiveErrors = consecutiveErrors
        self.totalErrors = totalErrors
        self.backlogBytes = backlogBytes
        self.departure = departure
    }
}
