import Foundation

/// A snapshot of one subscriber connection.
public struct ClientInfo: Sendable, Hashable, Identifiable {
    /// Unique per connection for the broker's lifetime; two tabs with one client id differ here.
    public var connectionID: UInt64
    /// The client id (`?id=` or generated). Several connections may share it.
    public var clientID: String
    /// The peer's address, such as `127.0.0.1:52344`.
    public var remoteAddress: String?
    /// The `User-Agent` the client sent.
    public var userAgent: String?
    /// When the connection was accepted.
    public var connectedAt: Date
    /// Events written to this connection (replayed ones included, heartbeats not).
    public var eventsSent: Int
    /// Bytes of events written to this connection.
    public var bytesSent: Int
    /// Events this connection missed in a row; at the tolerance it is disconnected.
    public var consecutiveErrors: Int
    /// Events this connection missed in all.
    public var totalErrors: Int
    /// Bytes queued for the connection that its socket has not taken, sampled while it lags.
    public var backlogBytes: Int
    /// The topics it subscribed to (`?topic=`), sorted; empty: every event.
    public var topics: [String]
    /// The protocol of the connection or stream: `HTTP/1.1`, or `h2` for an HTTP/2 stream.
    public var httpVersion: String
    /// The `Last-Event-ID` it resumed from; `nil` for a first connect.
    public var resumedFrom: String?
    /// How many missed events were replayed to it when it connected.
    public var replayedEvents: Int
    /// The subject of the subscriber token it connected with, if tokens are on.
    public var tokenSubject: String?
    /// When that token expires (the stream is closed then).
    public var tokenExpiresAt: Date?
    /// Its latest missed events, oldest first (at most ``Subscription/recentErrorLimit``).
    public var recentErrors: [ClientError]

    public var id: UInt64 { self.connectionID }

    public init(
        connectionID: UInt64,
        clientID: String,
        remoteAddress: String? = nil,
        userAgent: String? = nil,
        connectedAt: Date = Date(),
        eventsSent: Int = 0,
        bytesSent: Int = 0,
        consecutiveErrors: Int = 0,
        totalErrors: Int = 0,
        backlogBytes: Int = 0,
        topics: [String] = [],
        httpVersion: String = "HTTP/1.1",
        resumedFrom: String? = nil,
        replayedEvents: Int = 0,
        tokenSubject: String? = nil,
        tokenExpiresAt: Date? = nil,
        recentErrors: [ClientError] = []
    ) {
        self.httpVersion = httpVersion
        self.topics = topics
        self.resumedFrom = resumedFrom
        self.replayedEvents = replayedEvents
        self.tokenSubject = tokenSubject
        self.tokenExpiresAt = tokenExpiresAt
        self.recentErrors = recentErrors
        self.connectionID = connectionID
        self.clientID = clientID
        self.remoteAddress = remoteAddress
        self.userAgent = userAgent
        self.connectedAt = connectedAt
        self.eventsSent = eventsSent
        self.bytesSent = bytesSent
        self.consecutiveErrors = consecutiveErrors
        self.totalErrors = totalErrors
        self.backlogBytes = backlogBytes
    }
}

/// One event a connection missed because it was not keeping up, and why.
public struct ClientError: Sendable, Hashable, CustomStringConvertible {
    /// When the event was dropped for it.
    public var at: Date
    /// The event's id; `nil` for an event of its replay.
    public var eventID: UInt64?
    /// How long its socket had not taken data.
    public var unwritableFor: Duration
    /// Bytes queued for it at that moment.
    public var backlogBytes: Int
    /// Size of the event it missed.
    public var eventBytes: Int
    /// Its consecutive misses, this one included.
    public var consecutive: Int

    public init(at: Date, eventID: UInt64?, unwritableFor: Duration, backlogBytes: Int, eventBytes: Int, consecutive: Int) {
        self.at = at
        self.eventID = eventID
        self.unwritableFor = unwritableFor
        self.backlogBytes = backlogBytes
        self.eventBytes = eventBytes
        self.consecutive = consecutive
    }

    /// `socket not writable for 3.2s, 12345 bytes queued; 300-byte event dropped (2 in a row)`.
    public var description: String {
        let milliseconds = self.unwritableFor.components.seconds * 1_000
            + self.unwritableFor.components.attoseconds / 1_000_000_000_000_000
        return "socket not writable for \(milliseconds) ms, \(self.backlogBytes) bytes queued; "
            + "\(self.eventBytes)-byte event dropped (\(self.consecutive) in a row)"
    }
}

/// Why a connection ended.
public enum DisconnectReason: String, Sendable, Hashable, CustomStringConvertible {
    /// The client closed the connection (or it broke).
    case closed
    /// `kick` was called for its client id.
    case kicked
    /// It missed `tolerance` events in a row.
    case overTolerance = "over tolerance"
    /// Its client id was banned.
    case banned
    /// The broker shut down.
    case shutdown
    /// The credentials it connected with expired (a subscriber token's `exp`).
    case expired

    public var description: String { self.rawValue }
}

/// Changes in the set of connections, for consoles and logs.
public enum BrokerActivity: Sendable, Hashable {
    case connected(ClientInfo)
    case disconnected(ClientInfo, DisconnectReason)
}

/// One of ``BrokerConfiguration/metricsTopics`` in numbers.
public struct TopicStatistics: Sendable, Hashable {
    /// The topic as configured.
    public var topic: String
    /// Connections that subscribed to it (this very topic or pattern) now.
    public var subscriptions: Int
    /// Event copies handed to connections since start, of the events whose type it matches.
    public var deliveries: Int

    public init(topic: String, subscriptions: Int, deliveries: Int) {
        self.topic = topic
        self.subscriptions = subscriptions
        self.deliveries = deliveries
    }
}

/// Counters since the broker started.
public struct BrokerStatistics: Sendable, Hashable {
    /// Events published (broadcast and targeted).
    public var published: Int
    /// Event copies written to connections.
    public var delivered: Int
    /// Bytes of events written to connections.
    public var bytesDelivered: Int
    /// Event copies a connection missed because it was not keeping up.
    public var dropped: Int
    /// Connections closed by `kick` or `ban`.
    public var kicked: Int
    /// Of ``kicked``, the connections closed by `ban`.
    public var banned: Int
    /// Connections closed for reaching the tolerance.
    public var disconnectedOverTolerance: Int
    /// Events a `listen()` consumer missed because it did not read.
    public var listenerDrops: Int
    /// Connections open now.
    public var connected: Int
    /// Connections accepted since start.
    public var connectionsAccepted: Int
    /// Requests refused since start, by HTTP status code (`401`, `503`, …), as counted by the
    /// server through ``Broker/recordRefusal(status:)``.
    public var refusals: [UInt: Int]
    /// Publishes that had to wait for the event loops to catch up (the broker was overloaded; see
    /// ``BrokerConfiguration/maxQueuedEvents``): how often producers were pushed back.
    public var publishesDelayed: Int

    /// All refused requests.
    public var refused: Int { self.refusals.values.reduce(0, +) }

    public init(
        published: Int = 0,
        delivered: Int = 0,
        bytesDelivered: Int = 0,
        dropped: Int = 0,
        kicked: Int = 0,
        banned: Int = 0,
        disconnectedOverTolerance: Int = 0,
        listenerDrops: Int = 0,
        connected: Int = 0,
        connectionsAccepted: Int = 0,
        refusals: [UInt: Int] = [:],
        publishesDelayed: Int = 0
    ) {
        self.publishesDelayed = publishesDelayed
        self.published = published
        self.delivered = delivered
        self.bytesDelivered = bytesDelivered
        self.dropped = dropped
        self.kicked = kicked
        self.banned = banned
        self.disconnectedOverTolerance = disconnectedOverTolerance
        self.listenerDrops = listenerDrops
        self.connected = connected
        self.connectionsAccepted = connectionsAccepted
        self.refusals = refusals
    }
}
