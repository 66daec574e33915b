import Foundation
import NIOCore
import PostgresNIO
import SSEBroker
import SSEClient
import SSETestSupport
import Testing

@testable import SSEBrokerPostgres

/// Kicks and bans on every node, bans kept in the cluster's database, and every node's clients for
/// the consoles: several real nodes on a real PostgreSQL.
@Suite(.timeLimit(.minutes(2)))
struct ClusterControlTests {
    /// What a client gets when it connects: `200` and a stream, or `204` when banned.
    func status(connecting clientID: String, to node: TestNode) async throws -> Int {
        let client = try await SSEClient.connect(host: "127.0.0.1", port: node.port, path: "/connect?id=\(clientID)")
        defer { Task { await client.close() } }
        return Int(client.status.code)
    }

    @Test func kick_closesTheIDsConnectionsOnEveryNode_andCountsThemByNode() async throws {
        try await withClusterNodes(3) { nodes, url, prefix in
            let onFirst = try await nodes[0].connect("alice")
            let onSecond = try await nodes[1].connect("alice")
            let onSecondToo = try await nodes[1].connect("alice")
            var bystander = try await nodes[1].connect("bob")
            try await presenceVisible("alice", url: url, prefix: prefix, connections: 3)

            let closed = try await nodes[2].broker.kick("alice", origin: .console)
            #expect(closed == ClosedConnections(connections: 3, nodes: 2))
            #expect(closed.description == "3 connections on 2 nodes")
            // Each stream ends (a kicked stream is closed by its node; the reader returns at its end).
            for var reader in [onFirst, onSecond, onSecondToo] {
                _ = await reader.untilEnd()
            }
            // Not banned: alice may come back at once; bob was never touched.
            #expect(try await self.status(connecting: "alice", to: nodes[1]) == 200)
            #expect(nodes[1].broker.clients(withID: "bob").count == 1)

            await #expect(throws: BrokerError.unknownClient("nobody")) {
                try await nodes[0].broker.kick("nobody", origin: .console)
            }
            await bystander.client.close()
            _ = await bystander.untilEnd()
        }
    }

    @Test func ban_refusesTheIDOnEveryNode_includingOneStartedLater_untilUnban() async throws {
        try await withClusterNodes(2) { nodes, url, prefix in
            var mallory = try await nodes[1].connect("mallory")
            try await presenceVisible("mallory", url: url, prefix: prefix)

            let closed = try await nodes[0].broker.ban("mallory", for: .seconds(3600), origin: .console)
            #expect(closed == ClosedConnections(connections: 1, nodes: 1))
            // Her stream on the other node ends: that node got the ban.
            _ = await mallory.untilEnd()
            #expect(try await self.status(connecting: "mallory", to: nodes[0]) == 204)
            #expect(try await self.status(connecting: "mallory", to: nodes[1]) == 204)

            // A node that starts after the ban reads it from the database before it is online.
            let late = try await TestNode.start("late", url: url, prefix: prefix)
            do {
                #expect(try await self.status(connecting: "mallory", to: late) == 204)
                let ban = try #require(late.broker.bans.first)
                #expect(ban.clientID == "mallory" && ban.setBy == "console" && ban.node == "n1")
                let until = try #require(ban.until)
                #expect(abs(until.timeIntervalSince(ban.setAt) - 3600) < 1)

                // Unbanned from the late node: every node lets her in again.
                #expect(try await late.broker.unban("mallory", origin: .console))
                #expect(try await self.status(connecting: "mallory", to: late) == 200)
                for node in nodes {
                    try await eventually("\(node.cluster.configuration.nodeName) got the unban") { node.broker.bans.isEmpty }
                    #expect(try await self.status(connecting: "mallory", to: node) == 200)
                }
                #expect(try await !late.broker.unban("mallory", origin: .console))
            } catch {
                await late.stop()
                throw error
            }
            await late.stop()
        }
    }

    @Test func ban_survivesARestartOfEveryNode_andExpiresOnItsOwn() async throws {
        try await TestDatabase.withPrefix { url, prefix in
            let first = try await TestNode.start("first", url: url, prefix: prefix)
            try await first.broker.ban("eve", for: nil, origin: .api)
            try await first.broker.ban("mallory", for: .seconds(3600), origin: .api)
            await first.stop()

            let second = try await TestNode.start("second", url: url, prefix: prefix)
            do {
                #expect(second.broker.bans.map(\.clientID) == ["eve", "mallory"])
                #expect(try await self.status(connecting: "eve", to: second) == 204)
                // A short ban holds, then runs out without an unban (5 s: room for a loaded machine).
                try await second.broker.ban("brief", for: .seconds(5), origin: .api)
                #expect(try await self.status(connecting: "brief", to: second) == 204)
                try await eventually("the short ban ran out", timeout: .seconds(20)) {
                    second.broker.bans.map(\.clientID) == ["eve", "mallory"]
                }
                #expect(try await self.status(connecting: "brief", to: second) == 200)
            } catch {
                await second.stop()
                throw error
            }
            await second.stop()
        }
    }

    @Test func clientSnapshots_listEveryOtherNodesConnections_whileAConsoleAsks() async throws {
        try await withClusterNodes(3) { nodes, url, prefix in
            var alice = try await nodes[1].connect("alice", topics: ["news"])
            var bob = try await nodes[2].connect("bob")
            var carol = try await nodes[2].connect("carol")
            try await presenceVisible("carol", url: url, prefix: prefix)
            // Nobody asked yet: no node has written a snapshot.
            #expect(try await nodes[0].cluster.clientSnapshots().isEmpty)

            try await nodes[0].cluster.requestClientSnapshots()
            var snapshots: [NodeClients] = []
            try await eventually("both other nodes wrote a snapshot") {
                snapshots = try await nodes[0].cluster.clientSnapshots()
                return snapshots.map(\.node) == ["n2", "n3"]
            }
            #expect(snapshots[0].clients.map(\.clientID) == ["alice"])
            #expect(snapshots[0].clients.first?.topics == ["news"])
            #expect(snapshots[0].clients.first?.remoteAddress?.hasPrefix("127.0.0.1:") == true)
            #expect(Set(snapshots[1].clients.map(\.clientID)) == ["bob", "carol"])

            // Counters move with the next snapshots: one broadcast reaches everyone.
            #expect(try await nodes[0].post("hello", type: "news").status == .accepted)
            _ = try await alice.nextEvent()
            _ = try await bob.nextEvent()
            _ = try await carol.nextEvent()
            try await eventually("the snapshots show the event sent") {
                try await nodes[0].cluster.requestClientSnapshots()
                let clients = try await nodes[0].cluster.clientSnapshots().flatMap(\.clients)
                return clients.count == 3 && clients.allSatisfy { $0.eventsSent == 1 }
            }
            for var reader in [alice, bob, carol] {
                await reader.client.close()
                _ = await reader.untilEnd()
            }
        }
    }

    @Test func controlPayloads_roundTrip_andEventsAreUnchanged() throws {
        let ban = Ban(
            clientID: "mallory", until: Date(timeIntervalSince1970: 1_800_000_000.25),
            setAt: Date(timeIntervalSince1970: 1_700_000_000.5), setBy: "http 10.0.0.7:53012\n", node: "n1"
        )
        let encoded = NotificationPayload.encode(.ban(node: "n1", ban))
        var expected = ban
        expected.setBy = "http 10.0.0.7:53012"  // control characters dropped
        #expect(NotificationPayload.decode(encoded) == .control(.ban(node: "n1", expected)))
        #expect(NotificationPayload.decode(NotificationPayload.encode(.kick(node: "n2", clientID: "bob"))) == .control(.kick(node: "n2", clientID: "bob")))
        #expect(NotificationPayload.decode(NotificationPayload.encode(.unban(node: "n2", clientID: "bob"))) == .control(.unban(node: "n2", clientID: "bob")))
        #expect(NotificationPayload.decode("\u{1F}explode\u{1F}n1\u{1F}bob") == nil)
        let event = LoggedEvent(id: 7, type: "t", data: ByteBuffer(string: "d"), target: nil, origin: .api)
        #expect(NotificationPayload.decode(NotificationPayload.encode(event)) == .event(event))
    }

    /// Writes a snapshot row the way a node does (the tests that use it have no demand, so no node
    /// writes one of its own).
    func writeSnapshot(_ node: String, at takenAt: String, _ clients: [String], url: String, prefix: String) async throws {
        let body = ClientSnapshot.encode(clients.enumerated().map { ClientInfo(connectionID: UInt64($0.offset + 1), clientID: $0.1) })
        try await TestDatabase.withClient(url) { client in
            _ = try await client.query(
                """
                INSERT INTO \(unescaped: prefix)_client_snapshots (node_id, taken_at, clients, body)
                VALUES (\(node), \(unescaped: takenAt), \(clients.count), \(body))
                ON CONFLICT (node_id) DO UPDATE SET taken_at = excluded.taken_at, clients = excluded.clients, body = excluded.body
                """
            )
        }
    }

    @Test func clientSnapshots_olderThanTwoAndAHalfIntervals_areNotShown() async throws {
        try await withClusterNodes(3) { nodes, url, prefix in
            // n3's row is old: a row outlives its demand window and its node's restart, and a node
            // whose writes fail keeps its last one. n2's is ahead of the clock, so that it stays
            // within the bound (0.75 s here) however slow the machine is.
            try await self.writeSnapshot("n2", at: "now() + interval '1 minute'", ["alice"], url: url, prefix: prefix)
            try await self.writeSnapshot("n3", at: "now() - interval '1 hour'", ["bob"], url: url, prefix: prefix)
            let snapshots = try await nodes[0].cluster.clientSnapshots()
            #expect(snapshots.map(\.node) == ["n2"])
            #expect(snapshots.first?.clients.map(\.clientID) == ["alice"])
            // A row just past the bound is out too.
            try await self.writeSnapshot("n3", at: "now() - interval '0.8 seconds'", ["bob"], url: url, prefix: prefix)
            #expect(try await nodes[0].cluster.clientSnapshots().map(\.node) == ["n2"])
        }
    }

    @Test func clientSnapshots_reusingThePreviousRead_fetchOnlyTheBodiesThatChanged() async throws {
        try await withClusterNodes(3) { nodes, url, prefix in
            let watcher = nodes[0].cluster
            func decoded() -> Int { watcher.shared.withLockedValue { $0.snapshotBodiesDecoded } }
            // Ahead of the clock: within the age bound however slow the machine is.
            try await self.writeSnapshot("n2", at: "now() + interval '1 minute'", ["alice"], url: url, prefix: prefix)
            try await self.writeSnapshot("n3", at: "now() + interval '1 minute'", ["bob"], url: url, prefix: prefix)
            let first = try await watcher.clientSnapshots()
            #expect(first.map { $0.clients.map(\.clientID) } == [["alice"], ["bob"]])
            #expect(decoded() == 2)

            // n2's body changes under the same taken_at (no node does that: it shows whether the body
            // is fetched at all); n3 takes a new snapshot.
            try await TestDatabase.withClient(url) { client in
                let carol = ClientSnapshot.encode([ClientInfo(connectionID: 1, clientID: "carol")])
                try await client.query("UPDATE \(unescaped: prefix)_client_snapshots SET body = \(carol) WHERE node_id = 'n2'")
            }
            try await self.writeSnapshot("n3", at: "now() + interval '2 minutes'", ["dave"], url: url, prefix: prefix)
            let second = try await watcher.clientSnapshots(reusing: first)
            #expect(second.map { $0.clients.map(\.clientID) } == [["alice"], ["dave"]])
            #expect(second.first == first.first)
            #expect(decoded() == 3)
            // Without the previous read, every body is fetched.
            #expect(try await watcher.clientSnapshots().map { $0.clients.map(\.clientID) } == [["carol"], ["dave"]])
            #expect(decoded() == 5)
        }
    }

    @Test func requestClientSnapshots_theOtherNodesWriteThem_theAskingNodeNone() async throws {
        try await withClusterNodes(2) { nodes, url, prefix in
            /// Each node's snapshot row, as the microseconds of its `taken_at`.
            func written() async throws -> [String: Int64] {
                try await TestDatabase.withClient(url) { client in
                    let rows = try await client.query(
                        "SELECT node_id, (EXTRACT(EPOCH FROM taken_at) * 1000000)::int8 FROM \(unescaped: prefix)_client_snapshots")
                    var written: [String: Int64] = [:]
                    for try await (node, version) in rows.decode((String, Int64).self) { written[node] = version }
                    return written
                }
            }
            try await nodes[0].cluster.requestClientSnapshots()
            var first: Int64 = 0
            try await eventually("n2 wrote a snapshot") {
                first = try await written()["n2"] ?? 0
                return first != 0
            }
            // By n2's second snapshot n1, whose heartbeats see the same demand row, would have written.
            try await eventually("n2 wrote another snapshot") { (try await written()["n2"] ?? 0) > first }
            #expect(try await written()["n1"] == nil)

            // Once n2's console asks too, n1 writes for it.
            try await nodes[1].cluster.requestClientSnapshots()
            try await eventually("n1 wrote a snapshot for n2") { try await written()["n1"] != nil }
        }
    }

    final class CollectingSink: AuditSink, Sendable {
        let records = Locked<[AuditRecord]>([])
        func record(_ record: AuditRecord) { self.records.withLock { $0.append(record) } }
        var all: [AuditRecord] { self.records.withLock { $0 } }
    }

    @Test func clusterActions_areAuditedOnce_onTheNodeThatTookThem() async throws {
        let sinks = [CollectingSink(), CollectingSink()]
        try await withClusterNodes(2, audit: { sinks[$0 - 1] }) { nodes, url, prefix in
            var alice = try await nodes[1].connect("alice")
            var mallory = try await nodes[1].connect("mallory")
            try await presenceVisible("alice", url: url, prefix: prefix)
            try await presenceVisible("mallory", url: url, prefix: prefix)

            let delivery = try await nodes[0].broker.publish(Event(type: "news", data: "hello", origin: .console), to: nil)
            _ = try await alice.nextEvent()
            _ = try await mallory.nextEvent()
            #expect(try await nodes[0].broker.kick("alice", origin: .console) == ClosedConnections(connections: 1, nodes: 1))
            _ = await alice.untilEnd()
            let origin = ActionOrigin.http("10.0.0.7:53012")
            let banned = try await nodes[0].broker.ban("mallory", for: .seconds(3600), origin: origin)
            #expect(banned == ClosedConnections(connections: 1, nodes: 1))
            _ = await mallory.untilEnd()
            #expect(try await nodes[0].broker.unban("mallory", origin: .api))

            let records = sinks[0].all
            #expect(records.map(\.action) == ["broadcast", "kick", "ban", "unban"])
            #expect(records.map(\.origin) == ["console", "console", "http", "api"])
            #expect(records.map(\.remoteAddress) == [nil, nil, "10.0.0.7:53012", nil])
            // A broadcast's recipients on the other nodes are as their heartbeats counted them: what
            // the publish answered is what is recorded.
            #expect(
                records.first?.arguments
                    == ["type": "news", "bytes": "5", "eventId": "\(delivery.eventID)", "recipients": "\(delivery.recipients)"])
            #expect(records.dropFirst().first?.arguments == ["client": "alice", "closed": "1", "nodes": "1"])
            let ban = try #require(records.dropFirst(2).first?.arguments)
            #expect(ban["client"] == "mallory" && ban["closed"] == "1" && ban["nodes"] == "1" && ban["duration"] == "3600s")
            #expect(ban["until"] != nil)
            #expect(records.last?.arguments == ["client": "mallory"])
            // n2 delivered the event and closed the connections for n1: it records none of it.
            #expect(sinks[1].all.isEmpty)
        }
    }
}
