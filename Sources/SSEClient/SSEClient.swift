import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A subscriber: one `GET` whose response body is parsed as an event stream.
///
/// ```swift
/// let client = try await SSEClient.connect(host: "127.0.0.1", port: 8080, path: "/connect?id=alice")
/// for await message in client.messages { ... }
/// ```
public final class SSEClient: Sendable {
    /// The response status (`200` for a stream; `204` tells a browser to stop reconnecting).
    public let status: HTTPResponseStatus
    /// The response headers.
    public let headers: HTTPHeaders
    /// Events, comments and retry hints as they arrive; finishes when the server closes the stream.
    public let messages: AsyncStream<SSEMessage>
    private let channel: any Channel

    private init(status: HTTPResponseStatus, headers: HTTPHeaders, messages: AsyncStream<SSEMessage>, channel: any Channel) {
        self.status = status
        self.headers = headers
        self.messages = messages
        self.channel = channel
    }

    /// Connects and waits for the response head.
    /// - Parameters:
    ///   - receiveBufferSize: a small `SO_RCVBUF` makes a slow client for tests.
    ///   - autoRead: `false` makes a client that never reads after the head (a stalled consumer).
    public static func connect(
        host: String,
        port: Int,
        path: String = "/connect",
        headers: HTTPHeaders = [:],
        receiveBufferSize: Int? = nil,
        autoRead: Bool = true,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> SSEClient {
        let (messages, continuation) = AsyncStream.makeStream(of: SSEMessage.self)
        // The response head is handed over under a lock, the promise only says it is there:
        // ThreadSanitizer reported the head's storage, written by the loop's decoder, as read
        // unordered by the task awaiting the promise (2 of 17 runs), even with the promise on the
        // connection's own loop.
        let loop = group.next()
        let headPromise = loop.makePromise(of: Void.self)
        let received = NIOLockedValueBox<HTTPResponseHead?>(nil)
        var bootstrap = ClientBootstrap(group: loop)
        if let receiveBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
        }
        let channel = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        StreamHandler(
                            head: headPromise, received: received, continuation: continuation,
                            stopReadingAfterHead: !autoRead
                        )
                    )
                }
            }
            .connect(host: host, port: port)
            .get()
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: "\(host):\(port)")
        head.headers.replaceOrAdd(name: "Accept", value: "text/event-stream")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
        try await headPromise.futureResult.get()
        let (status, responseHeaders) = received.withLockedValue { ($0!.status, $0!.headers) }
        return SSEClient(status: status, headers: responseHeaders, messages: messages, channel: channel)
    }

    /// Starts reading again after `connect(autoRead: false)`: what the socket holds is parsed, and
    /// the stream finishes if the server has closed the connection.
    public func resumeReading() async throws {
        let channel = self.channel
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: StreamHandler.self).resumeReading()
        }.get()
    }

    /// Closes the connection.
    public func close() async {
        try? await self.channel.close()
    }

    /// Resolves when the server closes the connection.
    public var closeFuture: EventLoopFuture<Void> { self.channel.closeFuture }
}

extension AsyncStream<SSEMessage> {
    /// The events only, skipping comments and retry hints.
    public var events: AsyncCompactMapSequence<AsyncStream<SSEMessage>, ServerSentEvent> {
        self.compactMap { message in
            if case .event(let event) = message { return event }
            return nil
        }
    }
}

/// Feeds the response body through an ``SSEParser``.
final class StreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// Succeeded once the response head is in ``received``.
    private let head: EventLoopPromise<Void>
    private let received: NIOLockedValueBox<HTTPResponseHead?>
    private let continuation: AsyncStream<SSEMessage>.Continuation
    private var stopReadingAfterHead: Bool
    private var context: ChannelHandlerContext?
    private var parser = SSEParser()
    private var headReceived = false

    init(
        head: EventLoopPromise<Void>,
        received: NIOLockedValueBox<HTTPResponseHead?>,
        continuation: AsyncStream<SSEMessage>.Continuation,
        stopReadingAfterHead: Bool
    ) {
        self.head = head
        self.received = received
        self.continuation = continuation
        self.stopReadingAfterHead = stopReadingAfterHead
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func resumeReading() {
        self.stopReadingAfterHead = false
        self.context?.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.headReceived = true
            self.received.withLockedValue { $0 = head }
            self.head.succeed()
        case .body(let chunk):
            for message in self.parser.feed(chunk.readableBytesView) {
                self.continuation.yield(message)
            }
        case .end:
            self.continuation.finish()
        }
    }

    func read(context: ChannelHandlerContext) {
        // A stalled consumer: once the head is in, stop asking the socket for data.
        if self.stopReadingAfterHead && self.headReceived { return }
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.head.fail(ChannelError.eof)
        self.continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.head.fail(error)
        self.continuation.finish()
        context.close(promise: nil)
    }
}
