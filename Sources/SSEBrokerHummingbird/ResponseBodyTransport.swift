import Hummingbird
import NIOCore
import SSEBroker

/// A ``SubscriberTransport`` over a Hummingbird response body: the broker's fan-out writes into it
/// on the connection's event loop, and the connection's own response task drains it.
///
/// Hummingbird writes a body from a task (`ResponseBodyWriter` is async), so one suspended task
/// per connection is inherent; there is no `AsyncStream` per client and no task per event. The
/// broker's `write`s land in a loop-confined buffer; a `flush` hands everything written so far to
/// the response task in one batch (waking it if it is parked), and the task asks for the next batch
/// once the writer has taken this one — one loop hop per batch, whatever the batch holds.
///
/// Backpressure is reported honestly: while the writer is suspended on a socket that does not
/// drain, batches pile up here; past ``highWaterMark`` bytes the subscription is told it is
/// unwritable and below ``lowWaterMark`` writable again, so the broker's slow-client policy
/// (write timeout, backlog limit, tolerance) applies exactly as on its own server.
///
/// Loop-confined: every member except ``stream(into:subscribe:)`` runs on ``eventLoop``.
final class ResponseBodyTransport: SubscriberTransport, @unchecked Sendable {
    /// NIO's default write buffer watermarks.
    static let highWaterMark = 64 << 10
    static let lowWaterMark = 32 << 10

    let eventLoop: any EventLoop
    private let channel: any Channel

    // Loop-confined state.
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0
    /// How many of `pending` were flushed (the rest waits for the next flush).
    private var flushedCount = 0
    /// Bytes handed to the response task whose write has not completed.
    private var inFlightBytes = 0
    /// The parked response task; resumed with a batch, or `nil` when the stream is over.
    private var waiter: CheckedContinuation<[ByteBuffer]?, Never>?
    private var isClosed = false
    /// Closed by the broker with a last batch handed to the response task: close once it is written.
    private var closesAfterLastBatch = false
    private var reportedWritable = true
    private var subscription: Subscription?

    init(channel: any Channel) {
        self.channel = channel
        self.eventLoop = channel.eventLoop
    }

    /// Registers with the broker (on the loop) and writes batches until the connection closes or
    /// the broker closes it. Runs in the response task.
    func stream(
        into writer: inout any ResponseBodyWriter,
        subscribe: @escaping @Sendable (ResponseBodyTransport) throws(BrokerError) -> Subscription
    ) async throws {
        let subscribed: Bool = try await self.eventLoop.submit {
            do {
                self.subscription = try subscribe(self)
            } catch {
                return false
            }
            // Watched once registered, so a connection that is already gone is removed at once.
            self.channel.closeFuture.whenComplete { _ in self.connectionClosed() }
            // Hummingbird allows half-closure, so a subscriber that hangs up would otherwise be
            // noticed only when a write fails (the next heartbeat): close on the end of its input.
            try? self.channel.pipeline.syncOperations.addHandler(HangUpHandler(), position: .first)
            return true
        }.get()
        guard subscribed else {
            // A ban or a shutdown raced with this request: end the (empty) stream.
            try? await writer.finish(nil)
            return
        }
        let channel = self.channel
        try await withTaskCancellationHandler {
            while let batch = await self.nextBatch() {
                do {
                    try await writer.write(contentsOf: batch)
                } catch {
                    channel.close(promise: nil)  // the broker hears of it through the close future
                    throw error
                }
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// Parks until a flushed batch is there; `nil` once the stream is over. Marks the previous
    /// batch as written.
    private func nextBatch() async -> [ByteBuffer]? {
        await withCheckedContinuation { (continuation: CheckedContinuation<[ByteBuffer]?, Never>) in
            self.eventLoop.execute {
                self.inFlightBytes = 0
                self.updateWritability()
                if self.isClosed {
                    if self.closesAfterLastBatch { self.channel.close(promise: nil) }
                    continuation.resume(returning: nil)
                } else if self.flushedCount > 0 {
                    continuation.resume(returning: self.takeFlushed())
                } else {
                    self.waiter = continuation
                }
            }
        }
    }

    private func takeFlushed() -> [ByteBuffer] {
        let batch: [ByteBuffer]
        if self.flushedCount == self.pending.count {
            batch = self.pending
            self.pending.removeAll(keepingCapacity: true)
        } else {
            batch = Array(self.pending[..<self.flushedCount])
            self.pending.removeFirst(self.flushedCount)
        }
        let bytes = batch.reduce(0) { $0 + $1.readableBytes }
        self.pendingBytes -= bytes
        self.inFlightBytes += bytes
        self.flushedCount = 0
        return batch
    }

    private func updateWritability() {
        let buffered = self.pendingBytes + self.inFlightBytes
        if self.reportedWritable && buffered > Self.highWaterMark {
            self.reportedWritable = false
            self.subscription?.writabilityChanged(isWritable: false)
        } else if !self.reportedWritable && buffered <= Self.lowWaterMark {
            self.reportedWritable = true
            self.subscription?.writabilityChanged(isWritable: true)
        }
    }

    private func connectionClosed() {
        self.finishStream()
        self.subscription?.transportClosed()
        self.subscription = nil
    }

    private func finishStream() {
        self.isClosed = true
        self.pending.removeAll()
        self.pendingBytes = 0
        self.flushedCount = 0
        if let waiter = self.waiter {
            self.waiter = nil
            waiter.resume(returning: nil)
        }
    }

    // MARK: SubscriberTransport

    func write(_ buffer: ByteBuffer) {
        guard !self.isClosed else { return }
        self.pending.append(buffer)
        self.pendingBytes += buffer.readableBytes
        self.updateWritability()
    }

    func flush() {
        guard !self.isClosed else { return }
        self.flushedCount = self.pending.count
        if self.flushedCount > 0, let waiter = self.waiter {
            self.waiter = nil
            waiter.resume(returning: self.takeFlushed())
        }
    }

    /// Closes the connection. What was flushed is still written if the response task is idle and
    /// the socket has room (the broker's farewell comment at shutdown); otherwise — a client that
    /// is not keeping up — what is queued is discarded and the connection closed at once.
    func close() {
        guard !self.isClosed else { return }
        let idleWithBatch = self.waiter != nil && self.flushedCount > 0
        let writing = self.waiter == nil && self.inFlightBytes > 0
        guard self.channel.isWritable, idleWithBatch || writing else {
            self.finishStream()
            self.channel.close(promise: nil)
            return
        }
        // The response task writes its last batch, then closes (in `nextBatch`).
        let waiter = self.waiter
        self.waiter = nil
        let batch = idleWithBatch ? self.takeFlushed() : []
        self.finishStream()
        self.closesAfterLastBatch = true
        waiter?.resume(returning: batch)
    }

    /// An upper bound, the side the slow-client policy errs on: a batch the response task has
    /// handed to the channel is counted both on the socket and in flight until the task asks for
    /// the next batch, so it can count one batch twice.
    var bufferedBytes: Int {
        let socket = (try? self.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        return self.pendingBytes + self.inFlightBytes + socket
    }
}

/// Closes the connection once the subscriber closes its side: a subscriber has nothing more to send
/// after its request, so the end of its input means it is gone.
final class HangUpHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }
}
