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

    @Test func deferringFlushes_passesOnOneFlushAtTheEndOfTheTurn() throws {
        let channel = EmbeddedChannel()
        let recorder = Recorder()
        try channel.pipeline.syncOperations.addHandlers(recorder, WriteCoalescingHandler(defersFlushes: true))
        let promises = (0..<3).map { _ in channel.eventLoop.makePromise(of: Void.self) }
        // As NIO's multiplexer does for three streams of one connection written in one turn.
        for (index, promise) in promises.enumerated() {
            channel.write(ByteBuffer(string: "frame\(index);"), promise: promise)
            channel.flush()
        }
        #expect(recorder.seen.isEmpty, "held until the loop's current tasks have run")
        channel.embeddedEventLoop.run()
        #expect(recorder.seen == ["write frame0;frame1;frame2;", "flush"])
        for promise in promises { try promise.futureResult.wait() }
        channel.write(ByteBuffer(string: "next turn"), promise: nil)
        channel.flush()
        channel.embeddedEventLoop.run()
        #expect(recorder.seen.suffix(2) == ["write next turn", "flush"], "a later turn gets its own flush")
    }

    @Test func deferringFlushes_aCloseFlushesWhatWasToBeFlushed_first() throws {
        let channel = EmbeddedChannel()
        let recorder = Recorder()
        try channel.pipeline.syncOperations.addHandlers(recorder, WriteCoalescingHandler(defersFlushes: true))
        channel.write(ByteBuffer(string: "goaway"), promise: nil)
        channel.flush()
        _ = channel.close()
        #expect(recorder.seen == ["write goaway", "flush", "close"])
        channel.embeddedEventLoop.run()
        #expect(recorder.seen == ["write goaway", "flush", "close"], "the deferred flush does not come again")
    }

    final class Recorder: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var seen: [String] = []

        func flush(context: ChannelHandlerContext) {
            self.seen.append("flush")
            context.flush()
        }

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
