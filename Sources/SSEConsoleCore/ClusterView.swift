/// What the console shows of a cluster node: a plain copy of the backplane's status, made by the
/// app once per sample (the core never imports the backplane).
public struct ClusterView: Sendable, Hashable {
    /// The node's link to the shared log.
    public enum State: Sendable, Hashable {
        case connecting
        case online
        /// The database cannot be reached; `retryIn` is the backoff in seconds.
        case offline(reason: String, retryIn: Double)
    }

    /// One node of the cluster, as of its last heartbeat.
    public struct Node: Sendable, Hashable {
        public var name: String
        public var url: String
        public var clients: Int
        /// The newest event the node has delivered.
        public var lastEventID: UInt64
        /// Events in the shared log it has not delivered.
        public var lag: UInt64
        /// Seconds since it was last heard from.
        public var silentFor: Double
        public var isAlive: Bool
        /// The node this console runs.
        public var isSelf: Bool

        public init(
            name: String, url: String, clients: Int, lastEventID: UInt64, lag: UInt64, silentFor: Double,
            isAlive: Bool, isSelf: Bool = false
        ) {
            self.name = name
            self.url = url
            self.clients = clients
            self.lastEventID = lastEventID
            self.lag = lag
            self.silentFor = silentFor
            self.isAlive = isAlive
            self.isSelf = isSelf
        }
    }

    public var state: State
    /// This node's name.
    public var nodeName: String
    /// Every node, this one included, in the order to show them.
    public var nodes: [Node]
    /// The newest event id in the shared log.
    public var head: UInt64
    /// The newest event this node has delivered.
    public var lastDelivered: UInt64
    public var reconnects: Int
    public var published: Int
    public var failedPublishes: Int

    public init(
        state: State, nodeName: String, nodes: [Node], head: UInt64 = 0, lastDelivered: UInt64 = 0,
        reconnects: Int = 0, published: Int = 0, failedPublishes: Int = 0
    ) {
        self.state = state
        self.nodeName = nodeName
        self.nodes = nodes
        self.head = head
        self.lastDelivered = lastDelivered
        self.reconnects = reconnects
        self.published = published
        self.failedPublishes = failedPublishes
    }

    /// Events in the log this node has not delivered yet.
    public var lag: UInt64 { head > lastDelivered ? head - lastDelivered : 0 }

    public var isOnline: Bool { state == .online }

    public var aliveCount: Int { nodes.count { $0.isAlive } }

    /// Connections on every live node.
    public var clusterClients: Int { nodes.filter(\.isAlive).reduce(0) { $0 + $1.clients } }

    /// `online`, `connecting`, `offline`.
    public var stateName: String {
        switch state {
        case .connecting: "connecting"
        case .online: "online"
        case .offline: "offline"
        }
    }

    /// `3 nodes`, or `2/3 nodes` when some are not alive.
    public var nodeCountText: String {
        let alive = aliveCount
        let noun = nodes.count == 1 ? "node" : "nodes"
        return alive == nodes.count ? "\(nodes.count) \(noun)" : "\(alive)/\(nodes.count) \(noun)"
    }

    /// A database error cut to something a header can hold: the first clause, at most `width` columns.
    public static func shortReason(_ reason: String, width: Int) -> String {
        var text = Format.oneLine(reason, maxCharacters: 200)
        // Driver messages tend to be `connect failed: Connection refused (errno: 111)`: without the
        // parenthesis, the part after the last colon is what a person reads.
        if let paren = text.firstIndex(of: "("), paren != text.startIndex {
            text = String(text[..<paren]).trimmingTrailingSpaces()
        }
        if let colon = text.lastIndex(of: ":"), text.distance(from: colon, to: text.endIndex) > 4 {
            let tail = text[text.index(after: colon)...].drop { $0 == " " }
            if !tail.isEmpty { text = String(tail) }
        }
        return TextFit.truncate(text, toWidth: width)
    }

    /// One line for the message line and the headless `nodes` command:
    /// `cluster n1 online · 3 nodes · 12 clients · head 1,234 · lag 0`.
    public var summary: String {
        var parts = ["cluster \(nodeName) \(stateName)"]
        if case .offline(let reason, let retryIn) = state {
            parts[0] += ": \(Format.oneLine(reason, maxCharacters: 120))"
            parts.append("retry in \(Format.seconds(retryIn))")
        }
        parts.append(nodeCountText)
        parts.append("\(Format.thousands(clusterClients)) \(clusterClients == 1 ? "client" : "clients")")
        parts.append("head \(head)")
        parts.append("lag \(Format.thousands(Int(clamping: lag)))")
        return parts.joined(separator: " · ")
    }

    /// The `nodes` table for headless mode: the summary line, then tab-separated columns like `clients`.
    public var table: String {
        var lines = [summary, "NODE\tURL\tCLIENTS\tLAST_EVENT_ID\tLAG\tLAST_HEARD\tSTATE\tSELF"]
        for node in nodes {
            let heard = Format.oneDecimal(max(0, node.silentFor)) + "s"
            lines.append(
                "\(node.name)\t\(node.url)\t\(node.clients)\t\(node.lastEventID)\t\(node.lag)\t\(heard)\t"
                    + "\(node.isAlive ? "alive" : "dead")\t\(node.isSelf ? "yes" : "no")")
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var slice = Substring(self)
        while slice.last == " " { slice.removeLast() }
        return String(slice)
    }
}
