import Foundation

/// What a cluster node knows about itself and its peers, for consoles and health checks.
public struct ClusterStatus: Sendable, Equatable {
    /// The node's link to the shared log.
    public enum State: Sendable, Equatable, CustomStringConvertible {
        /// Not yet connected (starting).
        case connecting
        /// Listening and caught up: publishes are accepted and every event is delivered.
        case online
        /// The database cannot be reached; producers get `503` and the node reconnects with backoff.
        case offline(reason: String, retryIn: Duration)

        public var description: String {
            switch self {
            case .connecting: return "connecting"
            case .online: return "online"
            case .offline(let reason, _): return "offline: \(reason)"
            }
        }
    }

    /// One node, as of the last heartbeat this node read.
    public struct Node: Sendable, Equatable {
        public var name: String
        public var url: String
        public var clients: Int
        /// The newest event the node has delivered.
        public var lastEventID: UInt64
        /// Seconds since its last heartbeat.
        public var silentFor: Double
        /// Whether it was heard from within the node timeout.
        public var isAlive: Bool
    }

    public var state: State
    public var nodeName: String
    /// Every node in the cluster (this one included), by name.
    public var nodes: [Node]
    /// The newest event id in the shared log, as of the last heartbeat.
    public var head: UInt64
    /// The newest event this node has delivered.
    public var lastDelivered: UInt64
    /// How many times the node lost and regained the database.
    public var reconnects: Int
    /// Events this node committed to the shared log.
    public var published: Int
    /// Publishes refused because the log could not be reached (answered `503`).
    public var failedPublishes: Int

    /// Events in the log this node has not delivered yet.
    public var lag: UInt64 { self.head > self.lastDelivered ? self.head - self.lastDelivered : 0 }

    /// How far behind the cluster's head `node` is.
    public func lag(of node: Node) -> UInt64 { self.head > node.lastEventID ? self.head - node.lastEventID : 0 }

    /// The connections on every live node.
    public var clusterClients: Int { self.nodes.filter(\.isAlive).reduce(0) { $0 + $1.clients } }

    /// `{"state":"online","node":"…","nodes":N,"lag":N,…}` for health checks.
    public var json: String {
        let nodes = self.nodes.map { node in
            #"{"name":"\#(Self.escape(node.name))","url":"\#(Self.escape(node.url))","clients":\#(node.clients),"lastEventId":"\#(node.lastEventID)","lag":\#(self.lag(of: node)),"alive":\#(node.isAlive)}"#
        }
        let state: String
        switch self.state {
        case .connecting: state = "connecting"
        case .online: state = "online"
        case .offline: state = "offline"
        }
        var reason = ""
        if case .offline(let why, _) = self.state { reason = #","reason":"\#(Self.escape(why))""# }
        return #"{"state":"\#(state)"\#(reason),"node":"\#(Self.escape(self.nodeName))","head":"\#(self.head)","lastEventId":"\#(self.lastDelivered)","lag":\#(self.lag),"reconnects":\#(self.reconnects),"nodes":[\#(nodes.joined(separator: ","))]}"#
    }

    private static func escape(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
