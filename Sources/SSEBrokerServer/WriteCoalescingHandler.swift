import NIOCore

/// Gathers the writes between two flushes into one buffer, in front of the TLS handler (and, on
/// an HTTP/2 connection, defers the flushes to the end of the loop's turn).
///
/// NIOSSL encrypts every write as its own TLS record: a 5-byte header, a 16-byte tag and one pass
/// of the cipher per write, however small. An HTTP/2 connection carrying a hundred subscriber
/// streams writes two buffers per DATA frame (NIO's 9-byte frame header, then the shared event), so
/// one event made two hundred records per connection; gathered, it makes one `SSL_write` per flush
/// (records of up to 16 KiB). A copy of small buffers costs far less than the records it saves.
///
/// A write of ``passThroughBytes`` or more is not copied: what was gathered before it is written,
/// then it goes as it is. Promises complete when the gathered write does.
///
/// With ``defersFlushes`` (set once a connection speaks HTTP/2), a flush is not passed on at once
/// but by a task queued behind the loop's current ones: NIO's multiplexer flushes the connection
/// once per stream flushed, so a fan-out's turn to a hundred streams of one connection was a
/// hundred TLS passes and `writev`s; deferred, it is one. Nothing is held past that task, and a
/// close passes on a requested flush first. Without it nothing is held across a flush, so
/// writability and the subscribers' backlogs are what they were; with it, a connection's backlog
/// is read without the current turn's bytes, which is at most one turn's worth for its streams.
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
    /// Whether a flush waits for the end of the loop's turn (HTTP/2: many streams, one connection).
    var defersFlushes: Bool
    /// A flush was asked for and its task is queued.
    private var flushDeferred = false
    private var removed = false

    init(defersFlushes: Bool = false) {
        self.defersFlushes = defersFlushes
    }

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
        guard self.defersFlushes else {
            self.flushNow(context: context)
            return
        }
        guard !self.flushDeferred else { return }
        self.flushDeferred = true
        context.eventLoop.assumeIsolated().execute {
            guard self.flushDeferred, !self.removed else { return }
            self.flushNow(context: context)
        }
    }

    private func flushNow(context: ChannelHandlerContext) {
        self.flushDeferred = false
        self.writePending(context: context)
        context.flush()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        self.passOnHeld(context: context)
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.passOnHeld(context: context)
        self.removed = true
    }

    /// Before a close or a removal: what was gathered goes on, in order, as the TLS handler would
    /// have held it unflushed; flushed if a flush was asked for and deferred (a GOAWAY before the close).
    private func passOnHeld(context: ChannelHandlerContext) {
        if self.flushDeferred {
            self.flushNow(context: context)
        } else {
            self.writePending(context: context)
        }
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
