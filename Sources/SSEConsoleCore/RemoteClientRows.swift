/// The other nodes' connections as rows of the all-nodes table, converted from their snapshots.
///
/// A node writes a snapshot every couple of seconds while the table is shown, and the app refreshes
/// four times a second: each node's snapshot is converted once, when it changes (a new `takenAt`),
/// not on every refresh — 3 nodes × 10,000 clients are 20,000 conversions and key hashes a refresh
/// otherwise, on the UI thread. ``version`` tells the clients table when ``rows`` changed, so it
/// sorts them only then. Owned by the UI thread.
public struct RemoteClientRows: Sendable {
    /// One node's snapshot, converted.
    public struct Node: Sendable {
        public let name: String
        /// When the node took it (Unix seconds).
        public let takenAt: Double
        public let rows: [ClientRow]
    }

    /// Which rows: a new value for each change, and never the same for two instances.
    public struct Version: Sendable, Hashable {
        let instance: UInt64
        let generation: Int
    }

    /// What the latest snapshots say of a connection of another node that a detail view shows.
    public enum Sighting: Sendable, Hashable {
        /// In its node's latest snapshot, as this row.
        case present(ClientRow)
        /// Its node's latest snapshot is newer than the one the detail has and does not have it:
        /// the connection ended (when, exactly, only its node knows: by `at` at the latest).
        case gone(at: Double)
        /// No newer word: its node has no snapshot here (not answering, or it left the cluster).
        case unknown
    }

    public private(set) var nodes: [Node] = []
    /// Every node's rows, in the order of `nodes`; rebuilt only when a node's snapshot changes.
    public private(set) var rows: [ClientRow] = []
    public private(set) var version: Version
    /// Clients converted so far (an unchanged refresh converts none).
    public private(set) var conversions = 0

    public init() {
        version = Version(instance: UInt64.random(in: 0...UInt64.max), generation: 0)
    }

    /// A remote row's key in the table: connection ids are per node, so the node's name is mixed
    /// in (the selection and a detail view follow it from snapshot to snapshot).
    public static func key(node: String, connectionID: UInt64) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(node)
        hasher.combine(connectionID)
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// Takes the latest snapshots, one per node. A node whose snapshot has the `takenAt` it had
    /// keeps its rows; the others are converted with `row`.
    /// - Returns: whether ``rows`` changed.
    @discardableResult
    public mutating func update<Client>(
        _ snapshots: [(node: String, takenAt: Double, clients: [Client])], row: (Client) -> ClientRow
    ) -> Bool {
        let unchanged = snapshots.count == nodes.count
            && zip(snapshots, nodes).allSatisfy { $0.node == $1.name && $0.takenAt == $1.takenAt }
        guard !unchanged else { return false }
        var kept: [String: Node] = [:]
        for node in nodes { kept[node.name] = node }
        nodes = snapshots.map { snapshot in
            if let node = kept[snapshot.node], node.takenAt == snapshot.takenAt { return node }
            conversions += snapshot.clients.count
            let origin = snapshot.node
            return Node(
                name: origin, takenAt: snapshot.takenAt,
                rows: snapshot.clients.map { client in
                    var converted = row(client)
                    converted.remote = RemoteSnapshot(connectionID: converted.connectionID, takenAt: snapshot.takenAt)
                    converted.connectionID = Self.key(node: origin, connectionID: converted.connectionID)
                    converted.node = origin
                    return converted
                })
        }
        rows = nodes.flatMap(\.rows)
        version = Version(instance: version.instance, generation: version.generation + 1)
        return true
    }

    /// What the latest snapshots say of the connection `key` of `node`, seen last in the snapshot
    /// taken at `seenAt`: "gone" only from a newer snapshot of that node.
    public func sighting(node: String, key: UInt64, seenAt: Double) -> Sighting {
        guard let snapshot = nodes.first(where: { $0.name == node }) else { return .unknown }
        if let row = snapshot.rows.first(where: { $0.connectionID == key }) { return .present(row) }
        return snapshot.takenAt > seenAt ? .gone(at: snapshot.takenAt) : .unknown
    }
}
