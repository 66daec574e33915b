import NIOCore
import NIOHTTP1
import SSEBroker
import SSEBrokerServer
import SSEClient
import SSETestSupport
import Testing

// A safety net, not a timing assertion: under ThreadSanitizer with the whole suite (storms
// included) sharing two cores, the 2,000 sequential publishes below took over a minute.
@Suite(.timeLimit(.minutes(3)))
struct StreamTests {
    @Test func heartbeat_arrivesAsAComment() async throws {
        try await TestServer.with(BrokerConfiguration(heartbeatInterval: .milliseconds(50), eventIDSeed: .after(0), retryJitter: 0)) { server in
            var reader = try await server.connectedReader()
            #expect(try await reader.next() == .retry(3000))
            #expect(try await reader.next() == .comment("heartbeat"))
            #expect(try await reader.next() == .comment("heartbeat"))
        }
    }

    @Test func lastEventIDHeader_replaysExactlyTheMissedEvents_beforeLiveOnes() async throws {
        try await TestServer.with { server in
            var first = try await server.connectedReader("/connect?id=alice")
            let publisher = try await server.publisher()
            for index in 1...3 {
                _ = try await publisher.post("/broadcast", body: "e\(index)")
            }
            let seen = try await first.nextEvent()
            #expect(seen.lastEventID == "1")
            await first.client.close()
            // While alice is away: two broadcasts, one for her, one for bob.
            _ = try await publisher.post("/broadcast", body: "e4")
            var bob = try await server.connectedReader("/connect?id=bob")
            _ = try await publisher.post("/broadcast?id=bob", body: "for bob")
            _ = try await bob.nextEvent()
            try server.broker.ban("nobody")  // unrelated state must not matter

            var again = try await server.connectedReader("/connect?id=alice", headers: ["Last-Event-ID": "1"])
            _ = try await publisher.post("/broadcast", body: "live")
            let events = [try await again.nextEvent(), try await again.nextEvent(), try await again.nextEvent(), try await again.nextEvent()]
            #expect(events.map(\.data) == ["e2", "e3", "e4", "live"])
            #expect(events.map(\.lastEventID) == ["2", "3", "4", "6"])
            await publisher.close()
        }
    }

    @Test func lastEventIDQueryParameter_worksForAFirstConnect() async throws {
        try await TestServer.with { server in
            for index in 1...3 {
                try server.broker.broadcast(Event(data: "e\(index)"))
            }
            var reader = try await server.connectedReader("/connect?lastEventId=2")
            #expect(try await reader.nextEvent() == ServerSentEvent(data: "e3", lastEventID: "3"))
        }
    }

    @Test func listen_seesHTTPPublishedEvents() async throws {
        try await TestServer.with { server in
            let stream = server.broker.listen()
            _ = try await server.request(.POST, "/broadcast?type=t", body: "from http")
            var iterator = stream.makeAsyncIterator()
            let event = try #require(await iterator.next())
            #expect(event.dataString == "from http")
            #expect(event.type == "t")
            #expect(event.origin == .http)
            #expect(event.id == 1)
        }
    }

    @Test func manyConcurrentPublishers_loseNothing_andKeepEachPublishersOrder() async throws {
        let publishers = 8
        let perPublisher = 250
        try await TestServer.with { server in
            var reader = try await server.connectedReader()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for publisherIndex in 0..<publishers {
                    group.addTask {
                        let connection = try await server.publisher()
                        for sequence in 0..<perPublisher {
                            let response = try await connection.post("/broadcast", body: "\(publisherIndex):\(sequence)")
                            #expect(response.status == .accepted)
                        }
                        await connection.close()
                    }
                }
                try await group.waitForAll()
            }
            var next = [Int](repeating: 0, count: publishers)
            var previousID = 0
            for _ in 0..<(publishers * perPublisher) {
                let event = try await reader.nextEvent()
                let parts = event.data.split(separator: ":").compactMap { Int($0) }
                #expect(parts.count == 2)
                #expect(parts[1] == next[parts[0]], "publisher \(parts[0]) out of order")
                next[parts[0]] = parts[1] + 1
                let id = try #require(Int(event.lastEventID))
                #expect(id == previousID + 1, "ids must arrive in order without gaps")
                previousID = id
            }
            #expect(next == [Int](repeating: perPublisher, count: publishers))
            #expect(server.broker.statistics.published == publishers * perPublisher)
        }
    }

    @Test func kick_closesTheStream_andTheReasonIsRecorded() async throws {
        try await TestServer.with { server in
            var alice = try await server.connectedReader("/connect?id=alice")
            var bob = try await server.connectedReader("/connect?id=bob")
            #expect(try server.broker.kick("alice") == 1)
            _ = await alice.untilEnd()
            try await alice.client.closeFuture.get()
            #expect(server.broker.recentDisconnections.map(\.reason) == [.kicked])
            #expect(server.broker.clients.map(\.clientID) == ["bob"])
            _ = try await server.request(.POST, "/broadcast", body: "bob still here")
            #expect(try await bob.nextEvent().data == "bob still here")
        }
    }

    @Test func clientClosing_isNoticed() async throws {
        try await TestServer.with { server in
            let activity = server.broker.activity()
            let reader = try await server.connectedReader("/connect?id=leaver")
            await reader.client.close()
            var iterator = activity.makeAsyncIterator()
            #expect(await iterator.next().map(Self.describe) == "connected leaver")
            #expect(await iterator.next().map(Self.describe) == "disconnected leaver closed")
            #expect(server.broker.clients.isEmpty)
        }
    }

    @Test func shutdown_endsEveryStreamWithAFarewell() async throws {
        let broker = try Broker(logger: quietLogger)
        let server = BrokerServer(broker: broker, port: 0, logger: quietLogger)
        let port = try #require(try await server.start().port)
        let client = try await SSEClient.connect(host: "127.0.0.1", port: port)
        var reader = StreamReader(client)
        _ = try await reader.next()
        try await server.shutdown()
        let rest = await reader.untilEnd()
        #expect(rest.last == .comment("broker shutting down"))
        try await client.closeFuture.get()
        #expect(throws: BrokerError.shuttingDown) { try broker.broadcast(Event(data: "late")) }
    }

    static func describe(_ activity: BrokerActivity) -> String {
        switch activity {
        case .connected(let info): "connected \(info.clientID)"
        case .disconnected(let info, let reason): "disconnected \(info.clientID) \(reason)"
        }
    }
}

@Suite(.timeLimit(.minutes(3)))
struct SlowClientTests {
    /// A subscriber whose socket never drains (tiny receive buffer, never reads) is disconnected
    /// after the write timeout × tolerance while a healthy subscriber receives every event, and
    /// the slow one's queued bytes stay bounded the whole time.
    @Test func stalledClient_isDisconnected_healthyClientGetsEverything() async throws {
        let configuration = BrokerConfiguration(writeTimeout: .milliseconds(200), tolerance: 3, maxClientBacklogBytes: 128 << 10, eventIDSeed: .after(0), retryJitter: 0)
        try await TestServer.with(configuration) { server in
            let stalled = try await server.subscribe("/connect?id=stalled", receiveBufferSize: 4096, autoRead: false)
            #expect(stalled.status == .ok)
            var healthy = try await server.connectedReader("/connect?id=healthy")
            let payload = String(repeating: "x", count: 8 << 10)
            var published = 0
            var maxBacklog = 0
            // Lock-step: publish, then wait for the healthy client to have it; bounded by count.
            while server.broker.clients(withID: "stalled").count == 1 && published < 50_000 {
                published += 1
                try server.broker.broadcast(Event(data: "\(published) \(payload)"))
                let event = try await healthy.nextEvent()
                #expect(event.data.hasPrefix("\(published) "))
                maxBacklog = max(maxBacklog, server.broker.clients(withID: "stalled").first?.backlogBytes ?? 0)
            }
            #expect(server.broker.clients(withID: "stalled").isEmpty, "stalled client still connected after \(published) events")
            // The socket is really closed: once the stalled client reads again it drains what it was
            // sent and then sees the end of the stream.
            try await stalled.resumeReading()
            var drained = StreamReader(stalled)
            _ = await drained.untilEnd()
            try await stalled.closeFuture.get()
            let disconnection = try #require(server.broker.recentDisconnections.last)
            #expect(disconnection.client.clientID == "stalled")
            #expect(disconnection.reason == .overTolerance)
            #expect(disconnection.client.consecutiveErrors == 3)
            #expect(maxBacklog <= configuration.maxClientBacklogBytes + payload.utf8.count + 64)
            #expect(server.broker.statistics.disconnectedOverTolerance == 1)
            // The healthy client never missed one.
            #expect(server.broker.clients(withID: "healthy").first?.totalErrors == 0)
            #expect(server.broker.clients(withID: "healthy").first?.eventsSent == published)
        }
    }
}
