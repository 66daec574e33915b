import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import SSETestSupport
import Testing

@testable import SSEBroker

/// A backplane that assigns ids like a shared log would, and records what it was handed.
final class FakeBackplane: EventBackplane {
    let published = NIOLockedValueBox<[(Event, String?)]>([])
    let nextID = NIOLockedValueBox<UInt64>(100)
    let failure: BrokerError?

    init(failure: BrokerError? = nil) { self.failure = failure }

    func publish(_ event: Event, to target: String?) async throws(BrokerError) -> Delivery {
        if let failure { throw failure }
        self.published.withLockedValue { $0.append((event, target)) }
        return Delivery(eventID: self.nextID.withLockedValue { $0 += 1; return $0 }, recipients: 7)
    }
}

/// A journal that keeps what it is given.
final class RecordingJournal: EventJournal {
    let events = NIOLockedValueBox<[LoggedEvent]>([])
    func record(_ event: LoggedEvent) { self.events.withLockedValue { $0.append(event) } }
}

/// The seam a cluster or a durable history plugs into: events delivered with ids from elsewhere,
/// history restored at start, publishes routed through a backplane, every event journaled.
@Suite struct EventLogSeamTests {
    let loop = EmbeddedEventLoop()

    func subscribe(_ broker: Broker, _ id: String, lastEventID: String? = nil) throws -> RecordingTransport {
        let transport = RecordingTransport(loop: self.loop)
        transport.subscription = try broker.subscribe(
            clientID: id, lastEventID: lastEventID, remoteAddress: nil, userAgent: nil, transport: transport)
        return transport
    }

    func logged(_ id: UInt64, _ data: String, type: String? = nil, to target: String? = nil) -> LoggedEvent {
        LoggedEvent(id: id, type: type, data: ByteBuffer(string: data), target: target, origin: .http)
    }

    @Test func deliver_fansOutWithTheGivenIDs_andIgnoresIDsAlreadyDelivered() throws {
        let broker = try Broker()
        let alice = try self.subscribe(broker, "alice")
        let bob = try self.subscribe(broker, "bob")
        #expect(broker.deliver(self.logged(10, "ten")) == 2)
        #expect(broker.deliver(self.logged(12, "twelve", to: "bob")) == 1)
        #expect(broker.deliver(self.logged(11, "late")) == 0)  // below the last id: already delivered
        #expect(broker.deliver(self.logged(12, "again")) == 0)
        #expect(broker.deliver(self.logged(13, "for carol", to: "carol")) == 0)  // not on this node: no error
        self.loop.run()
        #expect(alice.dataLines == ["ten"])
        #expect(bob.dataLines == ["ten", "twelve"])
        #expect(bob.text.contains("id: 12\n"))
        #expect(broker.lastEventID == 13)
    }

    @Test func deliverContentsOf_writesTheBatchInOrder_flushedOnce_skippingIDsAlreadyDelivered() throws {
        let broker = try Broker()
        let alice = try self.subscribe(broker, "alice")
        let bob = try self.subscribe(broker, "bob")
        broker.deliver(self.logged(5, "five"))
        self.loop.run()
        let flushesBefore = alice.flushCount
        let delivered = broker.deliver(contentsOf: [
            self.logged(4, "stale"), self.logged(6, "six"), self.logged(7, "for bob", to: "bob"), self.logged(9, "nine"),
        ])
        #expect(delivered == 2 + 1 + 2)
        self.loop.run()
        #expect(alice.dataLines == ["five", "six", "nine"])
        #expect(bob.dataLines == ["five", "six", "for bob", "nine"])
        #expect(alice.flushCount == flushesBefore + 1)  // one write for the whole batch
        #expect(broker.lastEventID == 9)
        // Replay sees the batch too.
        let late = try self.subscribe(broker, "bob", lastEventID: "6")
        #expect(late.dataLines == ["for bob", "nine"])
    }

    @Test func restore_seedsReplay_andIDsContinueAfterTheNewest() throws {
        let broker = try Broker()
        broker.restore([self.logged(3, "three"), self.logged(5, "five", to: "bob"), self.logged(8, "eight")])
        #expect(broker.lastEventID == 8)
        let alice = try self.subscribe(broker, "alice", lastEventID: "3")
        let bob = try self.subscribe(broker, "bob", lastEventID: "3")
        #expect(try broker.broadcast(Event(data: "nine")).eventID == 9)
        self.loop.run()
        #expect(alice.dataLines == ["eight", "nine"])
        #expect(bob.dataLines == ["five", "eight", "nine"])
    }

    @Test func journal_recordsEveryEventInIDOrder_publishedOrDelivered() throws {
        let journal = RecordingJournal()
        let broker = try Broker(configuration: .predictable, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), journal: journal)
        _ = try self.subscribe(broker, "alice")
        try broker.broadcast(Event(type: "t", data: "one"))
        try broker.broadcast(Event(data: "two"), to: "alice")
        broker.deliver(self.logged(7, "seven"))
        #expect(throws: BrokerError.unknownClient("nobody")) { try broker.broadcast(Event(data: "x"), to: "nobody") }
        let recorded = journal.events.withLockedValue { $0 }
        #expect(recorded.map(\.id) == [1, 2, 7])
        #expect(recorded.map(\.type) == ["t", nil, nil])
        #expect(recorded.map(\.target) == [nil, "alice", nil])
        #expect(recorded.map(\.dataString) == ["one", "two", "seven"])
    }

    @Test func withABackplane_publishGoesThroughIt_andSynchronousBroadcastIsRefused() async throws {
        let broker = try Broker()
        let backplane = FakeBackplane()
        broker.attach(backplane)
        let delivery = try await broker.publish(Event(type: "t", data: "via the log"), to: "alice")
        #expect(delivery == Delivery(eventID: 101, recipients: 7))
        #expect(backplane.published.withLockedValue { $0.map { "\($0.0.dataString)→\($0.1 ?? "*")" } } == ["via the log→alice"])
        // Only the log may assign ids; a local id would collide with another node's.
        #expect(throws: BrokerError.self) { try broker.broadcast(Event(data: "local")) }
        // Validation still happens before anything reaches the log.
        await #expect(throws: BrokerError.invalidClientID("it is empty")) { try await broker.publish(Event(data: "x"), to: "") }
        #expect(backplane.published.withLockedValue { $0.count } == 1)
    }

    @Test func backplaneFailure_reachesThePublisher() async throws {
        let broker = try Broker()
        broker.attach(FakeBackplane(failure: .unavailable("log unreachable")))
        await #expect(throws: BrokerError.unavailable("log unreachable")) { try await broker.publish(Event(data: "x"), to: nil) }
        #expect(BrokerError.unavailable("x").status == .serviceUnavailable)
    }

    @Test func clusterNode_clientResumingAheadOfThisNode_neverGetsAnEventTwice() throws {
        // Another node already sent the client events 1...3; this node has delivered only 1 so far.
        let broker = try Broker()
        broker.attach(FakeBackplane())
        broker.deliver(self.logged(1, "one"))
        let client = try self.subscribe(broker, "alice", lastEventID: "3")
        for (id, data) in [(2, "two"), (3, "three"), (4, "four")] {
            broker.deliver(self.logged(UInt64(id), data))
        }
        self.loop.run()
        #expect(client.dataLines == ["four"])
    }

    @Test func connectionsByClientID_countsEveryConnection() throws {
        let broker = try Broker()
        _ = try self.subscribe(broker, "alice")
        _ = try self.subscribe(broker, "alice")
        _ = try self.subscribe(broker, "bob")
        #expect(broker.connectionsByClientID == ["alice": 2, "bob": 1])
    }
}

extension LoggedEvent {
    var dataString: String { String(buffer: self.data) }
}
