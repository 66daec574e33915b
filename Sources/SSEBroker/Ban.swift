import Foundation

/// A ban on a client id: the broker answers its connects with `204 No Content`, which tells an
/// `EventSource` to stop reconnecting, until ``until`` or an unban.
///
/// Times are wall-clock (`Date`), not the broker's monotonic clock: a ban is kept in a file or a
/// database and read back by another process, on another machine.
public struct Ban: Sendable, Hashable, Codable {
    /// The banned client id.
    public var clientID: String
    /// When the ban ends; `nil` for a ban that lasts until it is lifted.
    public var until: Date?
    /// When it was set.
    public var setAt: Date
    /// Who set it, as ``ActionOrigin/description`` says it (`console`, `http 10.0.0.7:53012`, `api`).
    public var setBy: String
    /// The cluster node it was set on; `nil` stand-alone.
    public var node: String?

    public init(clientID: String, until: Date?, setAt: Date = Date(), setBy: String, node: String? = nil) {
        self.clientID = clientID
        self.until = until
        self.setAt = setAt
        self.setBy = setBy
        self.node = node
    }

    /// Whether the ban is in force at `now`.
    public func isActive(at now: Date = Date()) -> Bool {
        self.until.map { $0 > now } ?? true
    }
}

/// Who asked for a state-changing action (a publish, a kick, a ban): for bans and the audit trail.
public struct ActionOrigin: Sendable, Hashable, CustomStringConvertible {
    /// `console`, `http`, `api`, or a name of your own.
    public var name: String
    /// The peer's address, for an HTTP request.
    public var remoteAddress: String?

    public init(name: String, remoteAddress: String? = nil) {
        self.name = name
        self.remoteAddress = remoteAddress
    }

    /// The Swift API (the default).
    public static let api = ActionOrigin(name: "api")
    /// The operator's console (terminal or headless).
    public static let console = ActionOrigin(name: "console")
    /// An HTTP request from `remoteAddress`.
    public static func http(_ remoteAddress: String?) -> ActionOrigin {
        ActionOrigin(name: "http", remoteAddress: remoteAddress)
    }

    /// `name`, or `name address`.
    public var description: String {
        self.remoteAddress.map { "\(self.name) \($0)" } ?? self.name
    }
}

/// What a kick or a ban closed: connections, and on how many nodes (1 or 0 stand-alone).
public struct ClosedConnections: Sendable, Hashable, CustomStringConvertible {
    /// Connections closed (on another node: as its presence announced them, at most a heartbeat old).
    public var connections: Int
    /// Nodes that had at least one of them.
    public var nodes: Int

    public init(connections: Int, nodes: Int) {
        self.connections = connections
        self.nodes = nodes
    }

    /// "3 connections on 2 nodes".
    public var description: String {
        let connections = self.connections == 1 ? "1 connection" : "\(self.connections) connections"
        let nodes = self.nodes == 1 ? "1 node" : "\(self.nodes) nodes"
        return "\(connections) on \(nodes)"
    }
}

/// Where a stand-alone broker keeps its bans across a restart (the `--history-file` SQLite file).
///
/// The broker calls these on the thread of whoever bans (the console, an API call), never on an
/// event loop; they may block briefly on a write. A cluster node keeps its bans in the cluster's
/// database instead (``ClusterControl``).
public protocol BanStore: Sendable {
    /// The bans stored, expired ones included (the broker skips those).
    func loadBans() throws -> [Ban]
    /// Stores `ban`, replacing an earlier ban of the same id.
    func saveBan(_ ban: Ban) throws
    /// Deletes the ban of `clientID`, if any.
    func deleteBan(clientID: String) throws
}

/// A backplane that carries kicks and bans to every node and keeps bans in the cluster's store, so
/// a ban holds on every node, including one that starts later. ``Broker`` uses it when its
/// ``EventBackplane`` conforms.
public protocol ClusterControl: Sendable {
    /// Closes every connection of `clientID` on every node.
    /// - Returns: what was closed (this node's exactly, the others' as their presence says).
    func kickEverywhere(_ clientID: String) async throws(BrokerError) -> ClosedConnections
    /// Stores `ban` in the cluster's store and enforces it on every node.
    func banEverywhere(_ ban: Ban) async throws(BrokerError) -> ClosedConnections
    /// Deletes the ban of `clientID` everywhere. - Returns: whether there was one.
    func unbanEverywhere(_ clientID: String) async throws(BrokerError) -> Bool
}
