import SSEBroker
import SSEBrokerPostgres
import SSEConsoleCore

/// Turns the backplane's ``ClusterStatus`` into the console's ``ClusterView``. Owned by one thread
/// (the UI thread, or the stdin thread for `nodes`); `cluster.status` is a lock-protected copy, read
/// once per sample, so the console never holds the backplane's lock while it draws.
///
/// The node list is only refreshed by heartbeats; while the node is offline none arrive, so the
/// sampler ages the last list itself — "last heard" keeps growing and peers go `dead` after the
/// node timeout, instead of the screen freezing on the last good picture.
struct ClusterSampler {
    let cluster: PostgresCluster
    /// This node's real address (the advertised one has port 0 when the broker was started with `--port 0`).
    let listenURL: String
    private var lastNodes: [ClusterStatus.Node]?
    private var nodesReadAt = 0.0

    init(cluster: PostgresCluster, listenURL: String) {
        self.cluster = cluster
        self.listenURL = listenURL
    }

    /// The view now. `now` is any monotonic-enough clock in seconds (Unix time in the console).
    mutating func sample(now: Double, connections: Int) -> ClusterView {
        let status = self.cluster.status
        if status.nodes != self.lastNodes {
            // `silentFor` changes with every heartbeat read, so a new read always compares unequal.
            self.lastNodes = status.nodes
            self.nodesReadAt = now
        }
        let timeout = self.cluster.configuration.nodeTimeout
        return Self.view(
            of: status, staleFor: max(0, now - self.nodesReadAt),
            nodeTimeout: timeout / .seconds(1),
            listenURL: self.listenURL, connections: connections)
    }

    /// The conversion itself, free of clocks: `staleFor` is how long ago the node list was read.
    static func view(
        of status: ClusterStatus, staleFor: Double, nodeTimeout: Double, listenURL: String, connections: Int
    ) -> ClusterView {
        let state: ClusterView.State
        switch status.state {
        case .connecting: state = .connecting
        case .online: state = .online
        case .offline(let reason, let retryIn):
            let parts = retryIn.components
            state = .offline(reason: reason, retryIn: Double(parts.seconds) + Double(parts.attoseconds) / 1e18)
        }
        var nodes = status.nodes.map { node -> ClusterView.Node in
            let silent = node.silentFor + staleFor
            return ClusterView.Node(
                name: node.name, url: node.url, clients: node.clients, lastEventID: node.lastEventID,
                lag: status.lag(of: node), silentFor: silent, isAlive: node.isAlive && silent < nodeTimeout)
        }
        // This node is known first-hand: its live numbers rather than those of its last heartbeat.
        let own = nodes.firstIndex { $0.name == status.nodeName }
        var me = own.map { nodes[$0] }
            ?? ClusterView.Node(name: status.nodeName, url: listenURL, clients: connections, lastEventID: 0, lag: 0,
                                silentFor: 0, isAlive: status.state == .online)
        me.isSelf = true
        me.url = listenURL
        me.clients = connections
        me.lastEventID = status.lastDelivered
        me.lag = status.lag
        if let own { nodes[own] = me } else { nodes.insert(me, at: 0) }
        return ClusterView(
            state: state, nodeName: status.nodeName, nodes: nodes, head: max(status.head, status.lastDelivered),
            lastDelivered: status.lastDelivered, reconnects: status.reconnects, published: status.published,
            failedPublishes: status.failedPublishes)
    }
}
