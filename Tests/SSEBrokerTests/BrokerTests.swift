import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import SSETestSupport
import Testing

@testable import SSEBroker

/// A transport that records what the broker writes, on an `EmbeddedEventLoop`.
final class RecordingTransport: SubscriberTransport {
    let loop: EmbeddedEventLoop
    var eventLoop: any EventLoop { self.loop }
    var pending: [ByteBuffer] = []
    var flushed: [ByteBuffer] = []
    var flushCount = 0
    var closed = false
    var bufferedBytes = 0
    var subscription: Subscription?

    init(loop: EmbeddedEventLoop) { self.loop = loop }

    func write(_ buffer: ByteBuffer) { self.pending.append(buffer) }
    func flush() {
        self.flushCount += 1
        self.flushed += self.pending
        self.pending = []
    }
    func close() {
        self.closed = true
        self.subscription?.transportClosed()
    }

    /// A new transport on `loop`, subscribed to `broker` as `id`.
    static func subscribed(
        to broker: Broker,
        _ id: String?,
        lastEventID: String? = nil,
        topics: [String] = [],
        on loop: EmbeddedEventLoop
    ) throws -> RecordingTransport {
        let transport = RecordingTransport(loop: loop)
        transport.subscription = try broker.subscribe(
            clientID: id,
            lastEventID: lastEventID,
            topics: TopicFilter(topics.map { name throws(BrokerError) in try Topic(name) }),
            remoteAddress: "127.0.0.1:1",
            userAgent: "test",
            transport: transport
        )
        return transport
    }

    /// What the client has been sent so far.
    var text: String { self.flushed.map { String(buffer: $0) }.joined() }
    /// The data lines received, in order.
    var dataLines: [String] { self.text.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) } }
}

extension Broker {
    /// A broker that logs nothing (tests check behaviour, not log lines).
    /// Ids count from 1 and the `retry:` hint is exact, so tests can name them.
    convenience init(configuration: BrokerConfiguration = .predictable) throws(BrokerError) {
        try self.init(configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }
}

@Suite struct BrokerTests {
    let loop = EmbeddedEventLoop()

    func subscribe(_ broker: Broker, _ id: String?, lastEventID: String? = nil) throws -> RecordingTransport {
        try RecordingTransport.subscribed(to: broker, id, lastEventID: lastEventID, on: self.loop)
    }

    @Test func subscribe_writesPreambleAndFlushes() throws {
        let broker = try Broker()
        let client = try self.subscribe(broker, "alice")
        #expect(client.text == ": connected alice\nretry: 3000\n\n")
        #expect(broker.clients.map(\.clientID) == ["alice"])
    }

    @Test func subscribe_withoutID_generatesOne() throws {
        let broker = try Broker()
        _ = try self.subscribe(broker, nil)
        let id = try #require(broker.clients.first?.clientID)
        #expect(id.count == 12)
    }

    @Test func broadcast_reachesEveryClient_withOneSharedBuffer() throws {
        let broker = try Broker()
        let clients = try (0..<3).map { try self.subscribe(broker, "c\($0)") }
        let delivery = try broker.broadcast(Event(type: "t", data: "x"))
        #expect(delivery == Delivery(eventID: 1, recipients: 3))
        self.loop.run()
        for client in clients {
            #expect(client.dataLines == ["x"])
        }
        // Encoded once: every client got the same storage.
        let views = clients.map { $0.flushed.last!.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } }
        #expect(Set(views).count == 1)
        #expect(broker.statistics.delivered == 3)
    }

    @Test func eventsQueuedTogether_areFlushedOnce() throws {
        let broker = try Broker()
        let client = try self.subscribe(broker, "a")
        let flushesBefore = client.flushCount
        for index in 0..<10 {
            try broker.broadcast(Event(data: "\(index)"))
        }
        self.loop.run()
        #expect(client.dataLines == (0..<10).map(String.init))
        #expect(client.flushCount == flushesBefore + 1)
    }

    @Test func eachConnection_isFlushedRightAfterItsLastWriteOfTheTurn_stillOnce() throws {
        // The first subscriber is not kept waiting while the event is buffered for the others:
        // a's flush comes before b's write. Events queued together still make one flush each.
        let broker = try Broker()
        let log = Locked<[String]>([])
        let a = try OrderedTransport.subscribed(to: broker, "a", on: self.loop, log: log)
        let b = try OrderedTransport.subscribed(to: broker, "b", on: self.loop, log: log)
        log.withLock { $0 = [] }
        try broker.broadcast(Event(data: "1"))
        self.loop.run()
        #expect(log.withLock { $0 } == ["write a", "flush a", "write b", "flush b"])
        log.withLock { $0 = [] }
        try broker.broadcast(Event(data: "2"))
        try broker.broadcast(Event(data: "3"))
        self.loop.run()
        #expect(log.withLock { $0 } == ["write a", "write b", "write a", "flush a", "write b", "flush b"])
        _ = (a, b)
    }

    @Test func broadcastTo_reachesEveryConnectionOfThatID_only() throws {
        let broker = try Broker()
        let tab1 = try self.subscribe(broker, "alice")
        let tab2 = try self.subscribe(broker, "alice")
        let bob = try self.subscribe(broker, "bob")
        let delivery = try broker.broadcast(Event(data: "hi alice"), to: "alice")
        self.loop.run()
        #expect(delivery.recipients == 2)
        #expect(tab1.dataLines == ["hi alice"])
        #expect(tab2.dataLines == ["hi alice"])
        #expect(bob.dataLines == [])
    }

    @Test func broadcastTo_unknownID_throws_andConsumesNoID() throws {
        let broker = try Broker()
        #expect(throws: BrokerError.unknownClient("ghost")) { try broker.broadcast(Event(data: "x"), to: "ghost") }
        #expect(try broker.broadcast(Event(data: "x")).eventID == 1)
    }

    @Test func invalidType_throws() throws {
        let broker = try Broker()
        #expect(throws: BrokerError.self) { try broker.broadcast(Event(type: "a\nb", data: "x")) }
        #expect(broker.lastEventID == 0)
    }

    @Test func removal_isByIdentity() throws {
        let broker = try Broker()
        let tab1 = try self.subscribe(broker, "alice")
        let tab2 = try self.subscribe(broker, "alice")
        tab1.close()
        #expect(broker.clients.count == 1)
        // The second close of the same connection removes nothing else.
        tab1.subscription?.transportClosed()
        #expect(broker.clients.count == 1)
        try broker.broadcast(Event(data: "still here"), to: "alice")
        self.loop.run()
        #expect(tab2.dataLines == ["still here"])
    }

    @Test func kick_closesEveryConnectionOfTheID() throws {
        let broker = try Broker()
        let tab1 = try self.subscribe(broker, "alice")
        let tab2 = try self.subscribe(broker, "alice")
        let bob = try self.subscribe(broker, "bob")
        #expect(try broker.kick("alice") == 2)
        self.loop.run()
        #expect(tab1.closed && tab2.closed && !bob.closed)
        #expect(broker.clients.map(\.clientID) == ["bob"])
        #expect(broker.statistics.kicked == 2)
        #expect(broker.recentDisconnections.map(\.reason) == [.kicked, .kicked])
        #expect(throws: BrokerError.unknownClient("alice")) { try broker.kick("alice") }
    }

    @Test func ban_refusesTheIDUntilUnbanned() throws {
        let broker = try Broker()
        let alice = try self.subscribe(broker, "alice")
        #expect(try broker.ban("alice") == 1)
        self.loop.run()
        #expect(alice.closed)
        #expect(throws: BrokerError.banned("alice")) { try self.subscribe(broker, "alice") }
        #expect(broker.bannedClientIDs == ["alice"])
        #expect(broker.unban("alice"))
        _ = try self.subscribe(broker, "alice")
    }

    @Test func lastEventID_replaysMissedEvents_thenLive() throws {
        let broker = try Broker()
        for index in 1...5 {
            try broker.broadcast(Event(data: "e\(index)"))
        }
        let client = try self.subscribe(broker, "c", lastEventID: "3")
        try broker.broadcast(Event(data: "e6"))
        self.loop.run()
        #expect(client.dataLines == ["e4", "e5", "e6"])
        #expect(client.text.hasPrefix(": connected c\nretry: 3000\n\n"))
    }

    @Test func lastEventID_unknownOrGarbage_replaysNothing_andAnnouncesAGap() throws {
        let broker = try Broker()
        try broker.broadcast(Event(data: "e1"))
        #expect(
            try self.subscribe(broker, "a", lastEventID: "not-a-number").dataLines
                == [#"{"lastEventId":"not-a-number","newestId":"1","oldestId":"1"}"#]
        )
        #expect(try self.subscribe(broker, "b", lastEventID: "99").dataLines == [#"{"lastEventId":"99","newestId":"1","oldestId":"1"}"#])
    }

    @Test func slowClient_unwritablePastTimeout_isDisconnectedAtTolerance() throws {
        let broker = try Broker(configuration: BrokerConfiguration(writeTimeout: .zero, tolerance: 3))
        let slow = try self.subscribe(broker, "slow")
        let healthy = try self.subscribe(broker, "healthy")
        slow.subscription?.writabilityChanged(isWritable: false)
        for index in 1...2 {
            try broker.broadcast(Event(data: "\(index)"))
        }
        self.loop.run()
        #expect(broker.clients(withID: "slow").first?.consecutiveErrors == 2)
        #expect(!slow.closed)
        try broker.broadcast(Event(data: "3"))
        self.loop.run()
        #expect(slow.closed)
        #expect(healthy.dataLines == ["1", "2", "3"])
        #expect(broker.statistics.dropped == 3)
        #expect(broker.statistics.disconnectedOverTolerance == 1)
        #expect(broker.recentDisconnections.last?.reason == .overTolerance)
    }

    @Test func successfulDelivery_resetsTheSequentialCount() throws {
        let broker = try Broker(configuration: BrokerConfiguration(writeTimeout: .zero, tolerance: 3))
        let client = try self.subscribe(broker, "c")
        for round in 0..<3 {
            client.subscription?.writabilityChanged(isWritable: false)
            try broker.broadcast(Event(data: "miss\(round)a"))
            try broker.broadcast(Event(data: "miss\(round)b"))
            self.loop.run()
            client.subscription?.writabilityChanged(isWritable: true)
            try broker.broadcast(Event(data: "ok\(round)"))
            self.loop.run()
        }
        #expect(!client.closed)
        let info = try #require(broker.clients.first)
        #expect(info.consecutiveErrors == 0)
        #expect(info.totalErrors == 6)
        #expect(client.dataLines == ["ok0", "ok1", "ok2"])
    }

    @Test func unwritableClient_withinTimeout_queuesUntilBacklogIsFull() throws {
        let broker = try Broker(configuration: BrokerConfiguration(writeTimeout: .seconds(3600), tolerance: 2, maxClientBacklogBytes: 100))
        let client = try self.subscribe(broker, "c")
        client.subscription?.writabilityChanged(isWritable: false)
        client.bufferedBytes = 50
        try broker.broadcast(Event(data: "fits"))  // ~20 bytes
        self.loop.run()
        #expect(client.dataLines == ["fits"])
        client.bufferedBytes = 95
        try broker.broadcast(Event(data: "no room"))
        try broker.broadcast(Event(data: "no room either"))
        self.loop.run()
        #expect(client.closed)
        #expect(broker.recentDisconnections.last?.client.backlogBytes == 95)
    }


    @Test func shutdown_closesClientsWithAFarewell_andRefusesNewWork() throws {
        let broker = try Broker()
        let client = try self.subscribe(broker, "a")
        broker.shutdown()
        self.loop.run()
        #expect(client.closed)
        #expect(client.text.hasSuffix(": broker shutting down\n\n"))
        #expect(throws: BrokerError.shuttingDown) { try broker.broadcast(Event(data: "late")) }
        #expect(throws: BrokerError.shuttingDown) { try self.subscribe(broker, "b") }
    }

    @Test func heartbeat_goesToEveryClient() throws {
        let broker = try Broker(configuration: BrokerConfiguration(heartbeatInterval: .seconds(15)))
        let client = try self.subscribe(broker, "a")
        self.loop.advanceTime(by: .seconds(15))
        #expect(client.text.hasSuffix(": heartbeat\n\n"))
        #expect(broker.clients.first?.eventsSent == 0)
    }
}

extension BrokerTests {
    /// The tests that wait for the broker's streams: on a real loop, since an `EmbeddedEventLoop`
    /// may only be used (and freed) on the thread that made it, and an `await` can change threads.
    @Suite struct Streams {
        let loop = MultiThreadedEventLoopGroup.singleton.next()

        func subscribe(_ broker: Broker, _ id: String) async throws -> CountingTransport {
            let transport = CountingTransport(eventLoop: self.loop)
            try await self.loop.submit {
                transport.subscription = try broker.subscribe(
                    clientID: id, lastEventID: nil, remoteAddress: nil, userAgent: nil, transport: transport)
            }.get()
            return transport
        }

        @Test func listen_seesBroadcastsAndTargetedEvents_inOrder() async throws {
            let broker = try Broker()
            let stream = broker.listen()
            _ = try await self.subscribe(broker, "alice")
            try broker.broadcast(Event(type: "a", data: "1"))
            try broker.broadcast(Event(type: "b", data: "2"), to: "alice")
            broker.shutdown()
            var received: [Event] = []
            for await event in stream { received.append(event) }
            #expect(received.map(\.dataString) == ["1", "2"])
            #expect(received.map(\.id) == [1, 2])
            #expect(received.map(\.target) == [nil, "alice"])
        }

        @Test func listenerThatDoesNotRead_dropsAndCounts_neverBlocks() async throws {
            let broker = try Broker(configuration: BrokerConfiguration(listenerBufferSize: 2))
            let stream = broker.listen()
            for index in 1...5 {
                try broker.broadcast(Event(data: "\(index)"))
            }
            broker.shutdown()
            var received: [String] = []
            for await event in stream { received.append(event.dataString) }
            #expect(received == ["4", "5"])
            #expect(broker.statistics.listenerDrops == 3)
        }

        @Test func activity_reportsConnectsAndDisconnectsWithReason() async throws {
            let broker = try Broker()
            let activity = broker.activity()
            let client = try await self.subscribe(broker, "alice")
            try broker.kick("alice")
            try await self.loop.submit {}.get()
            #expect(client.closed)
            broker.shutdown()
            var seen: [String] = []
            for await item in activity {
                switch item {
                case .connected(let info): seen.append("connected \(info.clientID)")
                case .disconnected(let info, let reason): seen.append("disconnected \(info.clientID) \(reason)")
                }
            }
            #expect(seen == ["connected alice", "disconnected alice kicked"])
        }
    }
}

/// A transport that logs its writes and flushes, in the order the broker makes them, across
/// connections.
final class OrderedTransport: SubscriberTransport {
    let loop: EmbeddedEventLoop
    var eventLoop: any EventLoop { self.loop }
    let name: String
    let log: Locked<[String]>
    var subscription: Subscription?
    var bufferedBytes: Int { 0 }

    init(name: String, loop: EmbeddedEventLoop, log: Locked<[String]>) {
        self.name = name
        self.loop = loop
        self.log = log
    }

    func write(_ buffer: ByteBuffer) { self.log.withLock { $0.append("write \(self.name)") } }
    func flush() { self.log.withLock { $0.append("flush \(self.name)") } }
    func close() { self.subscription?.transportClosed() }

    static func subscribed(to broker: Broker, _ id: String, on loop: EmbeddedEventLoop, log: Locked<[String]>) throws -> OrderedTransport {
        let transport = OrderedTransport(name: id, loop: loop, log: log)
        transport.subscription = try broker.subscribe(
            clientID: id, lastEventID: nil, remoteAddress: nil, userAgent: nil, transport: transport)
        return transport
    }
}
