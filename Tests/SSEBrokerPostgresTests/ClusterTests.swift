import Foundation
import NIOCore
import SSEBroker
import SSEClient
import SSETestSupport
import Testing

@testable import SSEBrokerPostgres

/// Several broker nodes in this process against a real PostgreSQL: one broker to their clients.
@Suite struct ClusterTests {
    /// Runs `body` with `count` online nodes sharing a fresh table prefix; drops the tables after.
    func withNodes(_ count: Int, _ body: ([TestNode], String, String) async throws -> Void) async throws {
        try await withClusterNodes(count, body)
    }

    @Test func eventsPublishedOnAnyNode_reachTheClientsOfEveryNode_withTheSameIDsInOrder() async throws {
        try await self.withNodes(3) { nodes, _, _ in
            var readers: [StreamReader] = []
            for node in nodes {
                readers.append(try await node.connect())
                readers.append(try await node.connect())
            }
            var ids: [UInt64] = []
            for index in 0..<30 {
                let response = try await nodes[index % 3].post("e\(index)", type: "tick")
                #expect(response.status == .accepted, "\(response.text)")
                ids.append(try #require(response.eventID))
            }
            #expect(ids == ids.sorted() && Set(ids).count == 30)
            for index in readers.indices {
                var received: [ServerSentEvent] = []
                for _ in 0..<30 { received.append(try await readers[index].nextEvent()) }
                #expect(received.map(\.data) == (0..<30).map { "e\($0)" })
                #expect(received.map(\.lastEventID) == ids.map { String($0) })
                #expect(received.allSatisfy { $0.type == "tick" })
            }
            for var reader in readers { await reader.client.close(); _ = await reader.untilEnd() }
        }
    }

    @Test func broadcastTo_reachesTheClientOnWhicheverNodeItIs_and404sOnlyWhenNoNodeHasIt() async throws {
        try await self.withNodes(2) { nodes, url, prefix in
            var alice = try await nodes[1].connect("alice")
            var bob = try await nodes[0].connect("bob")
            try await presenceVisible("alice", url: url, prefix: prefix)
            let toAlice = try await nodes[0].post("just for alice", to: "alice")
            #expect(toAlice.status == .accepted, "\(toAlice.text)")
            #expect(toAlice.text.contains(#""delivered":1"#))
            let missing = try await nodes[0].post("for nobody", to: "nobody")
            #expect(missing.status == .notFound)
            #expect(missing.text.contains(#"no client is connected with id "nobody""#))
            let everyone = try await nodes[1].post("for everyone")
            #expect(everyone.status == .accepted)
            #expect(try await alice.data(2) == ["just for alice", "for everyone"])
            #expect(try await bob.data(1) == ["for everyone"])  // not alice's event
            await alice.client.close()
            await bob.client.close()
        }
    }

    @Test func clientResumingOnAnotherNode_getsExactlyTheEventsItMissed() async throws {
        try await self.withNodes(2) { nodes, _, _ in
            var first = try await nodes[0].connect("carol")
            for index in 1...3 { #expect(try await nodes[0].post("e\(index)").status == .accepted) }
            let seen = try await (0..<3).asyncMap { _ in try await first.nextEvent() }
            await first.client.close()
            let lastSeenText = try #require(seen.last?.lastEventID)
            let lastSeen = try #require(UInt64(lastSeenText))
            for index in 4...6 { #expect(try await nodes[0].post("e\(index)").status == .accepted) }
            // The other node has delivered e6 (to no one) before the client arrives, or will: either way
            // the client gets each missed event once.
            var resumed = try await nodes[1].connect("carol", lastEventID: lastSeen)
            #expect(try await nodes[0].post("e7").status == .accepted)
            #expect(try await resumed.data(4) == ["e4", "e5", "e6", "e7"])
            await resumed.client.close()
        }
    }

    @Test func nodeStartedLater_restoresTheHistoryFromTheSharedLog() async throws {
        try await self.withNodes(1) { nodes, url, prefix in
            var ids: [UInt64] = []
            for index in 1...5 { ids.append(try #require(try await nodes[0].post("e\(index)").eventID)) }
            let late = try await TestNode.start("late", url: url, prefix: prefix)
            #expect(late.broker.lastEventID == ids.last)
            var reader = try await late.connect("dave", lastEventID: ids[1])
            #expect(try await reader.data(3) == ["e3", "e4", "e5"])
            // And new events continue from the log's ids, not from 1.
            let next = try #require(try await late.post("e6").eventID)
            #expect(next > ids.last!)
            #expect(try await reader.nextEvent().lastEventID == String(next))
            await reader.client.close()
            await late.stop()
        }
    }

    @Test func eventTooLargeForANotification_isReadFromTheTable_intact() async throws {
        try await self.withNodes(2) { nodes, _, _ in
            var reader = try await nodes[1].connect()
            let large = String(repeating: "0123456789abcdef", count: 1250) + "\u{1F}é"  // 20 KB, a separator, UTF-8
            let multiline = "line one\nline two"
            #expect(try await nodes[0].post(large, type: "big").status == .accepted)
            #expect(try await nodes[0].post(multiline).status == .accepted)
            let big = try await reader.nextEvent()
            #expect(big.type == "big" && big.data == large)
            #expect(try await reader.nextEvent().data == multiline)
            await reader.client.close()
        }
    }

    @Test func badInput_getsTheSameClearErrorsAsAStandAloneBroker_andLosesNothing() async throws {
        try await self.withNodes(2) { nodes, _, _ in
            var reader = try await nodes[1].connect()
            let badType = try await TestNode.post(port: nodes[0].port, "x", type: "a%0Ab")
            #expect(badType.status == .badRequest)
            #expect(badType.text.contains("invalid event type"))
            let connection = try await HTTPClientConnection.connect(host: "127.0.0.1", port: nodes[0].port)
            let notUTF8 = try await connection.send(.POST, "/broadcast", body: ByteBuffer(bytes: [0xFF, 0xFE]))
            #expect(notUTF8.status == .badRequest)
            await connection.close()
            #expect(try await nodes[0].post("fine").status == .accepted)
            #expect(try await reader.data(1) == ["fine"])
            await reader.client.close()
        }
    }

    @Test func cleanupJob_keepsTheLogWithinItsRetention_andForgetsDeadNodes() async throws {
        let url = try await TestDatabase.url()
        let prefix = TestDatabase.prefix()
        let node = try await TestNode.start("keeper", url: url, prefix: prefix, retention: 5)
        let ghost = try await TestNode.start("ghost", url: url, prefix: prefix)
        await ghost.abandon()  // stops without leaving: its row stays until the cleanup job removes it
        for index in 1...12 { #expect(try await node.post("e\(index)").status == .accepted) }
        try await eventually("the log holds at most 5 events and the ghost node is gone") {
            try await TestDatabase.withClient(url) { client in
                let rows = try await client.query(
                    "SELECT (SELECT count(*) FROM \(unescaped: prefix)_events), (SELECT count(*) FROM \(unescaped: prefix)_nodes WHERE node_id = 'ghost')")
                for try await (events, ghosts) in rows.decode((Int64, Int64).self) { return events <= 5 && ghosts == 0 }
                return false
            }
        }
        await node.stop()
        await TestDatabase.drop(prefix: prefix, url: url)
    }

    @Test func nodeThatStops_leavesAtOnce_soBroadcastToItsClients404s() async throws {
        try await self.withNodes(1) { nodes, url, prefix in
            let leaving = try await TestNode.start("leaving", url: url, prefix: prefix)
            let reader = try await leaving.connect("gina")
            try await presenceVisible("gina", url: url, prefix: prefix)
            await reader.client.close()
            await leaving.stop()
            let answer = try await nodes[0].post("too late", to: "gina")
            #expect(answer.status == .notFound)
        }
    }

    @Test func nodeRunAsServices_gracefulShutdown_deliversThenLeavesTheCluster() async throws {
        try await self.withNodes(1) { nodes, url, prefix in
            let serviced = try await TestNode.start("serviced", url: url, prefix: prefix, asServices: true)
            var reader = try await serviced.connect("ines")
            try await presenceVisible("ines", url: url, prefix: prefix)
            #expect(try await nodes[0].post("hello", to: "ines").status == .accepted)
            #expect(try await reader.nextEvent().data == "hello")
            await serviced.serviceGroup?.triggerGracefulShutdown()
            await serviced.waitUntilStopped()
            // The server stopped first: the stream got its farewell.
            #expect(await reader.untilEnd().last == .comment("broker shutting down"))
            // Then the node left the cluster: its client is nowhere any more.
            #expect(try await nodes[0].post("too late", to: "ines").status == .notFound)
        }
    }

    @Test func unreachableDatabase_nodeStartsOffline_withTheReason_andRefusesPublishes() async throws {
        // A port nothing listens on.
        let node = try await TestNode.start("lonely", url: "postgres://sse@127.0.0.1:1/none?sslmode=disable", prefix: "unused", requireOnline: false)
        #expect(await node.cluster.waitUntilOnline(timeout: .milliseconds(300)) == false)
        try await eventually("the node reports why it is offline") {
            guard case .offline(let reason, _) = node.cluster.status.state else { return false }
            return reason.lowercased().contains("refused")
        }
        let refused = try await node.post("nobody will see this")
        #expect(refused.status == .serviceUnavailable)
        #expect(refused.text.contains("cannot reach the shared log"))
        await node.stop()
    }

    @Test func status_listsEveryNodeWithItsClientsAndLag() async throws {
        try await self.withNodes(2) { nodes, _, _ in
            let reader = try await nodes[1].connect("erin")
            #expect(try await nodes[0].post("one").status == .accepted)
            try await eventually("node n1 sees n2's client and both nodes caught up") {
                let status = nodes[0].cluster.status
                return status.state == .online && status.nodes.map(\.name) == ["n1", "n2"]
                    && status.nodes.first { $0.name == "n2" }?.clients == 1 && status.nodes.allSatisfy { status.lag(of: $0) == 0 }
                    && status.head >= 1
            }
            #expect(nodes[0].cluster.status.json.contains(#""state":"online""#))
            await reader.client.close()
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
