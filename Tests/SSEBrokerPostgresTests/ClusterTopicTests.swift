import Foundation
import NIOCore
import NIOHTTP1
import SSEBroker
import SSEClient
import SSETestSupport
import Testing

@testable import SSEBrokerPostgres

/// Topics across a cluster: a subscriber on one node gets the matching events published on another,
/// and a resume on any node replays only what matches.
@Suite struct ClusterTopicTests {
    @Test func topics_filterEventsPublishedOnAnotherNode() async throws {
        try await withClusterNodes(2) { nodes, url, prefix in
            var price = try await nodes[1].connect("p", topics: ["price"])
            var orders = try await nodes[1].connect("o", topics: ["orders.*"])
            var all = try await nodes[0].connect("a")
            for (type, data) in [("chat", "c1"), ("price", "p1"), ("orders.eu", "o1"), ("price", "p2")] {
                let response = try await nodes[0].post(data, type: type)
                #expect(response.status == .accepted, "\(response.text)")
            }
            #expect(try await price.data(2) == ["p1", "p2"])
            #expect(try await orders.data(1) == ["o1"])
            #expect(try await all.data(4) == ["c1", "p1", "o1", "p2"])
            _ = (url, prefix)
        }
    }

    @Test func broadcastTo_acrossNodes_reachesTheMatchingConnections_andCountsThisNodesExactly() async throws {
        try await withClusterNodes(2) { nodes, url, prefix in
            var remote = try await nodes[1].connect("alice", topics: ["dm"])
            var news = try await nodes[1].connect("alice", topics: ["news", "d*"])
            _ = try await nodes[1].connect("alice", topics: ["news"])
            try await presenceVisible("alice", url: url, prefix: prefix, connections: 3)
            var local = try await nodes[0].connect("bob", topics: ["dm"])
            // Counted on node A from node B's presence: the two connections of alice whose topics match.
            let toAlice = try await nodes[0].post("psst", type: "dm", to: "alice")
            #expect(toAlice.status == .accepted, "\(toAlice.text)")
            #expect(toAlice.text.contains(#""delivered":2"#), "\(toAlice.text)")
            let chatToAlice = try await nodes[0].post("no", type: "chat", to: "alice")
            #expect(chatToAlice.text.contains(#""delivered":0"#), "\(chatToAlice.text)")
            let chatToBob = try await nodes[0].post("no", type: "chat", to: "bob")
            #expect(chatToBob.status == .accepted, "\(chatToBob.text)")
            #expect(chatToBob.text.contains(#""delivered":0"#))
            let dmToBob = try await nodes[0].post("yes", type: "dm", to: "bob")
            #expect(dmToBob.text.contains(#""delivered":1"#))
            #expect(try await remote.nextEvent().data == "psst")
            #expect(try await news.nextEvent().data == "psst")
            #expect(try await local.nextEvent().data == "yes")
            let nobody = try await nodes[0].post("x", type: "dm", to: "carol")
            #expect(nobody.status == .notFound)
        }
    }

    @Test func replay_onAnyNode_isFiltered() async throws {
        try await withClusterNodes(2) { nodes, _, _ in
            var first: UInt64?
            for (type, data) in [("price", "p1"), ("chat", "c1"), ("price", "p2"), ("orders.eu", "o1")] {
                let response = try await nodes[0].post(data, type: type)
                #expect(response.status == .accepted, "\(response.text)")
                first = first ?? response.eventID
            }
            let before = try #require(first) - 1
            // Node B delivered them live (its history); node A published them.
            var onB = try await nodes[1].connect("b", lastEventID: before, topics: ["price"])
            var onA = try await nodes[0].connect("a", lastEventID: before, topics: ["orders.*", "chat"])
            #expect(try await onB.data(2) == ["p1", "p2"])
            #expect(try await onA.data(2) == ["c1", "o1"])
        }
    }

    @Test func replay_fromTheSharedLog_afterARestart_isFiltered() async throws {
        let url = try await TestDatabase.url()
        let prefix = TestDatabase.prefix()
        let publisher = try await TestNode.start("n1", url: url, prefix: prefix)
        var ids: [UInt64] = []
        for (type, data) in [("price", "p1"), ("chat", "c1"), ("", "m1"), ("price", "p2")] {
            let response = try await publisher.post(data, type: type.isEmpty ? nil : type)
            ids.append(try #require(response.eventID))
        }
        // A node started afterwards knows the events only from the shared log.
        let late = try await TestNode.start("n2", url: url, prefix: prefix)
        var price = try await late.connect("p", lastEventID: ids[0] - 1, topics: ["price"])
        var untyped = try await late.connect("m", lastEventID: ids[0] - 1, topics: ["message"])
        #expect(try await price.data(2) == ["p1", "p2"])
        #expect(try await untyped.data(1) == ["m1"])
        await late.stop()
        await publisher.stop()
        await TestDatabase.drop(prefix: prefix, url: url)
    }
}

@Suite struct PresenceTopicsTests {
    @Test func roundTrip_oneLinePerConnection_andOldRowsCountAsUnfiltered() throws {
        let filters = [TopicFilter.everything, try TopicFilter([Topic("price"), Topic("orders.*")]), .everything]
        let entry = PresenceTopics.Entry(filters)
        #expect(entry.connections == 3)
        #expect(entry.topics == "\norders.*\tprice\n")
        #expect(PresenceTopics.decode(entry.topics, connections: 3) == filters)
        // A row of a node that announced no topics.
        #expect(PresenceTopics.decode("", connections: 2) == [.everything, .everything])
        #expect(PresenceTopics.decode("", connections: 1) == [.everything])
    }
}
