import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SSEBroker
import SSEBrokerServer
import SSEClient
import SSETestSupport
import Testing

let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// A real broker and server on an ephemeral 127.0.0.1 port.
struct TestServer {
    let broker: Broker
    let server: BrokerServer
    let port: Int

    static func with(
        _ configuration: BrokerConfiguration = .predictable,
        extraRoutes: [HTTPRoute] = [],
        security: ServerSecurity = ServerSecurity(),
        logger: Logger = quietLogger,
        _ body: (TestServer) async throws -> Void
    ) async throws {
        let broker = try Broker(configuration: configuration, logger: logger)
        let server = BrokerServer(
            broker: broker,
            host: "127.0.0.1",
            port: 0,
            extraRoutes: extraRoutes,
            security: security,
            group: MultiThreadedEventLoopGroup.singleton,
            logger: logger
        )
        let address = try await server.start()
        let testServer = TestServer(broker: broker, server: server, port: try #require(address.port))
        do {
            try await body(testServer)
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    func subscribe(
        _ path: String = "/connect",
        headers: HTTPHeaders = [:],
        receiveBufferSize: Int? = nil,
        autoRead: Bool = true
    ) async throws -> SSEClient {
        try await SSEClient.connect(
            host: "127.0.0.1",
            port: self.port,
            path: path,
            headers: headers,
            receiveBufferSize: receiveBufferSize,
            autoRead: autoRead
        )
    }

    /// Subscribes and waits for the stream's preamble, so the client is registered on return.
    func connectedReader(_ path: String = "/connect", headers: HTTPHeaders = [:]) async throws -> StreamReader {
        let client = try await self.subscribe(path, headers: headers)
        #expect(client.status == .ok)
        var reader = StreamReader(client)
        let first = try await reader.next()
        guard case .comment(let text) = first, text.hasPrefix("connected ") else {
            Issue.record("expected the connected comment first, got \(String(describing: first))")
            return reader
        }
        return reader
    }

    func publisher() async throws -> HTTPClientConnection {
        try await HTTPClientConnection.connect(host: "127.0.0.1", port: self.port)
    }

    /// A raw TCP connection, for requests an HTTP client would not send.
    func raw() async throws -> RawConnection {
        try await RawConnection.connect(port: self.port)
    }

    /// A one-off request on a fresh connection.
    func request(_ method: HTTPMethod, _ uri: String, body: String? = nil, headers: HTTPHeaders = [:]) async throws -> HTTPClientResponse {
        let connection = try await self.publisher()
        defer { Task { await connection.close() } }
        return try await connection.send(method, uri, headers: headers, body: body.map { ByteBuffer(string: $0) })
    }
}


/// A raw TCP connection: bytes out, and everything the server sends until it closes the connection.
final class RawConnection: Sendable {
    private let channel: any Channel
    private let closed: EventLoopFuture<String>

    private init(channel: any Channel, closed: EventLoopFuture<String>) {
        self.channel = channel
        self.closed = closed
    }

    static func connect(port: Int) async throws -> RawConnection {
        let group = MultiThreadedEventLoopGroup.singleton
        let loop = group.any()
        let promise = loop.makePromise(of: String.self)
        let channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(done: promise))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return RawConnection(channel: channel, closed: promise.futureResult)
    }

    func send(_ text: String) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(string: text))
    }

    func send(_ bytes: ByteBuffer) async throws {
        try await self.channel.writeAndFlush(bytes)
    }

    /// Everything received, once the server has closed the connection.
    func untilClosed() async throws -> String {
        try await self.closed.get()
    }

    func close() async {
        try? await self.channel.close()
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let done: EventLoopPromise<String>
        var text = ""

        init(done: EventLoopPromise<String>) {
            self.done = done
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            self.text += String(buffer: self.unwrapInboundIn(data))
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.done.succeed(self.text)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
