import Foundation
import Logging
import NIOCore
import PostgresNIO
import SSEBroker

/// One node's connections as its last snapshot had them (``PostgresCluster/clientSnapshots(reusing:)``).
public struct NodeClients: Sendable, Hashable {
    /// The node's name.
    public var node: String
    /// When the node took the snapshot (its database's clock).
    public var takenAt: Date
    /// Its connections then, with the counters they had.
    public var clients: [ClientInfo]
    /// `taken_at` in microseconds since 1970, as the database computed it: which snapshot this is,
    /// compared in the database by the next read (a `Date` would not survive the round trip exactly).
    var version: Int64
}

// Every node's clients for the consoles' all-nodes table.
//
// Pull-by-demand through the database: a console that shows the table upserts a demand row
// (``requestClientSnapshots()``, at most every few seconds); while another node's demand row is
// fresh, each node writes ONE row holding a snapshot of all its connections (tab-separated text, about 60
// bytes a connection) every ``ClusterConfiguration/clientSnapshotInterval``; the console reads the
// other nodes' rows each refresh, decoding only those that changed since its previous read, and
// never a row older than ``snapshotMaxAge`` (a row outlives its demand window and its node's
// restart, and a node whose writes fail keeps its last one). Whether another node wants them comes
// with the heartbeat's query, so nobody watching costs no query at all; a console's own node
// writes none (its own clients are live in its broker).
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
        } catch {
            self.shared.withLockedValue { $0.lastDemand = nil }
            throw error
        }
    }

    /// The oldest snapshot ``clientSnapshots(reusing:)`` returns, in seconds: two and a half
    /// intervals, room for one late write (a node writes one per interval while it is wanted).
    var snapshotMaxAge: Double {
        2.5 * (self.configuration.clientSnapshotInterval / .seconds(1))
    }

    /// The other live nodes' latest snapshots, each at most a few snapshot intervals old (this
    /// node's own clients are live in its broker).
    /// - Parameter previous: what the previous call returned: a node whose snapshot has not changed
    ///   since is not fetched or decoded again, its clients are taken from here.
    public func clientSnapshots(reusing previous: [NodeClients] = []) async throws -> [NodeClients] {
        let n = self.names
        let timeoutSeconds = self.configuration.nodeTimeout / .seconds(1)
        let maxAge = self.snapshotMaxAge
        let known = Dictionary(previous.map { ($0.node, $0) }, uniquingKeysWith: { first, _ in first })
        let knownNodes = Array(known.keys)
        let knownVersions = knownNodes.map { known[$0]?.version ?? 0 }
        return try await withTimeout(self.configuration.nodeTimeout) {
            // The age is the database's: `taken_at` is its clock too.
            let rows = try await self.client.query(
                """
                SELECT s.node_id, s.taken_at, v.version, CASE WHEN p.version = v.version THEN NULL ELSE s.body END
                FROM \(unescaped: n.clientSnapshots) s JOIN \(unescaped: n.nodes) n ON n.node_id = s.node_id
                    CROSS JOIN LATERAL (SELECT (EXTRACT(EPOCH FROM s.taken_at) * 1000000)::int8 AS version) v
                    LEFT JOIN unnest(\(knownNodes)::text[], \(knownVersions)::int8[]) AS p(node_id, version)
                        ON p.node_id = s.node_id
                WHERE s.node_id <> \(self.configuration.nodeName)
                    AND n.seen_at > now() - make_interval(secs => \(timeoutSeconds))
                    AND s.taken_at > now() - make_interval(secs => \(maxAge))
                ORDER BY s.node_id
                """,
                logger: self.logger
            )
            var snapshots: [NodeClients] = []
            var decoded = 0
            for try await (node, takenAt, version, body) in rows.decode((String, Date, Int64, ByteBuffer?).self) {
                if let body {
                    decoded += 1
                    let clients = ClientSnapshot.decode(body)
                    snapshots.append(NodeClients(node: node, takenAt: takenAt, clients: clients, version: version))
                } else if let unchanged = known[node] {  // no body: the version `previous` has
                    snapshots.append(unchanged)
                }
            }
            if decoded > 0 { self.shared.withLockedValue { $0.snapshotBodiesDecoded += decoded } }
            return snapshots
        }
    }

    /// Writes this node's snapshot every interval while another node's console wants them.
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
            // Only for another node's console (the heartbeat's query says whether one wants them):
            // a console's own node is live in its broker.
            let wanted = self.shared.withLockedValue { $0.status.state == .online && $0.snapshotsWanted }
            guard wanted else { continue }
            // The heartbeat that first sees a demand wakes this at once; never more than twice per interval.
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
///     connection  client  address  connected-at(ms)  events  bytes  errors  total-errors  backlog  topics(,)  protocol
///
/// Client ids, addresses, topics and protocols have neither tabs nor newlines (validation keeps
/// control characters out of ids and topics; an address is `host:port`; a protocol is `HTTP/1.1` or
/// `h2`). The protocol is empty for `HTTP/1.1`: 8 bytes a connection less (about 60 in all, README).
/// Decoding takes the lines of earlier versions too (10 fields, no protocol: `HTTP/1.1`, the only
/// one they reported), and ignores fields after the ones it knows, so that a node reads the rows of
/// a newer one during a rolling deploy. (A node of an earlier version skips the newer lines: it wants
/// exactly 10 fields.)
enum ClientSnapshot {
    static func encode(_ clients: [ClientInfo]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(clients.count * 96)
        for client in clients {
            let millis = Int64((client.connectedAt.timeIntervalSince1970 * 1000).rounded())
            let httpVersion = client.httpVersion == "HTTP/1.1" ? "" : client.httpVersion
            buffer.writeString(
                "\(client.connectionID)\t\(client.clientID)\t\(client.remoteAddress ?? "-")\t\(millis)\t\(client.eventsSent)\t"
                    + "\(client.bytesSent)\t\(client.consecutiveErrors)\t\(client.totalErrors)\t\(client.backlogBytes)\t"
                    + "\(client.topics.joined(separator: ","))\t\(httpVersion)\n"
            )
        }
        return buffer
    }

    static func decode(_ body: ByteBuffer) -> [ClientInfo] {
        let text = String(buffer: body)
        var clients: [ClientInfo] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count >= 10, let connection = UInt64(fields[0]), let millis = Int64(fields[3]),
                let events = Int(fields[4]), let bytes = Int(fields[5]), let errors = Int(fields[6]),
                let total = Int(fields[7]), let backlog = Int(fields[8])
            else { continue }
            clients.append(
                ClientInfo(
                    connectionID: connection, clientID: String(fields[1]),
                    remoteAddress: fields[2] == "-" ? nil : String(fields[2]), userAgent: nil,
                    connectedAt: Date(timeIntervalSince1970: Double(millis) / 1000), eventsSent: events, bytesSent: bytes,
                    consecutiveErrors: errors, totalErrors: total, backlogBytes: backlog,
                    topics: fields[9].isEmpty ? [] : fields[9].split(separator: ",").map(String.init),
                    httpVersion: fields.count > 10 && !fields[10].isEmpty ? String(fields[10]) : "HTTP/1.1"
                )
            )
        }
        return clients
    }
}
