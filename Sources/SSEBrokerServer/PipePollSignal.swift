#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix
import SSEBroker

/// A ``LoopPollSignal`` for the loops of a server: a pipe per loop, read by a channel on it.
///
/// Asking for a run after the next poll writes one byte to the loop's pipe (once, however many ask
/// before that poll); the loop reads it only when it polls, which NIO does once no task is left to
/// run, and the bodies are then queued as tasks, behind the I/O that poll found. A closed pipe runs
/// what waited on it and answers `false` from then on.
///
/// ``BrokerServer`` sets one up for its loops. A broker served by another NIO server (Hummingbird's
/// `BrokerService` does this) makes one on that server's loops, hands it to
/// ``SSEBroker/Broker/useLoopPollSignal(_:)`` and closes it once the broker has shut down. A broker
/// has one signal at a time: serve it from one server's loops.
public final class PipePollSignal: LoopPollSignal {
    /// The pipe channels by loop; set once, before the signal is shared.
    private let channels: [ObjectIdentifier: any Channel]

    private init(channels: [ObjectIdentifier: any Channel]) {
        self.channels = channels
    }

    /// One pipe channel (two file descriptors) on each of `group`'s loops.
    public static func make(on group: any EventLoopGroup) async throws -> PipePollSignal {
        try await Self.make(on: Array(group.makeIterator()))
    }

    /// One pipe channel (two file descriptors) on each of `loops`.
    public static func make(on loops: [any EventLoop]) async throws -> PipePollSignal {
        var channels: [ObjectIdentifier: any Channel] = [:]
        do {
            for loop in loops where channels[ObjectIdentifier(loop)] == nil {
                channels[ObjectIdentifier(loop)] = try await Self.pipeChannel(on: loop)
            }
        } catch {
            for channel in channels.values { try? await channel.close() }
            throw error
        }
        return PipePollSignal(channels: channels)
    }

    private static func pipeChannel(on loop: any EventLoop) async throws -> any Channel {
        var descriptors: [CInt] = [-1, -1]
        guard pipe(&descriptors) == 0 else { throw IOError(errnoCode: errno, reason: "pipe") }
        do {
            return try await NIOPipeBootstrap(group: loop).takingOwnershipOfDescriptors(
                input: descriptors[0],
                output: descriptors[1]
            ) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(PollSignalHandler())
                    return channel
                }
            }
        } catch {
            // Still ours when the bootstrap fails.
            _ = close(descriptors[0])
            _ = close(descriptors[1])
            throw error
        }
    }

    public func afterNextPoll(on loop: any EventLoop, _ body: @escaping @Sendable () -> Void) -> Bool {
        loop.preconditionInEventLoop()
        guard let channel = self.channels[ObjectIdentifier(loop)], channel.isActive,
            let handler = try? channel.pipeline.syncOperations.handler(type: PollSignalHandler.self)
        else { return false }
        return handler.add(body)
    }

    /// Closes the pipes; what waited on them runs, and the signal answers `false` from then on.
    public func closePipes() async {
        for channel in self.channels.values {
            try? await channel.close()
        }
    }
}

/// Reads a pipe's signal bytes and runs what waited for them. Loop-confined.
final class PollSignalHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?
    private var waiting: [@Sendable () -> Void] = []
    /// A byte is in the pipe, not yet read.
    private var signalled = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.release(on: context.eventLoop)
    }

    /// Queues `body` for the run after the next poll. - Returns: `false` if the pipe is closed.
    func add(_ body: @escaping @Sendable () -> Void) -> Bool {
        guard let context = self.context, context.channel.isActive else { return false }
        self.waiting.append(body)
        if !self.signalled {
            self.signalled = true
            var byte = context.channel.allocator.buffer(capacity: 1)
            byte.writeInteger(UInt8(1))
            context.writeAndFlush(self.wrapOutboundOut(byte), promise: nil)
        }
        return true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The signal byte: only its arrival counts.
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.signalled = false
        self.release(on: context.eventLoop)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.release(on: context.eventLoop)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Queues what waited as tasks: they run after the rest of the I/O this poll found.
    private func release(on loop: any EventLoop) {
        let bodies = self.waiting
        self.waiting.removeAll()
        for body in bodies {
            loop.execute(body)
        }
    }
}
