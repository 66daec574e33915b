import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PostgresNIO
import SSEBroker
import SSEBrokerServer
import SSEClient
import SSETestSupport
import ServiceLifecycle
import Testing

@testable import SSEBrokerPostgres

let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// The database the cluster tests share, with a table prefix per test (SSETestSupport).
typealias TestDatabase = ClusterTestDatabase

/// One broker node in this process: a broker, its HTTP server on an ephemeral port, and its
/// cluster backplane; or, with `asServices`, the backplane and the server in a `ServiceGroup`.
final class TestNode: Sendable {
    let broker: Broker
    let server: BrokerServer
    let cluster: PostgresCluster
    let port: Int
    /// The group running the node's services, when started `asServices`.
    let serviceGroup: ServiceGroup?
    private let task: Task<Void, Never>

    private init(
        broker: Broker, server: BrokerServer, cluster: PostgresCluster, port: Int, serviceGroup: ServiceGroup?, task: Task<Void, Never>
    ) {
        self.serviceGroup = serviceGroup
        self.broker = broker
        self.server = server
        self.cluster = cluster
        self.port = port
        self.task = task
    }

    /// Starts a node and waits until it is online.
    /// The tests' publish timeout: room for a pool connection's first start (SCRAM) on a loaded
    /// machine (a ban right after the node came online sometimes waited more than 5 s for it with
    /// the whole suite running). Tests of the timeout itself pass a shorter one.
    static let publishTimeout = Duration.seconds(15)

    static func start(
        _ name: String,
        url: String,
        prefix: String,
        history: Int = 1000,
        retention: Int = 10_000,
        publishTimeout: Duration = TestNode.publishTimeout,
        requireOnline: Bool = true,
        asServices: Bool = false,
        audit: (any AuditSink)? = nil
    ) async throws -> TestNode {
        let broker = try Broker(
            configuration: BrokerConfiguration(historySize: history, eventIDSeed: .after(0), retryJitter: 0), logger: quietLogger,
            audit: audit)
        var configuration = try ClusterConfiguration(url: url, nodeName: name)
        configuration.tablePrefix = prefix
        configuration.retentionCount = retention
        configuration.publishTimeout = publishTimeout
        // Short intervals keep the tests quick; the behaviour is the same.
        configuration.heartbeatInterval = .milliseconds(200)
        // Long enough that a heartbeat late under a sanitizer with the whole suite running (storms
        // included) does not make a live node look dead.
        configuration.nodeTimeout = .seconds(3)
        configuration.reconnectDelay = .milliseconds(50) ... .milliseconds(500)
        configuration.clientSnapshotInterval = .milliseconds(300)
        // SCRAM's key derivation under ThreadSanitizer, with the whole suite running, can take
        // longer than the default 3 s connect timeout: a node would then never come online.
        configuration.database.options.connectTimeout = .seconds(20)
        let cluster = try PostgresCluster(configuration: configuration, broker: broker, logger: quietLogger)
        let server = BrokerServer(
            broker: broker,
            host: "127.0.0.1",
            port: 0,
            group: MultiThreadedEventLoopGroup.singleton,
            logger: quietLogger
        )
        // As an app runs them: the backplane before the server, so the server stops first.
        let serviceGroup = asServices ? ServiceGroup(configuration: .init(services: [cluster, server], logger: quietLogger)) : nil
        let task: Task<Void, Never>
        var address: SocketAddress?
        if let serviceGroup {
            // Bound first to learn the port; the group's `run()` of the server then only serves.
            address = try await server.start()
            task = Task { try? await serviceGroup.run() }
        } else {
            task = Task { await cluster.run() }
        }
        if requireOnline {
            let online = await cluster.waitUntilOnline(timeout: .seconds(30))
            #expect(online, "node \(name) did not come online: \(cluster.status.state)")
        }
        if address == nil {
            address = try await server.start()
        }
        return TestNode(
            broker: broker, server: server, cluster: cluster, port: try #require(address?.port), serviceGroup: serviceGroup, task: task
        )
    }

    /// Waits until the node's service group has finished (after its graceful shutdown, say).
    func waitUntilStopped() async {
        await self.task.value
    }

    /// Stops serving and drops the database connections without leaving the cluster: what the
    /// others see of a node that crashed.
    func abandon() async {
        try? await self.server.shutdown(gracePeriod: .seconds(1))
        self.cluster.abandonOnStop()
        self.task.cancel()
        await self.task.value
    }

    func stop() async {
        try? await self.server.shutdown(gracePeriod: .seconds(1))
        self.task.cancel()
        await self.task.value
    }

    /// Subscribes and waits for the stream's preamble, so the client is registered on return.
    func connect(_ clientID: String? = nil, lastEventID: UInt64? = nil, topics: [String] = []) async throws -> StreamReader {
        var headers = HTTPHeaders()
        if let lastEventID { headers.add(name: "Last-Event-ID", value: String(lastEventID)) }
        let query = (clientID.map { ["id=\($0)"] } ?? []) + topics.map { "topic=\($0)" }
        let client = try await SSEClient.connect(
            host: "127.0.0.1",
            port: self.port,
            path: "/connect" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")),
            headers: headers
        )
        #expect(client.status == .ok)
        var reader = StreamReader(client)
        guard case .comment(let text) = try await reader.next(), text.hasPrefix("connected ") else {
            Issue.record("expected the connected comment first")
            return reader
        }
        return reader
    }

    /// `POST /broadcast` on a fresh connection.
    func post(_ data: String, type: String? = nil, to clientID: String? = nil, idempotencyKey: String? = nil) async throws
        -> HTTPClientResponse
    {
        try await Self.post(port: self.port, data, type: type, to: clientID, idempotencyKey: idempotencyKey)
    }

    static func post(
        port: Int,
        _ data: String,
        type: String? = nil,
        to clientID: String? = nil,
        idempotencyKey: String? = nil
    ) async throws -> HTTPClientResponse {
        var query: [String] = []
        if let type { query.append("type=\(type)") }
        if let clientID { query.append("id=\(clientID)") }
        let connection = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        defer { Task { await connection.close() } }
        let headers: HTTPHeaders = idempotencyKey.map { ["Idempotency-Key": $0] } ?? [:]
        return try await connection.post(
            "/broadcast" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")), body: data, headers: headers
        )
    }
}

extension HTTPClientResponse {
    /// The event id of a `202` answer (`{"id":"N",…}`).
    var eventID: UInt64? {
        guard let range = self.text.range(of: #""id":""#) else { return nil }
        return UInt64(self.text[range.upperBound...].prefix { $0.isNumber })
    }
}

/// Waits until `condition` holds, checking it again whenever `interval` passes; fails after `timeout`.
/// For states of another process or of the database that announce themselves in no other way.
func eventually(
    _ what: String,
    timeout: Duration = .seconds(30),
    interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    Issue.record("timed out waiting until \(what)")
    throw StreamEnded.ended
}

/// Waits until `clientID` is in the presence table (on some live node).
func presenceVisible(_ clientID: String, url: String, prefix: String, connections: Int = 1) async throws {
    try await eventually("\(clientID) is present in the cluster") {
        try await TestDatabase.withClient(url) { client in
            let rows = try await client.query(
                "SELECT coalesce(sum(connections), 0)::int8 FROM \(unescaped: prefix)_presence WHERE client_id = \(clientID)")
            for try await count in rows.decode(Int64.self) { return count == connections }
            return false
        }
    }
}

/// Runs `body` with `count` online nodes sharing a fresh table prefix (arguments: the nodes, the
/// database URL, the prefix); stops the nodes and drops the tables after, also when `body` throws.
func withClusterNodes(
    _ count: Int,
    publishTimeout: Duration = TestNode.publishTimeout,
    audit: (_ index: Int) -> (any AuditSink)? = { _ in nil },
    _ body: ([TestNode], String, String) async throws -> Void
) async throws {
    try await TestDatabase.withPrefix { url, prefix in
        var nodes: [TestNode] = []
        do {
            for index in 1...count {
                nodes.append(
                    try await TestNode.start("n\(index)", url: url, prefix: prefix, publishTimeout: publishTimeout, audit: audit(index)))
            }
            try await body(nodes, url, prefix)
        } catch {
            for node in nodes { await node.stop() }
            throw error
        }
        for node in nodes { await node.stop() }
    }
}
