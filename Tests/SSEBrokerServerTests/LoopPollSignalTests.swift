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

    /// The storm's failure, reduced (``FanoutBehindScenario``): a request waiting while the fan-out
    /// is more than a turn behind is read between the first turn and the second, not once the
    /// queue is empty.
    @Test func fanoutMoreThanATurnBehind_readsARequestBetweenTurns_whileTheTurnsFollowUpsRunLong() async throws {
        let scenario = try FanoutBehindScenario(logger: quietLogger)
        let server = BrokerServer(
            broker: scenario.broker,
            host: "127.0.0.1",
            port: 0,
            extraRoutes: [
                .get("/ready") { _ in
                    scenario.ready.succeed()
                    return .text("ready")
                },
                // What the subscribers had been written when this request was read.
                .get("/delivered") { _ in .text(scenario.delivered) },
            ],
            group: scenario.group,
            logger: quietLogger
        )
        let port = try #require(try await server.start().port)
        // More than one turn: a turn is LoopFanout.writesPerTurn offers.
        #expect(FanoutBehindScenario.events * FanoutBehindScenario.subscribers > LoopFanout.writesPerTurn)
        let delivered = try await scenario.eventsWrittenWhenARequestWasRead(port: port)
        #expect(delivered > 0)
        #expect(
            delivered < FanoutBehindScenario.events,
            "the request waited for the whole queue: \(delivered) events written first"
        )

        try await server.shutdown()
        try await scenario.group.shutdownGracefully()
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
