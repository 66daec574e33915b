import Foundation
import Logging
import NIOCore
import HTTPTypes
import SSEBroker

/// The NIO side of one subscriber: a ``SubscriberTransport`` over a channel whose HTTP codecs have
/// been removed, so events are written as shared `ByteBuffer`s — raw on an HTTP/1.1 connection (the
/// response is close-delimited), as DATA frames on an HTTP/2 stream (``SubscriberFraming``).
///
/// Loop-confined like every `ChannelHandler`.
final class SubscriberChannelHandler<Framing: SubscriberFraming>: ChannelInboundHandler, RemovableChannelHandler,
    SubscriberTransport
{
    typealias InboundIn = Framing.InboundIn
    typealias OutboundOut = Framing.OutboundOut

    let eventLoop: any EventLoop
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var subscription: Subscription?
    /// Closes the stream when the subscriber's token expires.
    private var expiry: Scheduled<Void>?
    /// The response head, written when the broker says how the resume went.
    private var head: (clientID: String, extraHeaders: HTTPFields)?
    /// Set once the channel is inactive: it may go while the broker registers it (a reset that
    /// fails the first flush closes it inside `subscribe`, before ``subscription`` is set).
    private var isInactive = false
    /// HTTP/2: bytes written since the stream last became unwritable (see ``bufferedBytes``).
    private var writtenWhileUnwritable = 0
    private var isWritable = true
    /// The events written since the last flush, not yet passed on: on HTTP/2 sent as one DATA frame
    /// at the flush; on HTTP/1.1 gathered (see ``gather(_:)``).
    private var pending: ByteBuffer?
    /// HTTP/1.1: whether this flush's events are gathered into one buffer (`nil`: not decided yet).
    private var gathering: Bool?
    /// HTTP/1.1: whether ``pending`` is this connection's own buffer (else a shared event).
    private var pendingIsOwn = false

    /// HTTP/2: the subscriber streams of this stream's connection, counted while registered.
    private let connectionSubscribers: HTTP2SubscriberCount?
    private var isCounted = false

    init(eventLoop: any EventLoop, logger: Logger, connectionSubscribers: HTTP2SubscriberCount? = nil) {
        self.eventLoop = eventLoop
        self.logger = logger
        self.connectionSubscribers = connectionSubscribers
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Writes the response head and registers with the broker, which writes the preamble and the
    /// replay. With a `token`, its subject and expiry are recorded for the console, and the stream is
    /// closed when it expires (reason ``DisconnectReason/expired``,
    /// after a `: token expired` comment).
    func start(
        broker: Broker,
        clientID: String,
        request: ConnectRequest,
        remoteAddress: String?,
        userAgent: String?,
        extraHeaders: HTTPFields = [:],
        token: SubscriberToken? = nil
    ) throws(BrokerError) {
        self.head = (clientID, extraHeaders)
        let subscription = try broker.subscribe(
            clientID: clientID,
            lastEventID: request.lastEventID,
            topics: request.topics,
            remoteAddress: remoteAddress,
            userAgent: userAgent,
            transport: self
        )
        guard !self.isInactive else {
            // Gone while it registered: channelInactive had no subscription to tell.
            subscription.transportClosed()
            return
        }
        self.subscription = subscription
        if let token {
            // For the console's client detail: who the token says this is, and until when.
            subscription.recordToken(subject: token.subject, expiresAt: token.expiresAt)
        }
        if let connectionSubscribers {
            connectionSubscribers.value += 1
            self.isCounted = true
        }
        if let expiresAt = token?.expiresAt {
            let delay = max(0, expiresAt.timeIntervalSinceNow)
            self.expiry = self.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) {
                subscription.disconnect(reason: .expired, comment: "token expired")
            }
        }
    }

    // A subscriber has nothing to say after its request; whatever it sends is dropped. Reading
    // continues so a closed socket is noticed at once.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.isWritable = context.channel.isWritable
        self.writtenWhileUnwritable = 0
        self.subscription?.writabilityChanged(isWritable: self.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.isInactive = true
        if self.isCounted {
            self.connectionSubscribers?.value -= 1
            self.isCounted = false
        }
        self.expiry?.cancel()
        self.expiry = nil
        self.subscription?.transportClosed()
        self.subscription = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Resets and broken pipes end the stream; the broker hears of it through channelInactive.
        BrokerHTTPHandler.log(error, remote: context.channel.remoteAddress, to: self.logger)
        context.close(promise: nil)
    }

    // MARK: SubscriberTransport

    func streamWillStart(replay: ReplayStatus?) {
        guard let head = self.head else { return }
        self.head = nil
        var headers = head.extraHeaders
        if let replay {
            headers.append(HTTPField(name: .sseReplay, value: replay.headerValue))
        }
        self.context?.write(self.wrapOutboundOut(Framing.head(clientID: head.clientID, headers: headers)), promise: nil)
    }

    var httpVersion: String { Framing.httpVersion }

    func write(_ buffer: ByteBuffer) {
        guard Framing.coalescesWrites else {
            self.gather(buffer)
            return
        }
        self.countIfUnwritable(buffer)
        if self.pending == nil {
            self.pending = buffer  // shared, not copied: most flushes carry one event
        } else {
            self.pending!.writeImmutableBuffer(buffer)  // the first append copies the shared bytes
        }
    }

    /// HTTP/2: what a stream is written past its high watermark (see ``bufferedBytes``).
    @inline(__always)
    private func countIfUnwritable(_ buffer: ByteBuffer) {
        if !self.isWritable {
            self.writtenWhileUnwritable &+= buffer.readableBytes
        }
    }

    /// HTTP/1.1: the events of one flush gathered into one buffer, so a connection gets one write
    /// through the pipeline per flush instead of one per event (those writes were a third of a
    /// saturated fan-out's CPU). Gathering copies, so it is bounded: only while the socket had
    /// nothing queued when the flush began (a connection that keeps up; a lagging one keeps the
    /// shared buffers, and its backlog costs no copies), and at most ``gatherLimit`` bytes at a time.
    private func gather(_ buffer: ByteBuffer) {
        guard var pending = self.pending else {
            self.pending = buffer  // shared, not copied: most flushes carry one event
            return
        }
        if self.gathering == nil, let context {
            self.gathering = SubscriberBacklog.backlog(of: context.channel) == 0
        }
        if self.gathering == true, pending.readableBytes + buffer.readableBytes <= Self.gatherLimit {
            self.pending = nil  // drop this reference, so the append does not copy twice
            if !self.pendingIsOwn {
                // The first is a shared event: a buffer of this connection's own, with room for a
                // few more (growing one event at a time, or copying the shared storage whole, cost
                // more than the copy).
                var own = ByteBufferAllocator().buffer(
                    capacity: min(Self.gatherLimit, 4 * (pending.readableBytes + buffer.readableBytes))
                )
                own.writeImmutableBuffer(pending)
                pending = own
                self.pendingIsOwn = true
            }
            pending.writeImmutableBuffer(buffer)
            self.pending = pending
        } else {
            self.context?.write(self.wrapOutboundOut(Framing.body(pending)), promise: nil)
            self.pending = buffer
            self.pendingIsOwn = false
        }
    }

    /// The most bytes gathered into one buffer (see ``gather(_:)``): a connection that falls behind
    /// holds at most one such copy (40 MiB for 10,000 connections; the overload storm with 10,000
    /// readers peaked at 134 MiB RSS with gathering, 95 without), and 64-byte events still go 60 to
    /// a write.
    static var gatherLimit: Int { 4 * 1024 }

    func flush() {
        self.gathering = nil
        let pending = self.pending
        self.pending = nil
        self.pendingIsOwn = false
        guard let context else { return }
        if let pending {
            context.writeAndFlush(self.wrapOutboundOut(Framing.body(pending)), promise: nil)
        } else {
            context.flush()
        }
    }

    func writeAndFlush(_ buffer: ByteBuffer) {
        // Nothing gathered (the commonest case): the event goes down the pipeline as it is, once.
        guard self.pending == nil, let context else {
            self.write(buffer)
            self.flush()
            return
        }
        if Framing.coalescesWrites { self.countIfUnwritable(buffer) }
        self.gathering = nil
        context.writeAndFlush(self.wrapOutboundOut(Framing.body(buffer)), promise: nil)
    }

    func close() {
        self.pending = nil
        self.pendingIsOwn = false
        self.context?.close(promise: nil)
    }

    /// On HTTP/1.1 the socket channel's own count. An HTTP/2 stream channel cannot tell its backlog,
    /// only that it is unwritable, for one of two reasons:
    /// - its connection's socket is behind: every stream's bytes wait in the connection's buffer,
    ///   and a stream's backlog is its share of that buffer (one subscriber stream's share, among
    ///   the connection's subscriber streams), so that a burst to many healthy streams of one
    ///   connection does not count as each stream's own lag;
    /// - its flow-control window is exhausted (the client does not read this stream): its bytes
    ///   wait in the stream, past its high watermark, and its backlog is taken as that watermark
    ///   plus what was written since, an overestimate, the side the slow-client policy errs on.
    var bufferedBytes: Int {
        guard let context else { return 0 }
        if Framing.channelKnowsBacklog {
            return SubscriberBacklog.backlog(of: context.channel)
        }
        if self.isWritable { return 0 }
        if let connection = context.channel.parent, !connection.isWritable {
            return SubscriberBacklog.backlog(of: connection) / max(1, self.connectionSubscribers?.value ?? 1)
        }
        return ConnectionSetup.streamHighWatermark + self.writtenWhileUnwritable
    }
}

/// How much a connection has queued for its peer.
enum SubscriberBacklog {
    /// The bytes queued on `channel`. A backlog that cannot be read counts as full
    /// (``unknownBacklog``): the slow-client policy must err towards dropping a client, never
    /// towards buffering without limit.
    static func backlog(of channel: any Channel) -> Int {
        do {
            guard let options = channel.syncOptions else { return Self.unknownBacklog }
            return try options.getOption(.bufferedWritableBytes)
        } catch {
            return Self.unknownBacklog
        }
    }

    /// A backlog over any limit, yet far enough below `Int.max` that adding an event's size to it
    /// (as `TolerancePolicy.mayQueue` does) cannot overflow.
    static let unknownBacklog = Int.max / 2
}

extension HTTPField.Name {
    /// `SSE-Replay`: how much of what a resuming subscriber missed is replayed (``ReplayStatus``).
    public static let sseReplay = HTTPField.Name("SSE-Replay")!
}
