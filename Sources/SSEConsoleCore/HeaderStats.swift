/// Broker-wide numbers for the header bar, sampled by the app each frame.
public struct HeaderStats: Sendable, Hashable {
    public var listenURL: String
    /// Seconds since the broker started.
    public var uptime: Double
    public var clientsConnected: Int
    public var eventsInPerSecond: Double
    public var eventsOutPerSecond: Double
    public var bytesOutPerSecond: Double
    public var totalDropped: Int
    public var totalKicked: Int
    /// Requests refused (bad tokens, limits, malformed requests…), all statuses together.
    public var totalRefused: Int
    /// Per-write timeout in seconds.
    public var writeTimeout: Double
    /// Consecutive failed writes tolerated before a client is dropped.
    public var tolerance: Int
    /// Extra status such as `"auth off"` or `"auth pub+sub"`.
    public var flags: String?
    /// The cluster this broker is a node of; `nil` for a stand-alone broker.
    public var cluster: ClusterView?

    public init(
        listenURL: String, uptime: Double = 0, clientsConnected: Int = 0,
        eventsInPerSecond: Double = 0, eventsOutPerSecond: Double = 0, bytesOutPerSecond: Double = 0,
        totalDropped: Int = 0, totalKicked: Int = 0, totalRefused: Int = 0, writeTimeout: Double = 3,
        tolerance: Int = 3, flags: String? = nil, cluster: ClusterView? = nil
    ) {
        self.listenURL = listenURL
        self.uptime = uptime
        self.clientsConnected = clientsConnected
        self.eventsInPerSecond = eventsInPerSecond
        self.eventsOutPerSecond = eventsOutPerSecond
        self.bytesOutPerSecond = bytesOutPerSecond
        self.totalDropped = totalDropped
        self.totalKicked = totalKicked
        self.totalRefused = totalRefused
        self.writeTimeout = writeTimeout
        self.tolerance = tolerance
        self.flags = flags
        self.cluster = cluster
    }
}
