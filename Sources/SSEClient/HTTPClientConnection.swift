import NIOCore
import NIOHTTP1
import NIOPosix

/// A complete HTTP response.
public struct HTTPClientResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    /// The body as UTF-8 text.
    public var text: String { String(buffer: self.body) }
}

/// One keep-alive HTTP/1.1 connection for request/response traffic (producers). Requests are sent
/// one after another; each `send` waits for its response.
public final class HTTPClientConnection: Sendable {
    private let channel: any Channel
    private let handler: NIOLoopBound<ResponseCollector>

    private init(channel: any Channel, handler: NIOLoopBound<ResponseCollector>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects to `host:port`.
    public static func connect(
        host: String,
        port: Int,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> HTTPClientConnection {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector())
                }
            }
            .connect(host: host, port: port)
            .get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ResponseCollector.self), eventLoop: channel.eventLoop)
        }.get()
        return HTTPClientConnection(channel: channel, handler: handler)
    }

    /// Sends a request and waits for the whole response.
    public func send(
        _ method: HTTPMethod,
        _ uri: String,
        headers: HTTPHeaders = [:],
        body: ByteBuffer? = nil
    ) async throws -> HTTPClientResponse {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
        if !head.headers.contains(name: "host") { head.headers.add(name: "Host", value: "localhost") }
        if let body, !head.headers.contains(name: "content-length") {
            head.headers.add(name: "Content-Length", value: String(body.readableBytes))
        }
        let request = head
        let promise = self.channel.eventLoop.makePromise(of: HTTPClientResponse.self)
        let handler = self.handler
        let channel = self.channel
        self.channel.eventLoop.execute {
            // On a closed connection nothing would ever answer (or fail) the promise.
            guard channel.isActive else {
                promise.fail(ChannelError.ioOnClosedChannel)
                return
            }
            handler.value.expect(promise)
            channel.write(HTTPClientRequestPart.head(request), promise: nil)
            if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail($0) }
        }
        return try await promise.futureResult.get()
    }

    /// `POST` with a text body.
    public func post(_ uri: String, body: String, headers: HTTPHeaders = [:]) async throws -> HTTPClientResponse {
        try await self.send(.POST, uri, headers: headers, body: ByteBuffer(string: body))
    }

    public func close() async {
        try? await self.channel.close()
    }

    /// Resolves when the connection is closed (by either side).
    public var closeFuture: EventLoopFuture<Void> { self.channel.closeFuture }
}

/// Matches responses to the requests waiting for them, in order.
final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var waiting = CircularBuffer<EventLoopPromise<HTTPClientResponse>>()
    private var current: HTTPClientResponse?

    func expect(_ promise: EventLoopPromise<HTTPClientResponse>) {
        self.waiting.append(promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            // 100 Continue is informational; the real response follows.
            guard head.status != .continue else { return }
            self.current = HTTPClientResponse(status: head.status, headers: head.headers, body: ByteBuffer())
        case .body(var chunk):
            self.current?.body.writeBuffer(&chunk)
        case .end:
            if let response = self.current, !self.waiting.isEmpty {
                self.waiting.removeFirst().succeed(response)
            }
            self.current = nil
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        while !self.waiting.isEmpty {
            self.waiting.removeFirst().fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        while !self.waiting.isEmpty {
            self.waiting.removeFirst().fail(error)
        }
        context.close(promise: nil)
    }
}
