import NIOCore

/// Gathers the writes between two flushes into one buffer, in front of the TLS handler.
///
/// NIOSSL encrypts every write as its own TLS record: a 5-byte header, a 16-byte tag and one pass
/// of the cipher per write, however small. An HTTP/2 connection carrying a hundred subscriber
/// streams writes two buffers per DATA frame (NIO's 9-byte frame header, then the shared event), so
/// one event made two hundred records per connection; gathered, it makes one `SSL_write` per flush
/// (records of up to 16 KiB). A copy of small buffers costs far less than the records it saves.
///
/// A write of ``passThroughBytes`` or more is not copied: what was gathered before it is written,
/// then it goes as it is. Nothing is held across a flush, so writability and the subscribers'
/// backlogs are what they were. Promises complete when the gathered write does.
///
/// Loop-confined like every `ChannelHandler`.
final class WriteCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// A write this large fills TLS records on its own.
    static let passThroughBytes = 16 << 10

    private var pending: ByteBuffer?
    /// Whether ``pending`` is a buffer of ours (else it is the first write's, shared and not to be appended to).
    private var ownsPending = false
    private var promise: EventLoopPromise<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var buffer = self.unwrapOutboundIn(data)
        if buffer.readableBytes >= Self.passThroughBytes {
            self.writePending(context: context)
            context.write(data, promise: promise)
            return
        }
        if self.pending == nil {
            self.pending = buffer  // a lone write is passed on without a copy
        } else {
            if !self.ownsPending {
                var gathered = context.channel.allocator.buffer(
                    capacity: max(1024, self.pending!.readableBytes + buffer.readableBytes)
                )
                gathered.writeImmutableBuffer(self.pending!)
                self.pending = gathered
                self.ownsPending = true
            }
            self.pending!.writeBuffer(&buffer)
        }
        if let promise {
            if let first = self.promise {
                first.futureResult.cascade(to: promise)
            } else {
                self.promise = promise
            }
        }
    }

    func flush(context: ChannelHandlerContext) {
        self.writePending(context: context)
        context.flush()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // In order, as the TLS handler would have held them unflushed.
        self.writePending(context: context)
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.writePending(context: context)
    }

    private func writePending(context: ChannelHandlerContext) {
        guard let pending = self.pending else { return }
        let promise = self.promise
        self.pending = nil
        self.ownsPending = false
        self.promise = nil
        context.write(self.wrapOutboundOut(pending), promise: promise)
    }
}
