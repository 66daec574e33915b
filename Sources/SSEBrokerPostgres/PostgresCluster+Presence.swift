import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import SSEBroker

// Heartbeats, presence rows, the cluster view and cleanup.
extension PostgresCluster {
    // MARK: Heartbeats, presence, cleanup

    func runHeartbeat() async {
        var beats = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: self.configuration.heartbeatInterval)
            guard !Task.isCancelled, self.shared.withLockedValue({ $0.hasSynced }) else { continue }
            // Every node cleans up, staggered; the statements are idempotent.
            let cleaning = beats % 10 == 0
            beats += 1
            do {
                try await withTimeout(self.configuration.nodeTimeout) {
                    try await self.client.withConnection { connection in
                        try await self.register(on: connection, fresh: false)
                        try await self.readClusterView(on: connection)
                        if cleaning {
                            try await self.cleanUp(on: connection)
                        }
                    }
                }
            } catch {
                self.logger.debug("heartbeat failed", metadata: ["error": "\(Self.describe(error))"])
            }
        }
    }

    func readClusterView(on connection: PostgresConnection) async throws {
        let n = self.names
        let timeoutSeconds = self.configuration.nodeTimeout / .seconds(1)
        let rows = try await connection.query(
            """
            SELECT node_id, url, clients, last_event_id, EXTRACT(EPOCH FROM now() - seen_at)::float8,
                (SELECT coalesce(max(id), 0) FROM \(unescaped: n.events)),
                EXISTS (
                    SELECT 1 FROM \(unescaped: n.snapshotDemand) WHERE until > now() AND node_id <> \(self.configuration.nodeName))
            FROM \(unescaped: n.nodes) ORDER BY node_id
            """,
            logger: self.logger
        )
        var nodes: [ClusterStatus.Node] = []
        var head: UInt64 = 0
        // Whether another node's console wants every node's clients (PostgresCluster+Snapshots):
        // asked here, so that nobody watching costs no query of its own.
        var snapshotsWanted = false
        for try await (name, url, clients, last, silence, newest, wanted) in rows.decode(
            (String, String, Int32, Int64, Double, Int64, Bool).self)
        {
            snapshotsWanted = wanted
            nodes.append(
                ClusterStatus.Node(
                    name: name,
                    url: url,
                    clients: Int(clients),
                    lastEventID: UInt64(max(last, 0)),
                    silentFor: silence,
                    isAlive: silence < timeoutSeconds
                )
            )
            head = UInt64(max(newest, 0))
        }
        let wake = self.shared.withLockedValue { shared in
            shared.status.nodes = nodes
            shared.status.head = max(head, shared.status.head)
            defer { shared.snapshotsWanted = snapshotsWanted }
            return snapshotsWanted && !shared.snapshotsWanted
        }
        if wake { self.snapshotWakeups.yield() }
    }

    /// Deletes the rows of nodes silent for three node timeouts (their presence goes with them), the
    /// idempotency keys past their window and the events past retention.
    func cleanUp(on connection: PostgresConnection) async throws {
        let n = self.names
        let deadSeconds = 3 * (self.configuration.nodeTimeout / .seconds(1))
        let ageSeconds = self.configuration.retentionAge / .seconds(1)
        let keep = Int64(self.configuration.retentionCount)
        try await connection.query(
            "DELETE FROM \(unescaped: n.nodes) WHERE seen_at < now() - make_interval(secs => \(deadSeconds))",
            logger: self.logger
        )
        try await connection.query("DELETE FROM \(unescaped: n.bans) WHERE until < now()", logger: self.logger)
        try await connection.query("DELETE FROM \(unescaped: n.snapshotDemand) WHERE until < now()", logger: self.logger)
        let windowSeconds = self.configuration.idempotencyWindow / .seconds(1)
        try await connection.query(
            "DELETE FROM \(unescaped: n.idempotencyKeys) WHERE created_at < now() - make_interval(secs => \(windowSeconds))",
            logger: self.logger
        )
        try await connection.query(
            """
            DELETE FROM \(unescaped: n.events)
            WHERE id <= (SELECT coalesce(max(id), 0) FROM \(unescaped: n.events)) - \(keep)
                OR created_at < now() - make_interval(secs => \(ageSeconds))
            """,
            logger: self.logger
        )
    }

    /// Keeps this node's presence rows equal to its connected client ids: woken by every connect and
    /// disconnect (coalesced), and once per heartbeat in case a wakeup was coalesced away.
    func runPresence() async {
        var announced: [String: PresenceTopics.Entry] = [:]
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.configuration.heartbeatInterval)
                self.presenceWakeups.yield()
            }
        }
        defer { ticker.cancel() }
        for await _ in self.presenceSignals {
            guard !Task.isCancelled else { break }
            guard self.shared.withLockedValue({ $0.status.state == .online }) else {
                // After a reconnect the rows may be gone (the node was declared dead): announce all.
                announced = [:]
                continue
            }
            if self.shared.withLockedValue({ shared in defer { shared.presenceLost = false }; return shared.presenceLost }) {
                announced = [:]
            }
            let current = self.broker.topicsByClientID.mapValues(PresenceTopics.Entry.init)
            let changed = current.filter { announced[$0.key] != $0.value }
            let gone = announced.keys.filter { current[$0] == nil }
            guard !changed.isEmpty || !gone.isEmpty else { continue }
            let n = self.names
            let node = self.configuration.nodeName
            do {
                try await withTimeout(self.configuration.nodeTimeout) {
                    try await self.client.withTransaction(logger: self.logger) { connection in
                        if !changed.isEmpty {
                            try await connection.query(
                                """
                                INSERT INTO \(unescaped: n.presence) (node_id, client_id, connections, topics)
                                SELECT \(node), c.client_id, c.connections, c.topics
                                FROM unnest(\(Array(changed.keys))::text[], \(changed.values.map(\.connections))::int4[], \(changed.values.map(\.topics))::text[])
                                    AS c(client_id, connections, topics)
                                ON CONFLICT (node_id, client_id) DO UPDATE SET connections = excluded.connections, topics = excluded.topics
                                """,
                                logger: self.logger
                            )
                        }
                        if !gone.isEmpty {
                            try await connection.query(
                                "DELETE FROM \(unescaped: n.presence) WHERE node_id = \(node) AND client_id = ANY(\(gone))",
                                logger: self.logger
                            )
                        }
                    }
                }
                announced = current
            } catch {
                announced = [:]
                self.logger.debug("presence sync failed", metadata: ["error": "\(Self.describe(error))"])
            }
        }
    }

    /// Deletes this node's row (and with it its presence) so `broadcastTo` stops counting its clients at once.
    ///
    /// It runs when ``run()``'s workers have stopped, on the pool (which ``run()`` stops after it),
    /// in a task that is not cancelled, within the pool's connect timeout plus 3 s. A node that does
    /// not leave keeps counting its clients for ``ClusterConfiguration/nodeTimeout``.
    func leave() async {
        let n = self.names
        let name = self.configuration.nodeName
        let logger = self.quietLogger
        let client = self.client
        let budget = self.configuration.database.options.connectTimeout + .seconds(3)
        // On the pool's open connections: a loaded database is not also asked for a new one (on a
        // connection of its own, the start (SCRAM) could take the whole budget under load).
        let outcome = await Task { () -> (any Error)? in
            do {
                _ = try await withTimeout(budget) {
                    try await client.query("DELETE FROM \(unescaped: n.nodes) WHERE node_id = \(name)", logger: logger)
                }
                return nil
            } catch {
                return error
            }
        }.value
        do {
            if let outcome { throw outcome }
            self.logger.info("left the cluster", metadata: ["node": "\(self.configuration.nodeName)"])
        } catch {
            self.logger.warning("could not leave the cluster cleanly", metadata: ["error": "\(Self.describe(error))"])
        }
    }
}


/// The topics of one client's connections on a node, as its presence row keeps them: one line per
/// connection, its topics separated by tabs, an empty line for a connection without topics. Topics
/// have no control characters, so neither separator can occur in one.
enum PresenceTopics {
    struct Entry: Hashable, Sendable {
        var connections: Int32
        var topics: String

        init(_ filters: [TopicFilter]) {
            self.connections = Int32(clamping: filters.count)
            self.topics = filters.map { $0.names.joined(separator: "\t") }.joined(separator: "\n")
        }
    }

    /// The filters of a row; a row of a node that announced no topics (an earlier version) counts
    /// its connections as unfiltered.
    static func decode(_ text: String, connections: Int) -> [TopicFilter] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count == connections else {
            return Array(repeating: .everything, count: max(0, connections))
        }
        return lines.map { line in
            let topics = line.split(separator: "\t").compactMap { try? Topic(String($0)) }
            return (try? TopicFilter(topics)) ?? .everything
        }
    }
}
