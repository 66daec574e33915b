import Foundation
import Logging
import PostgresNIO
import SSEBroker

// Kicks and bans on every node (``ClusterControl``).
//
// A ban is a row of the bans table, written in the same transaction as its notification: a node
// that is listening gets the notification and enforces it at once; a node that starts later, or
// reconnects after missing notifications, reads the whole table once it listens (``loadBans(on:)``),
// so a ban holds on every node for as long as it lasts. A kick is only a notification: a node that
// is offline at that moment has no connections of its own that it could still serve anyway.
//
// What a kick or ban closed on the other nodes is counted from their presence rows (at most a
// heartbeat old), not acknowledged by each node: waiting for every node would make the console as
// slow as the slowest node, and a node that is gone would make it wait for its timeout.
extension PostgresCluster: ClusterControl {
    public func kickEverywhere(_ clientID: String) async throws(BrokerError) -> ClosedConnections {
        try self.requireOnline("kick")
        let node = self.configuration.nodeName
        let remote = try await self.control(.kick(node: node, clientID: clientID), statement: nil)
        let local = self.broker.kickLocally(clientID)
        return Self.closed(local: local, remote: remote)
    }

    public func banEverywhere(_ ban: Ban) async throws(BrokerError) -> ClosedConnections {
        try self.requireOnline("ban")
        var ban = ban
        ban.node = self.configuration.nodeName
        let n = self.names
        let until = ban.until
        let statement: PostgresQuery = """
            INSERT INTO \(unescaped: n.bans) (client_id, until, set_at, set_by, node)
            VALUES (\(ban.clientID), \(until), \(ban.setAt), \(ban.setBy), \(self.configuration.nodeName))
            ON CONFLICT (client_id) DO UPDATE SET until = excluded.until, set_at = excluded.set_at,
                set_by = excluded.set_by, node = excluded.node
            """
        let remote = try await self.control(.ban(node: self.configuration.nodeName, ban), statement: statement)
        let local = self.broker.enforce(ban)
        return Self.closed(local: local, remote: remote)
    }

    public func unbanEverywhere(_ clientID: String) async throws(BrokerError) -> Bool {
        try self.requireOnline("unban")
        let n = self.names
        let wasBanned = self.broker.bans.contains { $0.clientID == clientID }
        do {
            let deleted = try await withTimeout(self.configuration.publishTimeout) {
                try await self.client.withTransaction(logger: self.logger) { connection in
                    let rows = try await connection.query(
                        "DELETE FROM \(unescaped: n.bans) WHERE client_id = \(clientID) RETURNING client_id",
                        logger: self.logger
                    )
                    var deleted = 0
                    for try await _ in rows { deleted += 1 }
                    let payload = NotificationPayload.encode(.unban(node: self.configuration.nodeName, clientID: clientID))
                    try await connection.query("SELECT pg_notify(\(n.channel), \(payload))", logger: self.logger)
                    return deleted > 0
                }
            }
            return deleted || wasBanned
        } catch {
            throw .unavailable("the unban could not be written to the cluster's database (\(Self.describe(error))); retry")
        }
    }

    /// Applies a kick, ban or unban another node announced.
    func apply(_ message: NotificationPayload.ControlMessage) {
        guard message.node != self.configuration.nodeName else { return }  // applied when it was made
        switch message {
        case .kick(_, let clientID): self.broker.kickLocally(clientID)
        case .ban(_, let ban): self.broker.enforce(ban)
        case .unban(_, let clientID): self.broker.lift(banOf: clientID)
        }
    }

    /// Reads the cluster's bans into the broker, replacing what it had: on every (re)connect, once
    /// listening, so nothing announced meanwhile is missed.
    func loadBans(on connection: PostgresConnection) async throws {
        let rows = try await connection.query(
            "SELECT client_id, until, set_at, set_by, node FROM \(unescaped: self.names.bans) WHERE until IS NULL OR until > now()",
            logger: self.logger
        )
        var bans: [Ban] = []
        for try await (clientID, until, setAt, setBy, node) in rows.decode((String, Date?, Date, String, String).self) {
            bans.append(Ban(clientID: clientID, until: until, setAt: setAt, setBy: setBy, node: node))
        }
        self.broker.replaceBans(with: bans)
        if !bans.isEmpty {
            self.logger.info("bans loaded from the cluster", metadata: ["bans": "\(bans.count)"])
        }
    }

    private func requireOnline(_ action: String) throws(BrokerError) {
        let state = self.shared.withLockedValue { $0.status.state }
        guard state == .online else {
            throw .unavailable("\(action): this cluster node cannot reach the cluster's database (\(state)); retry later")
        }
    }

    /// Runs `statement` (if any) and announces `message` in one transaction; returns the other live
    /// nodes' connections of the client, by node, as their presence rows say.
    private func control(_ message: NotificationPayload.ControlMessage, statement: PostgresQuery?) async throws(BrokerError)
        -> [String: Int]
    {
        let n = self.names
        let node = self.configuration.nodeName
        let timeoutSeconds = self.configuration.nodeTimeout / .seconds(1)
        let clientID: String
        switch message {
        case .kick(_, let id), .unban(_, let id): clientID = id
        case .ban(_, let ban): clientID = ban.clientID
        }
        do {
            return try await withTimeout(self.configuration.publishTimeout) {
                try await self.client.withTransaction(logger: self.logger) { connection in
                    if let statement { try await connection.query(statement, logger: self.logger) }
                    let rows = try await connection.query(
                        """
                        SELECT p.node_id, p.connections FROM \(unescaped: n.presence) p JOIN \(unescaped: n.nodes) n USING (node_id)
                        WHERE p.client_id = \(clientID) AND p.node_id <> \(node)
                            AND n.seen_at > now() - make_interval(secs => \(timeoutSeconds))
                        """,
                        logger: self.logger
                    )
                    var remote: [String: Int] = [:]
                    for try await (other, connections) in rows.decode((String, Int32).self) where connections > 0 {
                        remote[other, default: 0] += Int(connections)
                    }
                    try await connection.query(
                        "SELECT pg_notify(\(n.channel), \(NotificationPayload.encode(message)))", logger: self.logger
                    )
                    return remote
                }
            }
        } catch {
            throw .unavailable("the cluster's database did not take it (\(Self.describe(error))); retry")
        }
    }

    private static func closed(local: Int, remote: [String: Int]) -> ClosedConnections {
        ClosedConnections(
            connections: local + remote.values.reduce(0, +),
            nodes: (local > 0 ? 1 : 0) + remote.count
        )
    }
}
