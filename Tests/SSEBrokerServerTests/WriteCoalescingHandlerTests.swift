import NIOCore
import NIOEmbedded
import Testing

@testable import SSEBrokerServer

/// The writes between two flushes reach the TLS handler as one buffer, in order, with every promise kept.
@Suite struct WriteCoalescingHandlerTests {
    func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(WriteCoalescingHandler())
        return channel
    }

    func outbound(_ channel: EmbeddedChannel) throws -> [String] {
        var written: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written.append(String(buffer: buffer)) }
        return written
    }

    @Test func smallWrites_goOutAsOneBufferAtTheFlush_andEveryPromiseCompletes() throws {
        let channel = try self.channel()
        let shared = ByteBuffer(string: "event")
        let promises = (0..<3).map { _ in channel.eventLoop.makePromise(of: Void.self) }
        channel.write(ByteBuffer(string: "head:"), promise: promises[0])
        channel.write(shared, promise: promises[1])
        channel.write(ByteBuffer(string: ";"), promise: promises[2])
        #expect(try self.outbound(channel).isEmpty, "nothing before the flush")
        channel.flush()
        #expect(try self.outbound(channel) == ["head:event;"])
        for promise in promises { try promise.futureResult.wait() }
        #expect(String(buffer: shared) == "event", "the shared buffer is not changed")
    }

    @Test func aLoneWrite_isPassedOnAsItIs() throws {
        let channel = try self.channel()
        try channel.writeAndFlush(ByteBuffer(string: "only")).wait()
        #expect(try self.outbound(channel) == ["only"])
    }

    @Test func aLargeWrite_isNotCopied_andOrderIsKept() throws {
        let channel = try self.channel()
        let large = String(repeating: "x", count: WriteCoalescingHandler.passThroughBytes)
        channel.write(ByteBuffer(string: "a"), promise: nil)
        channel.write(ByteBuffer(string: "b"), promise: nil)
        channel.write(ByteBuffer(string: large), promise: nil)
        channel.write(ByteBuffer(string: "c"), promise: nil)
        channel.flush()
        #expect(try self.outbound(channel) == ["ab", large, "c"])
    }

    @Test func close_passesOnWhatWasGathered_first() throws {
        // As unflushed writes at a close anywhere in NIO: handed on, in order, before the close.
        let channel = EmbeddedChannel()
        let recorder = Recorder()
        try channel.pipeline.syncOperations.addHandlers(recorder, WriteCoalescingHandler())
        channel.write(ByteBuffer(string: "farewell"), promise: nil)
        channel.write(ByteBuffer(string: "!"), promise: nil)
        _ = channel.close()
        #expect(recorder.seen == ["write farewell!", "close"])
    }

    final class Recorder: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var seen: [String] = []

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            self.seen.append("write " + String(buffer: self.unwrapOutboundIn(data)))
            context.write(data, promise: promise)
        }

        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            self.seen.append("close")
            context.close(mode: mode, promise: promise)
        }
    }
}
