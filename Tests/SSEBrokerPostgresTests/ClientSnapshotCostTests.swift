import Foundation
import Logging
import NIOCore
import NIOEmbedded
import PostgresNIO
import SSEBroker
import Testing

@testable import SSEBrokerPostgres

/// The measurement behind README's "All nodes" numbers: three real cluster nodes (real
/// ``PostgresCluster``s on the real database) with `SSE_MEASURE_CLIENTS` (default 10,000) connections
/// each, while a console asks for every node's clients. Off unless `SSE_MEASURE_SNAPSHOTS=1` (it
/// takes a minute and is timing-bound): run it with `scripts/measure-all-nodes.sh`.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["SSE_MEASURE_SNAPSHOTS"] == "1"))
struct ClientSnapshotCostTests {
    /// A connection that writes nowhere: the broker only needs its loop.
    final class NullTransport: SubscriberTransport {
        let loop: EmbeddedEventLoop
        var eventLoop: any EventLoop { self.loop }
        var bufferedBytes: Int { 0 }
        init(loop: EmbeddedEventLoop) { self.loop = loop }
        func write(_ buffer: ByteBuffer) {}
        func flush() {}
        func close() {}
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    static func walBytes(_ client: PostgresClient) async throws -> Int64 {
        let rows = try await client.query("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8")
        for try await bytes in rows.decode(Int64.self) { return bytes }
        return 0
    }

    @Test func threeNodes_measureWhatTheAllNodesTableCosts() async throws {
        let perNode = Int(ProcessInfo.processInfo.environment["SSE_MEASURE_CLIENTS"] ?? "") ?? 10_000
        try await withClusterPrefix { url, prefix in
            var nodes: [(Broker, PostgresCluster, Task<Void, Never>)] = []
            var transports: [NullTransport] = []
            for index in 1...3 {
                let broker = try Broker(logger: quietLogger)
                var configuration = try ClusterConfiguration(url: url, nodeName: "m\(index)")
                configuration.tablePrefix = prefix
                let cluster = try PostgresCluster(configuration: configuration, broker: broker, logger: quietLogger)
                let loop = EmbeddedEventLoop()
                for client in 0..<perNode {
                    let transport = NullTransport(loop: loop)
                    transports.append(transport)
                    _ = try broker.subscribe(
                        clientID: "c\(index)-\(client)", lastEventID: nil, topics: try TopicFilter([Topic("news")]),
                        remoteAddress: "10.\(index).\(client / 256 % 256).\(client % 256):\(40_000 + client % 20_000)", userAgent: nil,
                        transport: transport
                    )
                }
                let task = Task { await cluster.run() }
                #expect(await cluster.waitUntilOnline(timeout: .seconds(60)))
                nodes.append((broker, cluster, task))
            }
            let started = nodes
            defer { for (_, _, task) in started { task.cancel() } }
            // Presence of 30,000 clients settles first (that cost exists without this feature).
            try await eventually("presence settled", timeout: .seconds(120), interval: .milliseconds(500)) {
                try await TestDatabase.withClient(url) { client in
                    let rows = try await client.query("SELECT count(*)::int8 FROM \(unescaped: prefix)_presence")
                    for try await count in rows.decode(Int64.self) { return count == Int64(3 * perNode) }
                    return false
                }
            }
            let window = 20.0
            try await TestDatabase.withClient(url) { client in
                // Idle: nobody watches the table.
                var wal0 = try await Self.walBytes(client)
                var cpu0 = Self.cpuSeconds()
                try await Task.sleep(for: .seconds(window))
                let idleWAL = try await Self.walBytes(client) - wal0
                let idleCPU = Self.cpuSeconds() - cpu0

                // Watched: node 1's console refreshes once a second, as the terminal console does.
                wal0 = try await Self.walBytes(client)
                cpu0 = Self.cpuSeconds()
                let watcher = started[0].1
                var reads = 0
                var previous: [NodeClients] = []  // as the console does: unchanged rows are not fetched again
                var readSeconds = 0.0
                var rowsRead = 0
                let start = ContinuousClock.now
                while ContinuousClock.now - start < .seconds(window) {
                    try await watcher.requestClientSnapshots()
                    let began = ContinuousClock.now
                    let snapshots = try await watcher.clientSnapshots(reusing: previous)
                    previous = snapshots
                    readSeconds += (ContinuousClock.now - began) / .seconds(1)
                    rowsRead = snapshots.reduce(0) { $0 + $1.clients.count }
                    reads += 1
                    try await Task.sleep(for: .seconds(1))
                }
                let watchedWAL = try await Self.walBytes(client) - wal0
                let watchedCPU = Self.cpuSeconds() - cpu0

                let size = try await client.query(
                    "SELECT sum(octet_length(body))::int8, sum(clients)::int8, count(*)::int8 FROM \(unescaped: prefix)_client_snapshots")
                var bodyBytes: Int64 = 0
                var snapshotClients: Int64 = 0
                var snapshotRows: Int64 = 0
                for try await (bytes, clients, rows) in size.decode((Int64, Int64, Int64).self) {
                    (bodyBytes, snapshotClients, snapshotRows) = (bytes, clients, rows)
                }
                let stats = try await client.query(
                    "SELECT n_tup_upd::int8 + n_tup_ins::int8 FROM pg_stat_user_tables WHERE relname = \(prefix + "_client_snapshots")")
                var writes: Int64 = 0
                for try await count in stats.decode(Int64.self) { writes = count }

                // One node's part of the CPU, measured on its own: a snapshot taken and encoded, and a
                // read of the two others decoded.
                let encodeStart = Self.cpuSeconds()
                var encoded = ByteBuffer()
                for _ in 0..<10 { encoded = ClientSnapshot.encode(started[1].0.clients) }
                let encodeCPU = (Self.cpuSeconds() - encodeStart) / 10
                let decodeStart = Self.cpuSeconds()
                for _ in 0..<10 { _ = ClientSnapshot.decode(encoded) }
                let decodeCPU = (Self.cpuSeconds() - decodeStart) / 10

                let report = """
                    all-nodes table cost, 3 nodes x \(perNode) clients, \(Int(window)) s windows
                      snapshot body: \(bodyBytes / max(snapshotRows, 1)) bytes per node (\(bodyBytes / max(snapshotClients, 1)) bytes per client), \(snapshotRows) rows
                      snapshot rows written: \(writes) in total (one per node per interval while watched)
                      WAL idle: \(idleWAL / Int64(window)) bytes/s; watched: \(watchedWAL / Int64(window)) bytes/s
                      process CPU (3 nodes + watcher) idle: \(String(format: "%.1f", 100 * idleCPU / window))% of a core; watched: \(String(format: "%.1f", 100 * watchedCPU / window))%
                      per snapshot (one node): broker.clients + encode \(String(format: "%.1f", encodeCPU * 1000)) ms CPU
                      per refresh (watcher): query \(String(format: "%.1f", 1000 * readSeconds / Double(max(reads, 1)))) ms wall for \(rowsRead) rows; decode of one node's body \(String(format: "%.1f", decodeCPU * 1000)) ms CPU
                    """
                print(report)
                #expect(rowsRead == 2 * perNode)
            }
        }
    }
}
