import Foundation
import Logging
import NIOCore
import PostgresNIO
import SSEBroker

/// One node's connections as its last snapshot had them (``PostgresCluster/clientSnapshots()``).
public struct NodeClients: Sendable, Hashable {
    /// The node's name.
    public var node: String
    /// When the node took the snapshot (its database's clock).
    public var takenAt: Date
    /// Its connections then, with the counters they had.
    public var clients: [ClientInfo]
}

// Every node's clients for the consoles' all-nodes table.
//
// Pull-by-demand through the database: a console that shows the table upserts a demand row
// (``requestClientSnapshots()``, at most every few seconds); while any demand row is fresh, each
// node writes ONE row holding a snapshot of all its connections (tab-separated text, about 60
// bytes a connection) every ``ClusterConfiguration/clientSnapshotInterval``; the console reads the
// other nodes' rows each refresh. Whether anyone wants them comes with the heartbeat's query, so
// nobody watching costs no query at all.
// One row per node rather than a row per connection: 10,000 connections are one 1 MB update (one
// WAL record of the toasted value), not 10,000 row updates and index entries. Measured numbers
// (3 nodes x 10,000 clients) are in README, "All nodes".
extension PostgresCluster {
    /// How long a console's demand keeps the nodes writing snapshots after its last request.
    static let snapshotDemandWindow = 10.0

    /// Asks every node for snapshots of its clients for the next few seconds. Call it on every
    /// refresh of a view that shows them; it writes to the database at most every 3 seconds.
    public func requestClientSnapshots() async throws {
        let now = ContinuousClock.now
        let due = self.shared.withLockedValue { shared -> Bool in
            if let last = shared.lastDemand, now - last < .seconds(3) { return false }
            shared.lastDemand = now
            return true
        }
        guard due else { return }
        let n = self.names
        let window = Self.snapshotDemandWindow
        do {
            try await withTimeout(self.configuration.nodeTimeout) {
                _ = try await self.client.query(
                    """
                    INSERT INTO \(unescaped: n.snapshotDemand) (node_id, until) VALUES (\(self.configuration.nodeName), now() + make_interval(secs => \(window)))
                    ON CONFLICT (node_id) DO UPDATE SET until = excluded.until
                    """,
                    logger: self.logger
                )
            }
            self.snapshotWakeups.yield()  // this node writes its own at once too
        } catch {
            self.shared.withLockedValue { $0.lastDemand = nil }
            throw error
        }
    }

    /// The other live nodes' latest snapshots (this node's own clients are live in its broker).
    public func clientSnapshots() async throws -> [NodeClients] {
        let n = self.names
        let timeoutSeconds = self.configuration.nodeTimeout / .seconds(1)
        return try await withTimeout(self.configuration.nodeTimeout) {
            let rows = try await self.client.query(
                """
                SELECT s.node_id, s.taken_at, s.body FROM \(unescaped: n.clientSnapshots) s JOIN \(unescaped: n.nodes) n USING (node_id)
                WHERE s.node_id <> \(self.configuration.nodeName) AND n.seen_at > now() - make_interval(secs => \(timeoutSeconds))
                ORDER BY s.node_id
                """,
                logger: self.logger
            )
            var snapshots: [NodeClients] = []
            for try await (node, takenAt, body) in rows.decode((String, Date, ByteBuffer).self) {
                snapshots.append(NodeClients(node: node, takenAt: takenAt, clients: ClientSnapshot.decode(body)))
            }
            return snapshots
        }
    }

    /// Writes this node's snapshot every interval while some console wants them.
    func runSnapshots() async {
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.configuration.clientSnapshotInterval)
                self.snapshotWakeups.yield()
            }
        }
        defer { ticker.cancel() }
        let n = self.names
        var lastWritten = ContinuousClock.now - .seconds(3600)
        for await _ in self.snapshotSignals {
            guard !Task.isCancelled else { break }
            let wanted = self.shared.withLockedValue { shared in
                let asked = shared.lastDemand.map { ContinuousClock.now - $0 < .seconds(Self.snapshotDemandWindow) } ?? false
                return shared.status.state == .online && (shared.snapshotsWanted || asked)
            }
            guard wanted else { continue }
            // A console's request wakes this at once; never more than twice per interval.
            guard ContinuousClock.now - lastWritten >= self.configuration.clientSnapshotInterval / 2 else { continue }
            do {
                try await withTimeout(self.configuration.nodeTimeout) {
                    try await self.client.withConnection { connection in
                        let clients = self.broker.clients
                        let body = ClientSnapshot.encode(clients)
                        try await connection.query(
                            """
                            INSERT INTO \(unescaped: n.clientSnapshots) (node_id, taken_at, clients, body)
                            VALUES (\(self.configuration.nodeName), now(), \(clients.count), \(body))
                            ON CONFLICT (node_id) DO UPDATE SET taken_at = excluded.taken_at, clients = excluded.clients, body = excluded.body
                            """,
                            logger: self.logger
                        )
                    }
                }
                lastWritten = .now
            } catch {
                self.logger.debug("client snapshot failed", metadata: ["error": "\(Self.describe(error))"])
            }
        }
    }
}

/// A node's connections as text, one line each, fields separated by tabs:
///
///     connection  client  address  connected-at(ms)  events  bytes  errors  total-errors  backlog  topics(,)
///
/// Client ids, addresses and topics have neither tabs nor newlines (validation keeps control
/// characters out of ids and topics; an address is `host:port`).
enum ClientSnapshot {
    static func encode(_ clients: [ClientInfo]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(clients.count * 96)
        for client in clients {
            let millis = Int64((client.connectedAt.timeIntervalSince1970 * 1000).rounded())
            buffer.writeString(
                "\(client.connectionID)\t\(client.clientID)\t\(client.remoteAddress ?? "-")\t\(millis)\t\(client.eventsSent)\t"
                    + "\(client.bytesSent)\t\(client.consecutiveErrors)\t\(client.totalErrors)\t\(client.backlogBytes)\t"
                    + "\(client.topics.joined(separator: ","))\n"
            )
        }
        return buffer
    }

    static func decode(_ body: ByteBuffer) -> [ClientInfo] {
        let text = String(buffer: body)
        var clients: [ClientInfo] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 10, let connection = UInt64(fields[0]), let millis = Int64(fields[3]),
                let events = Int(fields[4]), let bytes = Int(fields[5]), let errors = Int(fields[6]),
                let total = Int(fields[7]), let backlog = Int(fields[8])
            else { continue }
            clients.append(
                ClientInfo(
                    connectionID: connection, clientID: String(fields[1]),
                    remoteAddress: fields[2] == "-" ? nil : String(fields[2]), userAgent: nil,
                    connectedAt: Date(timeIntervalSince1970: Double(millis) / 1000), eventsSent: events, bytesSent: bytes,
                    consecutiveErrors: errors, totalErrors: total, backlogBytes: backlog,
                    topics: fields[9].isEmpty ? [] : fields[9].split(separator: ",").map(String.init)
                )
            )
        }
        return clients
    }
}
