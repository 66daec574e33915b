import NIOCore
import NIOPosix

/// A raw TCP connection: bytes out, and everything the server sends until it closes the connection.
public final class RawConnection: Sendable {
    private let channel: any Channel
    private let closed: EventLoopFuture<String>

    private init(channel: any Channel, closed: EventLoopFuture<String>) {
        self.channel = channel
        self.closed = closed
    }

    public static func connect(port: Int) async throws -> RawConnection {
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

    public func send(_ text: String) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(string: text))
    }

    public func send(_ bytes: ByteBuffer) async throws {
        try await self.channel.writeAndFlush(bytes)
    }

    /// Everything received, once the server has closed the connection.
    public func untilClosed() async throws -> String {
        try await self.closed.get()
    }

    public func close() async {
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

extension RawConnection {
    /// Sends `text` on a new connection and returns everything the server sent until it closed it.
    public static func exchange(port: Int, _ text: String) async throws -> String {
        let connection = try await Self.connect(port: port)
        try await connection.send(text)
        return try await connection.untilClosed()
    }
}
