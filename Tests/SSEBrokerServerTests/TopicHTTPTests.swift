import NIOCore
import NIOHTTP1
import SSEBroker
import SSEBrokerServer
import SSEClient
import SSETestSupport
import Testing

/// `GET /connect?topic=…`: the contract of issue 12 over real sockets. A filtered-out event is
/// shown not to arrive by the next event a subscriber reads: the one after it.
@Suite(.timeLimit(.minutes(1)))
struct TopicHTTPTests {
    func publish(_ server: TestServer, _ query: String, _ body: String) async throws -> String {
        let response = try await server.request(.POST, "/broadcast\(query)", body: body)
        #expect(response.status == .accepted)
        return response.text
    }

    @Test func exactTopic_getsOnlyThatType() async throws {
        try await TestServer.with { server in
            var price = try await server.connectedReader("/connect?id=p&topic=price")
            #expect(try await self.publish(server, "?type=chat", "hi") == "{\"id\":\"1\",\"delivered\":0}\n")
            #expect(try await self.publish(server, "?type=prices", "no") == "{\"id\":\"2\",\"delivered\":0}\n")
            #expect(try await self.publish(server, "", "untyped") == "{\"id\":\"3\",\"delivered\":0}\n")
            #expect(try await self.publish(server, "?type=price", "42") == "{\"id\":\"4\",\"delivered\":1}\n")
            #expect(try await price.nextEvent() == ServerSentEvent(type: "price", data: "42", lastEventID: "4"))
        }
    }

    @Test func pattern_matchesAnyRun_withSeveralStars() async throws {
        try await TestServer.with { server in
            var orders = try await server.connectedReader("/connect?topic=orders.*")
            var regions = try await server.connectedReader("/connect?topic=*.eu.*")
            for type in ["orders", "orders.eu.paid", "order.us", "orders.us", "stock.eu.low", "eu"] {
                _ = try await self.publish(server, "?type=\(type)", type)
            }
            #expect(try await orders.data(2) == ["orders.eu.paid", "orders.us"])
            #expect(try await regions.data(2) == ["orders.eu.paid", "stock.eu.low"])
            _ = try await self.publish(server, "?type=orders.end", "end")
            #expect(try await orders.nextEvent().data == "end")
        }
    }

    @Test func severalTopics_anyMatches_andTheCountIsPerConnection() async throws {
        try await TestServer.with { server in
            // Both topics match a price event: it arrives once.
            var reader = try await server.connectedReader("/connect?topic=price&topic=p*&topic=orders.*")
            #expect(try await self.publish(server, "?type=price", "1") == "{\"id\":\"1\",\"delivered\":1}\n")
            _ = try await self.publish(server, "?type=chat", "2")
            _ = try await self.publish(server, "?type=orders.eu", "3")
            _ = try await self.publish(server, "?type=pear", "4")
            #expect(try await reader.data(3) == ["1", "3", "4"])
            let info = try #require(server.broker.clients.first)
            #expect(info.topics == ["orders.*", "p*", "price"])
        }
    }

    @Test func noTopic_getsEverything_andMessageIsTheUntypedType() async throws {
        try await TestServer.with { server in
            var all = try await server.connectedReader("/connect")
            var untyped = try await server.connectedReader("/connect?topic=message")
            #expect(try await self.publish(server, "?type=price", "1") == "{\"id\":\"1\",\"delivered\":1}\n")
            #expect(try await self.publish(server, "", "2") == "{\"id\":\"2\",\"delivered\":2}\n")
            #expect(try await all.data(2) == ["1", "2"])
            #expect(try await untyped.nextEvent() == ServerSentEvent(data: "2", lastEventID: "2"))
        }
    }

    @Test(arguments: [
        ("topic=", "invalid query parameter \"topic\": it is empty"),
        ("topic=a%0Ab", "invalid query parameter \"topic\" (\"aU+000Ab\"): it contains the control character U+000A at position 2 (a line break would inject SSE fields)"),
        ("topic=" + String(repeating: "x", count: 129), "invalid query parameter \"topic\" (\"" + String(repeating: "x", count: 40) + "…\"): it is 129 bytes long; the limit is 128"),
        ((0...Topic.maxPerConnection).map { "topic=t\($0)" }.joined(separator: "&"), "query parameter \"topic\" is given 65 times; the limit is 64"),
    ])
    func badTopic_is400_namingTheParameter_andNothingIsRegistered(query: String, message: String) async throws {
        try await TestServer.with { server in
            let response = try await server.request(.GET, "/connect?id=bad&\(query)")
            #expect(response.status == .badRequest)
            #expect(response.text == "400 Bad Request: \(message)\n")
            #expect(server.broker.clients.isEmpty)
            #expect(server.broker.statistics.connectionsAccepted == 0)
            #expect(server.broker.statistics.refusals == [400: 1])
        }
    }

    @Test func replay_sendsOnlyTheMissedEventsThatMatch() async throws {
        try await TestServer.with { server in
            for (type, data) in [("price", "p1"), ("chat", "c1"), ("", "m1"), ("price", "p2"), ("orders.eu", "o1")] {
                _ = try await self.publish(server, type.isEmpty ? "" : "?type=\(type)", data)
            }
            var price = try await server.connectedReader("/connect?topic=price", headers: ["Last-Event-ID": "1"])
            var mixed = try await server.connectedReader("/connect?topic=message&topic=orders.*&lastEventId=0")
            _ = try await self.publish(server, "?type=chat", "c2")
            _ = try await self.publish(server, "?type=price", "p3")
            _ = try await self.publish(server, "?type=orders.us", "o2")
            #expect(try await price.nextEvent() == ServerSentEvent(type: "price", data: "p2", lastEventID: "4"))
            #expect(try await price.nextEvent() == ServerSentEvent(type: "price", data: "p3", lastEventID: "7"))
            #expect(try await mixed.data(3) == ["m1", "o1", "o2"])
        }
    }

    @Test func broadcastTo_reachesTheTargetsMatchingConnections_andCountsThem() async throws {
        try await TestServer.with { server in
            var dm = try await server.connectedReader("/connect?id=alice&topic=dm")
            var news = try await server.connectedReader("/connect?id=alice&topic=news&topic=d*")
            var bob = try await server.connectedReader("/connect?id=bob")
            #expect(try await self.publish(server, "?id=alice&type=dm", "psst") == "{\"id\":\"1\",\"delivered\":2}\n")
            #expect(try await self.publish(server, "?id=alice&type=news", "extra") == "{\"id\":\"2\",\"delivered\":1}\n")
            // Alice is connected, but neither connection wants chat: 202 with 0, not 404.
            #expect(try await self.publish(server, "?id=alice&type=chat", "no") == "{\"id\":\"3\",\"delivered\":0}\n")
            let unknown = try await server.request(.POST, "/broadcast?id=carol&type=dm", body: "x")
            #expect(unknown.status == .notFound)
            _ = try await self.publish(server, "?type=dm", "all")
            #expect(try await dm.data(2) == ["psst", "all"])
            #expect(try await news.data(3) == ["psst", "extra", "all"])
            #expect(try await bob.nextEvent() == ServerSentEvent(type: "dm", data: "all", lastEventID: "4"))
        }
    }

    @Test func broadcast_deliveredCountsOnlyMatchingConnections() async throws {
        try await TestServer.with { server in
            var readers: [StreamReader] = []
            for topics in ["", "topic=a", "topic=a", "topic=b", "topic=a*", "topic=a&topic=*"] {
                readers.append(try await server.connectedReader("/connect?\(topics)"))
            }
            #expect(try await self.publish(server, "?type=a", "1") == "{\"id\":\"1\",\"delivered\":5}\n")
            #expect(try await self.publish(server, "?type=b", "2") == "{\"id\":\"2\",\"delivered\":3}\n")
            #expect(try await self.publish(server, "?type=ab", "3") == "{\"id\":\"3\",\"delivered\":3}\n")
            #expect(try await self.publish(server, "?type=c", "4") == "{\"id\":\"4\",\"delivered\":2}\n")
            #expect(try await readers[0].data(4) == ["1", "2", "3", "4"])
            #expect(try await readers[1].data(1) == ["1"])
            #expect(try await readers[3].data(1) == ["2"])
            #expect(try await readers[4].data(2) == ["1", "3"])
            #expect(try await readers[5].data(4) == ["1", "2", "3", "4"])
            #expect(server.broker.statistics.delivered == 13)
        }
    }
}
