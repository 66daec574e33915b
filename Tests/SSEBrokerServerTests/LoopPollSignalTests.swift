import Dispatch
import NIOCore
import NIOEmbedded
import NIOPosix
@testable import SSEBroker
@testable import SSEBrokerServer
import SSETestSupport
import Synchronization
import Testing

/// A loop behind on its fan-out still reads its sockets: the drain's rest waits for the loop's
/// next poll (``LoopPollSignal``), which a task scheduled a moment ahead did not when the tasks a
/// turn caused ran longer than that moment (the overload storm: producers' pipelined requests sat
/// unread in their sockets until the keep-alive timeout closed them).
@Suite(.timeLimit(.minutes(1)))
struct LoopPollSignalTests {
    private struct Flags {
        var scheduledRan = false
        var chainEnded = false
    }

    @Test func afterNextPoll_waitsForThePoll_whileTasksKeepTheLoopBusy() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let signal = try await PipePollSignal.make(on: [loop])
        let chainEnded = loop.makePromise(of: Bool.self)
        let bodyRan = loop.makePromise(of: Bool.self)
        let accepted = try await loop.submit {
            let flags = NIOLoopBoundBox(Flags(), eventLoop: loop)
            let accepted = signal.afterNextPoll(on: loop) { bodyRan.succeed(flags.value.chainEnded) }
            // NIO's own rule, which the old yield relied on the other way round: a task scheduled a
            // moment ahead runs in the same busy run once the moment has passed, before any poll.
            loop.scheduleTask(in: .microseconds(250)) { flags.value.scheduledRan = true }
            let limit = NIODeadline.now() + .seconds(10)
            Self.keepBusy(loop, until: { flags.value.scheduledRan || NIODeadline.now() > limit }) {
                flags.value.chainEnded = true
                chainEnded.succeed(flags.value.scheduledRan)
            }
            return accepted
        }.get()
        #expect(accepted)
        #expect(try await chainEnded.futureResult.get(), "the scheduled task ran while the loop was busy")
        #expect(try await bodyRan.futureResult.get(), "the body ran once the busy run was over and the loop polled")
        let otherLoop = MultiThreadedEventLoopGroup.singleton.next()
        #expect(try await otherLoop.submit { signal.afterNextPoll(on: otherLoop) {} }.get() == false)
        await signal.closePipes()
        #expect(try await loop.submit { signal.afterNextPoll(on: loop) {} }.get() == false)
        try await group.shutdownGracefully()
    }

    @Test func handler_writesOneBytePerPoll_runsWhatWaitedAfterTheRead_andWhenClosed() throws {
        let loop = EmbeddedEventLoop()
        let handler = PollSignalHandler()
        let channel = EmbeddedChannel(handler: handler, loop: loop)
        #expect(!handler.add {})  // not active yet
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let ran = NIOLoopBoundBox(0, eventLoop: loop)
        #expect(handler.add { ran.value += 1 })
        #expect(handler.add { ran.value += 1 })
        #expect(try channel.readOutbound(as: ByteBuffer.self)?.readableBytes == 1)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)  // one byte for both
        loop.run()
        #expect(ran.value == 0)  // not before the byte is read
        try channel.writeInbound(ByteBuffer(bytes: [1]))
        loop.run()
        #expect(ran.value == 2)
        #expect(handler.add { ran.value += 1 })
        #expect(try channel.readOutbound(as: ByteBuffer.self)?.readableBytes == 1)  // the next poll's
        _ = try channel.finish(acceptAlreadyClosed: true)
        loop.run()
        #expect(ran.value == 3)  // run as the pipe closed
        #expect(!handler.add {})
    }

    /// The storm's failure, reduced: a fan-out more than a turn behind, each event of a turn causing
    /// a task that runs after it (as the answers to producers the turn made room for do), together
    /// far longer than the old 250 µs yield, and a request waiting in its socket meanwhile. It is
    /// read between the first turn and the second, not once the queue is empty.
    @Test func fanoutMoreThanATurnBehind_readsARequestBetweenTurns_whileTheTurnsFollowUpsRunLong() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        var configuration = BrokerConfiguration.predictable
        configuration.maxQueuedEvents = 4096
        let broker = try Broker(configuration: configuration, logger: quietLogger)
        let counted = SinkTransport(eventLoop: loop)
        let ready = loop.makePromise(of: Void.self)
        let server = BrokerServer(
            broker: broker,
            host: "127.0.0.1",
            port: 0,
            extraRoutes: [
                .get("/ready") { _ in
                    ready.succeed()
                    return .text("ready")
                },
                // What the subscribers had been written when this request was read.
                .get("/delivered") { _ in .text("\(counted.events.load(ordering: .relaxed))") },
            ],
            group: group,
            logger: quietLogger
        )
        let port = try #require(try await server.start().port)
        let subscribers = 300
        let transports: [SinkTransport] =
            [counted, SinkTransport(eventLoop: loop, followUp: .microseconds(100))]
            + (2..<subscribers).map { _ in SinkTransport(eventLoop: loop) }
        try await loop.submit {
            for (index, transport) in transports.enumerated() {
                transport.subscription = try broker.subscribe(
                    clientID: "s\(index)", lastEventID: nil, remoteAddress: nil, userAgent: nil, transport: transport
                )
            }
        }.get()
        // The connection is registered and read before the loop is held.
        let connection = try await RawConnection.connect(port: port)
        try await connection.send("GET /ready HTTP/1.1\r\nHost: test\r\n\r\n")
        try await ready.futureResult.get()

        let events = 1000  // more than one turn: a turn is LoopFanout.writesPerTurn offers
        #expect(events * subscribers > LoopFanout.writesPerTurn)
        let release = await hold(loop)
        for index in 0..<events {
            try broker.broadcast(Event(data: "event \(index)"))
        }
        try await connection.send("GET /delivered HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        release()
        let text = try await connection.untilClosed()
        let delivered = try #require(Int(text.components(separatedBy: "\r\n\r\n").last ?? ""))
        #expect(delivered > 0)
        #expect(delivered < events, "the request waited for the whole queue: \(delivered) events written first")

        try await server.shutdown()
        try await group.shutdownGracefully()
    }

    /// Re-queues itself with `execute` until `stop` says so: while it runs, a task is always
    /// runnable, so the loop does not poll.
    private static func keepBusy(
        _ loop: any EventLoop,
        until stop: @escaping @Sendable () -> Bool,
        then done: @escaping @Sendable () -> Void
    ) {
        loop.execute {
            if stop() {
                done()
            } else {
                Self.keepBusy(loop, until: stop, then: done)
            }
        }
    }
}

/// A subscriber that takes every write at once and counts the events. With `followUp`, each event
/// written to it queues a task on its loop that works that long: the work a fan-out turn causes
/// after it.
private final class SinkTransport: SubscriberTransport, @unchecked Sendable {
    let eventLoop: any EventLoop
    let events = Atomic<Int>(0)
    var subscription: Subscription?
    private let followUp: TimeAmount?

    init(eventLoop: any EventLoop, followUp: TimeAmount? = nil) {
        self.eventLoop = eventLoop
        self.followUp = followUp
    }

    func write(_ buffer: ByteBuffer) {
        guard buffer.readableBytesView.first == UInt8(ascii: "d") else { return }  // `data:`: an event
        self.events.add(1, ordering: .relaxed)
        if let followUp = self.followUp {
            self.eventLoop.execute {
                let end = NIODeadline.now() + followUp
                while NIODeadline.now() < end {}
            }
        }
    }

    func flush() {}

    func close() {
        self.subscription?.transportClosed()
    }

    var bufferedBytes: Int { 0 }
}
