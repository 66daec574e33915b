import Dispatch
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import SSETestSupport
import Testing

@testable import SSEBroker

/// Ids across restarts, honest resumes, bounded fan-out queues, jittered retry hints and spread
/// shutdowns: the broker's side of surviving storms.
@Suite struct ResilienceTests {
    let loop = EmbeddedEventLoop()

    func subscribe(_ broker: Broker, _ id: String?, lastEventID: String? = nil) throws -> RecordingTransport {
        try RecordingTransport.subscribed(to: broker, id, lastEventID: lastEventID, on: self.loop)
    }

    // MARK: Ids

    @Test func clockSeed_idsStartAtTheMicrosecondsSince1970() throws {
        let before = UInt64(Date().timeIntervalSince1970 * 1_000_000)
        let broker = try Broker(configuration: BrokerConfiguration())
        let id = try broker.broadcast(Event(data: "x")).eventID
        #expect(id > before)
        #expect(id < UInt64(1) << 53)  // exact as a JavaScript number
    }

    @Test func clockSeed_aRestartedBrokerContinuesAboveEveryEarlierId() throws {
        let first = try Broker(configuration: BrokerConfiguration())
        var last: UInt64 = 0
        for _ in 0..<100 {
            last = try first.broadcast(Event(data: "x")).eventID
        }
        let restarted = try Broker(configuration: BrokerConfiguration())
        #expect(try restarted.broadcast(Event(data: "y")).eventID > last)
    }

    @Test func attachingABackplane_dropsTheSeed_idsComeFromTheLog() throws {
        let broker = try Broker(configuration: BrokerConfiguration())
        broker.attach(NoBackplane())
        #expect(broker.lastEventID == 0)
        broker.deliver(LoggedEvent(id: 1, type: nil, data: ByteBuffer(string: "a"), target: nil, origin: .api))
        #expect(broker.lastEventID == 1)
    }

    // MARK: Resume

    @Test func resume_withinTheHistory_isComplete() throws {
        let broker = try Broker()
        for index in 1...5 { try broker.broadcast(Event(data: "e\(index)")) }
        let client = try self.subscribe(broker, "c", lastEventID: "2")
        #expect(client.dataLines == ["e3", "e4", "e5"])
        #expect(broker.replayStatus(after: "2") == .complete)
        #expect(broker.replayStatus(after: "5") == .complete)
        #expect(broker.replayStatus(after: nil) == nil)
        #expect(!client.text.contains("sse-gap"))
    }

    @Test func resume_olderThanTheOldestKept_isAGap_announcedBeforeWhatIsKept() throws {
        let broker = try Broker(configuration: BrokerConfiguration(historySize: 3, eventIDSeed: .after(0), retryJitter: 0))
        for index in 1...5 { try broker.broadcast(Event(data: "e\(index)")) }
        #expect(broker.replayStatus(after: "1") == .gap(oldestID: 3))
        #expect(broker.replayStatus(after: "2") == .complete)  // 3, 4, 5 are all kept
        let client = try self.subscribe(broker, "c", lastEventID: "1")
        #expect(
            client.text.hasSuffix(
                "event: sse-gap\ndata: {\"lastEventId\":\"1\",\"newestId\":\"5\",\"oldestId\":\"3\"}\n\n"
                    + "data: e3\nid: 3\n\ndata: e4\nid: 4\n\ndata: e5\nid: 5\n\n"
            )
        )
    }

    @Test func resume_fromBeforeARestart_isAGap() throws {
        let first = try Broker(configuration: BrokerConfiguration())
        let seen = try first.broadcast(Event(data: "old")).eventID
        let restarted = try Broker(configuration: BrokerConfiguration(retryJitter: 0))
        let fresh = try restarted.broadcast(Event(data: "new")).eventID
        #expect(restarted.replayStatus(after: String(seen)) == .gap(oldestID: fresh))
        let client = try self.subscribe(restarted, "c", lastEventID: String(seen))
        #expect(client.dataLines.first == #"{"lastEventId":"\#(seen)","newestId":"\#(fresh)","oldestId":"\#(fresh)"}"#)
        #expect(client.dataLines.last == "new")
    }

    @Test func resume_withReplayOff_isAGapUnlessNothingWasMissed() throws {
        let broker = try Broker(configuration: BrokerConfiguration(historySize: 0, eventIDSeed: .after(0)))
        try broker.broadcast(Event(data: "a"))
        try broker.broadcast(Event(data: "b"))
        #expect(broker.replayStatus(after: "1") == .gap(oldestID: nil))
        #expect(broker.replayStatus(after: "2") == .complete)
    }

    @Test func restore_withIdsLostInACrash_isAGapForAResumeBeforeThem() throws {
        let broker = try Broker()
        let events = (10...12).map { LoggedEvent(id: $0, type: nil, data: ByteBuffer(string: "e\($0)"), target: nil, origin: .api) }
        broker.restore(events, continuingAfter: 20)
        #expect(broker.replayStatus(after: "9") == .gap(oldestID: 10))
        #expect(broker.replayStatus(after: "12") == .gap(oldestID: 10))  // 13…20 may have been sent and lost
        #expect(broker.replayStatus(after: "20") == .complete)
        #expect(try broker.broadcast(Event(data: "next")).eventID == 21)
    }

    @Test func restore_cleanly_resumesCompletely_fromTheFirstRestored() throws {
        let broker = try Broker()
        let events = (10...12).map { LoggedEvent(id: $0, type: nil, data: ByteBuffer(string: "e\($0)"), target: nil, origin: .api) }
        broker.restore(events)
        #expect(broker.replayStatus(after: "9") == .complete)
        #expect(broker.replayStatus(after: "8") == .gap(oldestID: 10))
    }

    // MARK: Bounded queues

    @Test func overload_refusesPastMaxQueuedEvents_untilTheLoopCatchesUp() throws {
        let broker = try Broker(configuration: BrokerConfiguration(eventIDSeed: .after(0), maxQueuedEvents: 4))
        let client = try self.subscribe(broker, "c")
        for index in 1...4 { try broker.broadcast(Event(data: "e\(index)")) }
        #expect(throws: BrokerError.self) { try broker.broadcast(Event(data: "refused")) }
        do {
            try broker.broadcast(Event(data: "refused"))
        } catch {
            guard case .overloaded = error else {
                Issue.record("expected overloaded, got \(error)")
                return
            }
            #expect(error.status == .serviceUnavailable)
        }
        #expect(broker.lastEventID == 4)  // nothing refused took an id
        self.loop.run()
        try broker.broadcast(Event(data: "e5"))
        self.loop.run()
        #expect(client.dataLines == ["e1", "e2", "e3", "e4", "e5"])
    }

    @Test func overload_countsBytesTimesRecipients_andAlwaysTakesOneEvent() throws {
        let broker = try Broker(configuration: BrokerConfiguration(maxQueuedBytes: 100))
        let clients = try (0..<10).map { try self.subscribe(broker, "c\($0)") }
        // 10 recipients × ~20 bytes is over the bound, but an idle loop takes any one event.
        try broker.broadcast(Event(data: "first"))
        #expect(throws: BrokerError.self) { try broker.broadcast(Event(data: "second")) }
        self.loop.run()
        try broker.broadcast(Event(data: "second"))
        self.loop.run()
        for client in clients {
            #expect(client.dataLines == ["first", "second"])
        }
    }

    @Test func overload_targetedEventsCountToo() throws {
        let broker = try Broker(configuration: BrokerConfiguration(maxQueuedEvents: 2))
        _ = try self.subscribe(broker, "c")
        try broker.broadcast(Event(data: "a"), to: "c")
        try broker.broadcast(Event(data: "b"), to: "c")
        #expect(throws: BrokerError.self) { try broker.broadcast(Event(data: "c"), to: "c") }
    }

    // MARK: Reconnect storms

    @Test func retryHint_isJitteredPerConnection_withinTheConfiguredRange() throws {
        let broker = try Broker(configuration: BrokerConfiguration(retry: .seconds(2), retryJitter: 0.5))
        var hints: Set<Int> = []
        for index in 0..<200 {
            let client = try self.subscribe(broker, "c\(index)")
            let line = try #require(client.text.split(separator: "\n").first { $0.hasPrefix("retry: ") })
            let value = try #require(Int(line.dropFirst("retry: ".count)))
            #expect((2000...3000).contains(value))
            hints.insert(value)
        }
        #expect(hints.count > 20)
    }

    @Test func shutdown_spread_closesInSlices_afterTheQueuedEvents() throws {
        let broker = try Broker()
        let clients = try (0..<10).map { try self.subscribe(broker, "c\($0)") }
        try broker.broadcast(Event(data: "last"))
        broker.shutdown(spread: .milliseconds(100))
        self.loop.run()
        #expect(clients.filter { $0.closed }.count == 1)
        self.loop.advanceTime(by: .milliseconds(50))
        let midway = clients.filter { $0.closed }.count
        #expect(midway > 1 && midway < 10)
        self.loop.advanceTime(by: .milliseconds(100))
        #expect(clients.allSatisfy { $0.closed })
        for client in clients {
            #expect(client.text.hasSuffix("data: last\nid: 1\n\n: broker shutting down\n\n"))
        }
        #expect(broker.connectionCount == 0)
    }

    // MARK: Storms

    @Test func massDisconnect_removesEveryone_andPublishingGoesOn() throws {
        let broker = try Broker()
        let clients = try (0..<5000).map { try self.subscribe(broker, "c\($0)") }
        let probe = try self.subscribe(broker, "probe")
        for client in clients { client.close() }
        #expect(broker.connectionCount == 1)
        #expect(try broker.broadcast(Event(data: "still here")).recipients == 1)
        self.loop.run()
        #expect(probe.dataLines == ["still here"])
        #expect(clients.allSatisfy { $0.dataLines.isEmpty })
    }

    @Test func clientClosedDuringDelivery_isRemovedAfterTheIteration() throws {
        let broker = try Broker(configuration: BrokerConfiguration(writeTimeout: .zero, tolerance: 1))
        let clients = try (0..<6).map { try self.subscribe(broker, "c\($0)") }
        // Every other client stalls: the next event closes it, mid-iteration.
        for (index, client) in clients.enumerated() where index % 2 == 0 {
            client.subscription?.writabilityChanged(isWritable: false)
        }
        try broker.broadcast(Event(data: "x"))
        self.loop.run()
        #expect(broker.connectionCount == 3)
        try broker.broadcast(Event(data: "y"))
        self.loop.run()
        for (index, client) in clients.enumerated() {
            #expect(client.dataLines == (index % 2 == 0 ? [] : ["x", "y"]))
        }
    }
}

extension ResilienceTests {
    /// Publishes that wait for a held loop to drain: on a real loop, not the suite's
    /// `EmbeddedEventLoop` (usable only on the thread that made it; an `await` can change threads).
    @Suite struct Overload {
        @Test func overload_asyncPublishWaitsForRoom_thenPublishes() async throws {
            try await Self.withHeldLoop(BrokerConfiguration(eventIDSeed: .after(0), maxQueuedEvents: 2)) { broker, transport, release in
                #expect(throws: BrokerError.self) { try broker.broadcast(Event(data: "refused")) }
                let publish = Task { try await broker.publish(Event(data: "3"), to: nil) }
                while broker.roomWaiters.count == 0 { await Task.yield() }
                release()
                let delivery = try await publish.value
                #expect(delivery.eventID == 3)
                try await transport.eventLoop.submit {}.get()
                try await transport.eventLoop.submit {}.get()
                #expect(transport.events == 3)
            }
        }

        @Test func overload_asyncPublishGivesUpAfterOverloadWait() async throws {
            let configuration = BrokerConfiguration(maxQueuedEvents: 2, overloadWait: .milliseconds(20))
            try await Self.withHeldLoop(configuration) { broker, _, release in
                let last = broker.lastEventID
                await #expect(throws: BrokerError.self) { try await broker.publish(Event(data: "late"), to: nil) }
                #expect(broker.lastEventID == last)
                release()
            }
        }

        /// A broker with one subscriber on a real loop, held busy after two broadcasts (so nothing
        /// drains) until `body` calls `release`.
        static func withHeldLoop(
            _ configuration: BrokerConfiguration,
            _ body: (Broker, CountingTransport, _ release: @escaping @Sendable () -> Void) async throws -> Void
        ) async throws {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let loop = group.next()
            let broker = try Broker(configuration: configuration)
            let transport = CountingTransport(eventLoop: loop)
            try await loop.submit {
                transport.subscription = try broker.subscribe(
                    clientID: "c", lastEventID: nil, remoteAddress: nil, userAgent: nil, transport: transport)
            }.get()
            let release = await hold(loop) {
                _ = try? broker.broadcast(Event(data: "1"))
                _ = try? broker.broadcast(Event(data: "2"))
            }
            try await body(broker, transport, release)
            try await group.shutdownGracefully()
        }
    }
}

/// A transport on a real event loop that counts the events written.
final class CountingTransport: SubscriberTransport, @unchecked Sendable {
    let eventLoop: any EventLoop
    var subscription: Subscription?
    private(set) var events = 0
    private(set) var closed = false

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func write(_ buffer: ByteBuffer) {
        if String(buffer: buffer).hasPrefix("data: ") { self.events += 1 }
    }
    func flush() {}
    func close() {
        self.closed = true
        self.subscription?.transportClosed()
    }
    var bufferedBytes: Int { 0 }
}

/// A backplane that is never asked for anything in these tests.
struct NoBackplane: EventBackplane {
    func publish(_ event: Event, to target: String?) async throws(BrokerError) -> Delivery {
        throw .unavailable("no backplane in this test")
    }
}
