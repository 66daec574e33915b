import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import PostgresNIO
import SSEBroker
import SSEClient
import SSETestSupport
import Testing

@testable import SSEBrokerPostgres

/// The HTTP side of a cluster node: pipelined requests while publishes wait for the shared log, and
/// `Idempotency-Key`s honoured by every node.
@Suite struct ClusterHTTPTests {
    func withNodes(_ count: Int, publishTimeout: Duration = TestNode.publishTimeout, _ body: ([TestNode], String, String) async throws -> Void)
        async throws
    {
        try await withClusterNodes(count, publishTimeout: publishTimeout, body)
    }

    static func post(_ body: String, headers: String = "") -> String {
        "POST /broadcast HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\(headers)\r\n\(body)"
    }

    static func statuses(_ text: String) -> [String] {
        text.matches(of: /HTTP\/1\.1 (\d{3})/).map { String($0.output.1) }
    }

    static func ids(_ text: String) -> [UInt64] {
        text.matches(of: /"id":"(\d+)"/).compactMap { UInt64($0.output.1) }
    }

    static func eventCount(url: String, prefix: String) async throws -> Int {
        try await TestDatabase.withClient(url) { client in
            let rows = try await client.query(PostgresQuery(unsafeSQL: "SELECT count(*)::int8 FROM \(prefix)_events"))
            var count: Int64 = 0
            for try await value in rows.decode(Int64.self) { count = value }
            return Int(count)
        }
    }

    @Test func pipelinedPublishes_onAClusterNode_areAllAnsweredInOrder() async throws {
        try await self.withNodes(1) { nodes, url, prefix in
            let text = try await RawConnection.exchange(
                port: nodes[0].port,
                Self.post("a") + Self.post("b") + Self.post("c") + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                    + Self.post("d", headers: "Connection: close\r\n") + Self.post("never")
            )
            #expect(Self.statuses(text) == ["202", "202", "202", "404", "202"])
            let ids = Self.ids(text)
            #expect(ids.count == 4 && ids == ids.sorted())
            #expect(try await Self.eventCount(url: url, prefix: prefix) == 4)
        }
    }

    @Test func pipelinedRetries_onAClusterNode_getTheFirstAnswer() async throws {
        try await self.withNodes(1) { nodes, url, prefix in
            let key = "Idempotency-Key: pipelined\r\n"
            let text = try await RawConnection.exchange(
                port: nodes[0].port,
                Self.post("a", headers: key) + Self.post("a", headers: key) + Self.post("b", headers: key)
                    + Self.post("c", headers: "Connection: close\r\n")
            )
            #expect(Self.statuses(text) == ["202", "202", "422", "202"])
            let ids = Self.ids(text)
            #expect(ids.count == 3 && ids[0] == ids[1] && ids[2] > ids[0])
            #expect(try await Self.eventCount(url: url, prefix: prefix) == 2)
        }
    }

    @Test func retryOnAnotherNode_getsTheSameID_andPublishesNothing() async throws {
        try await self.withNodes(2) { nodes, url, prefix in
            var reader = try await nodes[1].connect("alice")
            try await presenceVisible("alice", url: url, prefix: prefix)
            let first = try await nodes[0].post("hello", type: "t", to: "alice", idempotencyKey: "order-7")
            #expect(first.status == .accepted, "\(first.text)")
            #expect(first.text.contains(#""delivered":1"#))
            let retry = try await nodes[1].post("hello", type: "t", to: "alice", idempotencyKey: "order-7")
            #expect(retry.status == .accepted, "\(retry.text)")
            #expect(retry.text == first.text)
            #expect(retry.headers.first(name: "idempotent-replayed") == "true")
            let other = try await nodes[1].post("changed", type: "t", to: "alice", idempotencyKey: "order-7")
            #expect(other.status == .unprocessableEntity)
            #expect(try await Self.eventCount(url: url, prefix: prefix) == 1)
            #expect(try await reader.nextEvent().data == "hello")
            // The client is gone: a retry still gets the first answer, not 404.
            await reader.client.close()
            _ = await reader.untilEnd()
            try await presenceVisible("alice", url: url, prefix: prefix, connections: 0)
            let late = try await nodes[0].post("hello", type: "t", to: "alice", idempotencyKey: "order-7")
            #expect(late.status == .accepted)
            #expect(late.text == first.text)
        }
    }

    @Test func concurrentDuplicatesOnTwoNodes_publishOnce() async throws {
        try await self.withNodes(2) { nodes, url, prefix in
            let ports = nodes.map(\.port)
            let responses = try await withThrowingTaskGroup(of: HTTPClientResponse.self) { group in
                for index in 0..<12 {
                    group.addTask { try await TestNode.post(port: ports[index % 2], "once", idempotencyKey: "burst") }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(responses.allSatisfy { $0.status == .accepted })
            #expect(Set(responses.compactMap(\.eventID)).count == 1)
            #expect(responses.filter { $0.headers.first(name: "idempotent-replayed") == nil }.count == 1)
            #expect(try await Self.eventCount(url: url, prefix: prefix) == 1)
        }
    }

    @Test func publishThatTimedOut_retriedWithItsKey_makesOneEvent() async throws {
        try await self.withNodes(1, publishTimeout: .seconds(1)) { nodes, url, prefix in
            let lockKey = PostgresCluster.Names(prefix: prefix).lockKey
            let node = nodes[0]
            // Hold the publish lock so the node's write waits past its timeout.
            try await TestDatabase.withClient(url) { client in
                try await client.withTransaction(logger: quietLogger) { connection in
                    try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: quietLogger)
                    let response = try await node.post("slow", idempotencyKey: "slow-1")
                    #expect(response.status == .serviceUnavailable)
                }
            }
            // The first write may now commit; the retry waits for it and gets its id, or publishes once.
            let retry = try await node.post("slow", idempotencyKey: "slow-1")
            #expect(retry.status == .accepted, "\(retry.text)")
            #expect(try await Self.eventCount(url: url, prefix: prefix) == 1)
            let again = try await node.post("slow", idempotencyKey: "slow-1")
            #expect(again.text == retry.text)
        }
    }

    @Test func keysPastTheWindow_areIgnored_andDeletedByTheCleanup() async throws {
        try await self.withNodes(2) { nodes, url, prefix in
            _ = try await nodes[0].post("x", idempotencyKey: "old")
            _ = try await nodes[0].post("y", idempotencyKey: "stale")
            _ = try await TestDatabase.withClient(url) { client in
                try await client.query(PostgresQuery(unsafeSQL: "UPDATE \(prefix)_idempotency_keys SET created_at = now() - interval '2 days'"))
            }
            // The other node has no memory of its own of the key: the shared log decides, and its
            // row is past the window.
            let fresh = try await nodes[1].post("x", idempotencyKey: "old")
            #expect(fresh.status == .accepted)
            #expect(fresh.headers.first(name: "idempotent-replayed") == nil)
            #expect(try await Self.eventCount(url: url, prefix: prefix) == 3)
            try await eventually("the cleanup deletes the expired key") {
                try await TestDatabase.withClient(url) { client in
                    let rows = try await client.query(
                        PostgresQuery(unsafeSQL: "SELECT count(*)::int8 FROM \(prefix)_idempotency_keys WHERE key = 'stale'"))
                    for try await count in rows.decode(Int64.self) { return count == 0 }
                    return false
                }
            }
        }
    }
}
