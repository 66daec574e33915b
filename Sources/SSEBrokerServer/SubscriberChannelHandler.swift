import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SSEBroker

/// The NIO side of one subscriber: a ``SubscriberTransport`` over a channel whose HTTP codecs have
/// been removed, so events are written as raw, shared `ByteBuffer`s (the response is close-delimited).
///
/// Loop-confined like every `ChannelHandler`.
final class SubscriberChannelHandler: ChannelInboundHandler, RemovableChannelHandler, SubscriberTransport {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let eventLoop: any EventLoop
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var subscription: Subscription?
    /// Closes the stream when the subscriber's token expires.
    private var expiry: Scheduled<Void>?
    /// The response head, written when the broker says how the resume went.
    private var head: (clientID: String, extraHeaders: HTTPHeaders)?

    init(eventLoop: any EventLoop, logger: Logger) {
        self.eventLoop = eventLoop
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Writes the response head and registers with the broker, which writes the preamble and the
    /// replay. With `expiresAt`, the stream is closed at that moment (reason ``DisconnectReason/expired``,
    /// after a `: token expired` comment).
    func start(
        broker: Broker,
        clientID: String,
        request: ConnectRequest,
        remoteAddress: String?,
        userAgent: String?,
        extraHeaders: HTTPHeaders = [:],
        expiresAt: Date? = nil
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
        self.subscription = subscription
        if let expiresAt {
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
        self.subscription?.writabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
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
            headers.add(name: "SSE-Replay", value: replay.headerValue)
        }
        self.write(ConnectRequest.responseHead(clientID: head.clientID, extraHeaders: headers))
    }

    func write(_ buffer: ByteBuffer) {
        self.context?.write(self.wrapOutboundOut(buffer), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    func close() {
        self.context?.close(promise: nil)
    }

    var bufferedBytes: Int {
        guard let context else { return 0 }
        return Self.backlog(of: context.channel)
    }

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
