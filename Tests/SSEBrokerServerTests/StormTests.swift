import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SSEBroker
@testable import SSEBrokerServer
import SSEClient
import SSETestSupport
import Testing

/// Storms over real sockets: mass resets, producers faster than the fan-out, reconnect storms,
/// spread shutdowns. Correctness only (nobody healthy cut, every 202 delivered, ids increasing);
/// the timings are in BENCHMARKS.md (scripts/storm.sh).
@Suite(.timeLimit(.minutes(3)))
struct StormTests {
    @Test func massReset_everyConnectionIsNoticed_andPublishingGoesOn() async throws {
        try await TestServer.with { server in
            let count = 300
            let activity = server.broker.activity()
            var sockets: [any Channel] = []
            for index in 0..<count {
                sockets.append(try await Self.rawSubscriber(port: server.port, id: "r\(index)"))
            }
            var probe = try await server.connectedReader("/connect?id=probe")
            var connected = 0
            var iterator = activity.makeAsyncIterator()
            while connected < count + 1, let event = await iterator.next() {
                if case .connected = event { connected += 1 }
            }
            #expect(server.broker.connectionCount == count + 1)
            // All at once: RST (linger 0), as after a network blip or a proxy restart.
            for socket in sockets {
                socket.close(promise: nil)
            }
            let publisher = try await server.publisher()
            let response = try await publisher.post("/broadcast", body: "during the storm")
            #expect(response.status == .accepted)
            #expect(try await probe.nextEvent().data == "during the storm")
            var disconnected = 0
            while disconnected < count, let event = await iterator.next() {
                if case .disconnected = event { disconnected += 1 }
            }
            #expect(server.broker.connectionCount == 1)
            _ = try await publisher.post("/broadcast", body: "after")
            #expect(try await probe.nextEvent().data == "after")
            await publisher.close()
        }
    }

    @Test func connectStorm_allAreRegistered_andEveryoneGetsTheNextEvent() async throws {
        try await TestServer.with { server in
            let count = 200
            let clients = try await withThrowingTaskGroup(of: SSEClient.self) { group in
                for index in 0..<count {
                    group.addTask { try await server.subscribe("/connect?id=c\(index)") }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(clients.allSatisfy { $0.status == .ok })
            var readers: [StreamReader] = []
            for client in clients {
                var reader = StreamReader(client)
                _ = try await reader.next()  // the preamble: registered
                readers.append(reader)
            }
            #expect(server.broker.connectionCount == count)
            try server.broker.broadcast(Event(data: "hello all"))
            for var reader in readers {
                #expect(try await reader.nextEvent().data == "hello all")
            }
        }
    }

    /// Publishers pipelining faster than the fan-out, with a queue bound small enough to be hit
    /// all the time: they are slowed, never answered 202 for an event that is not delivered, and
    /// no reader is cut.
    @Test func producersFasterThanFanout_areSlowed_everyAcceptedEventIsDelivered_nobodyIsCut() async throws {
        var configuration = BrokerConfiguration.predictable
        configuration.maxQueuedEvents = 4
        configuration.overloadWait = .seconds(30)
        try await TestServer.with(configuration) { server in
            let readerCount = 20
            var readers: [StreamReader] = []
            for index in 0..<readerCount {
                readers.append(try await server.connectedReader("/connect?id=reader\(index)"))
            }
            let publishers = 4
            let pipelined = 16
            let statuses = try await withThrowingTaskGroup(of: [String].self) { group in
                for publisher in 0..<publishers {
                    group.addTask {
                        let raw = try await server.raw()
                        var requests = ""
                        for index in 0..<pipelined {
                            let body = "p\(publisher)-\(index)"
                            let last = index == pipelined - 1
                            requests += "POST /broadcast HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n"
                                + (last ? "Connection: close\r\n" : "") + "\r\n" + body
                        }
                        try await raw.send(requests)
                        let answer = try await raw.untilClosed()
                        // Status lines; a body ends in LF only, so the next response follows it directly.
                        return answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map {
                            "HTTP/1.1 " + ($0.components(separatedBy: "\r\n").first ?? "")
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(statuses.count == publishers * pipelined)
            #expect(statuses.allSatisfy { $0 == "HTTP/1.1 202 Accepted" })
            let accepted = publishers * pipelined
            #expect(server.broker.statistics.published == accepted)
            for index in readers.indices {
                var seen: [String] = []
                var lastID: UInt64 = 0
                for _ in 0..<accepted {
                    let event = try await readers[index].nextEvent()
                    let id = try #require(UInt64(event.lastEventID))
                    #expect(id > lastID)
                    lastID = id
                    seen.append(event.data)
                }
                // Each publisher's events in the order it sent them.
                for publisher in 0..<publishers {
                    #expect(seen.filter { $0.hasPrefix("p\(publisher)-") } == (0..<pipelined).map { "p\(publisher)-\($0)" })
                }
            }
            #expect(server.broker.statistics.publishesDelayed > 0)  // the bound was hit: producers were slowed
            #expect(server.broker.statistics.disconnectedOverTolerance == 0)
            #expect(server.broker.connectionCount == readerCount)
        }
    }

    @Test func maxConnectRate_refusesTheExcess_with503AndRetryAfter() async throws {
        // One stream a second: ten arriving together cannot all be admitted (they would have to
        // take nine seconds), whatever the load on the machine running the test.
        let security = ServerSecurity(limits: ServerLimits(maxConnectRate: 1))
        try await TestServer.with(security: security) { server in
            let clients = try await withThrowingTaskGroup(of: SSEClient.self) { group in
                for index in 0..<10 {
                    group.addTask { try await server.subscribe("/connect?id=burst\(index)") }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let refused = clients.filter { $0.status == .serviceUnavailable }
            #expect(clients.contains { $0.status == .ok })
            #expect(!refused.isEmpty)
            #expect(clients.allSatisfy { $0.status == .ok || $0.status == .serviceUnavailable })
            #expect(refused.allSatisfy { $0.headers.first(name: "retry-after") == "1" })
            #expect(server.broker.statistics.refusals[503, default: 0] == refused.count)
            for client in clients { await client.close() }
        }
    }

    @Test func connectRateLimiter_isATokenBucketHoldingOneSecond() throws {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        let limiter = ConnectRateLimiter(rate: 4, now: start)
        for _ in 0..<4 { try limiter.take(now: start) }
        #expect(throws: BrokerError.connectRateExceeded(perSecond: 4)) { try limiter.take(now: start) }
        try limiter.take(now: start + .milliseconds(250))  // one more token a quarter second later
        #expect(throws: BrokerError.self) { try limiter.take(now: start + .milliseconds(260)) }
        // Idle for a minute: still only one second's worth saved up.
        let later = start + .seconds(60)
        for _ in 0..<4 { try limiter.take(now: later) }
        #expect(throws: BrokerError.self) { try limiter.take(now: later) }
    }

    @Test func resume_saysWhetherItIsComplete_inTheHeader_andAnnouncesAGapInTheStream() async throws {
        var configuration = BrokerConfiguration.predictable
        configuration.historySize = 2
        try await TestServer.with(configuration) { server in
            for index in 1...4 { try server.broker.broadcast(Event(data: "e\(index)")) }
            let fresh = try await server.subscribe("/connect")
            #expect(fresh.headers.first(name: "sse-replay") == nil)
            await fresh.close()

            let complete = try await server.subscribe("/connect", headers: ["Last-Event-ID": "2"])
            #expect(complete.headers.first(name: "sse-replay") == "complete")
            var reader = StreamReader(complete)
            #expect(try await reader.nextEvent() == ServerSentEvent(data: "e3", lastEventID: "3"))

            let gap = try await server.subscribe("/connect?lastEventId=1")
            #expect(gap.headers.first(name: "sse-replay") == "gap")
            var gapReader = StreamReader(gap)
            let announcement = try await gapReader.nextEvent()
            #expect(announcement.type == "sse-gap")
            let json = try JSONSerialization.jsonObject(with: Data(announcement.data.utf8)) as? [String: Any]
            #expect(json?["lastEventId"] as? String == "1")
            #expect(json?["oldestId"] as? String == "3")
            #expect(announcement.lastEventID == "")  // no id line: a browser keeps the one it resumed from
            #expect(try await gapReader.nextEvent().data == "e3")
            #expect(try await gapReader.nextEvent().data == "e4")
        }
    }

    @Test func drainPeriod_shutdownDeliversAcceptedEvents_thenClosesEveryStream() async throws {
        let broker = try Broker(configuration: .predictable)
        let server = BrokerServer(
            broker: broker, host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton,
            drainPeriod: .milliseconds(300), logger: quietLogger
        )
        let port = try #require(try await server.start().port)
        var readers: [StreamReader] = []
        for index in 0..<20 {
            let client = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=d\(index)")
            var reader = StreamReader(client)
            _ = try await reader.next()
            readers.append(reader)
        }
        try broker.broadcast(Event(data: "before shutdown"))
        try await server.shutdown(gracePeriod: .seconds(5))
        for var reader in readers {
            let rest = await reader.untilEnd()
            #expect(rest.contains(.event(ServerSentEvent(data: "before shutdown", lastEventID: "1"))))
            #expect(rest.last == .comment("broker shutting down"))
        }
        #expect(broker.connectionCount == 0)
    }

    /// A subscriber on a raw socket that resets (RST) when closed.
    static func rawSubscriber(port: Int, id: String) async throws -> any Channel {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port)
            .get()
        try await (channel as! any SocketOptionProvider).setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        try await channel.writeAndFlush(ByteBuffer(string: "GET /connect?id=\(id) HTTP/1.1\r\nHost: x\r\n\r\n"))
        return channel
    }
}
