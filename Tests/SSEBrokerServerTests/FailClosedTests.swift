import Foundation
import InMemoryLogging
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import SSEBroker
import Testing

@testable import SSEBrokerServer

/// Where something cannot be checked, the safe answer is given.
@Suite struct FailClosedTests {
    @Test func backlogThatCannotBeRead_countsAsFull() async throws {
        let channel = EmbeddedChannel()
        #expect(SubscriberBacklog.backlog(of: channel) == 0)
        // A closed channel refuses to read its options (as a socket channel does).
        channel.allowOptionsWhenClosed = false
        try await channel.close()
        let backlog = SubscriberBacklog.backlog(of: channel)
        #expect(backlog == SubscriberBacklog.unknownBacklog)
        // Over any backlog limit, even the largest, and no overflow when an event is added to it.
        let policy = TolerancePolicy(writeTimeout: .seconds(60), tolerance: 1, maxBacklogBytes: Int.max / 4)
        #expect(!policy.mayQueue(unwritableFor: .zero, backlogBytes: backlog, size: 1 << 30))
    }

    @Test func bodyThatIsNotUTF8_isRefused() throws {
        for bytes: [UInt8] in [[0xC3, 0x28], [0xFF], [0x61, 0xE2, 0x82], [0xED, 0xA0, 0x80]] {
            var buffer = ByteBuffer()
            buffer.writeBytes(bytes)
            #expect(throws: BrokerError.invalidUTF8) { try BroadcastRequest().event(body: buffer) }
        }
        let text = ByteBuffer(string: "caf\u{E9} \u{1F600} ok")
        #expect(try BroadcastRequest().event(body: text).data == text)
    }

    @Test func mintedToken_carriesItsClaims() throws {
        let verifier = try SubscriberTokenVerifier(secret: String(repeating: "s", count: 32))
        let token = try verifier.makeToken(subject: "alice", expiresAt: Date(timeIntervalSince1970: 4_102_444_800))
        let payload = try #require(Base64URL.decode(Array(token.split(separator: ".")[1].utf8)))
        let claims = try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any]
        #expect(claims?["sub"] as? String == "alice")
        #expect(claims?["exp"] as? Int == 4_102_444_800)
        #expect(try verifier.verify(token).subject == "alice")
    }

    static func logger(_ logs: InMemoryLogHandler) -> Logger {
        var logger = Logger(label: "test", factory: { _ in logs })
        logger.logLevel = .debug
        return logger
    }

    struct Unexpected: Error {}

    @Test func httpHandler_logsConnectionErrors_debugForResets_warningOtherwise() throws {
        let logs = InMemoryLogHandler()
        let broker = try Broker(logger: quietLogger)
        for error in [IOError(errnoCode: ECONNRESET, reason: "read") as any Error, Unexpected()] {
            let channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandlers(
                HTTPResponseEncoder(),
                ByteToMessageHandler(HTTPRequestDecoder()),
                BrokerHTTPHandler(broker: broker, logger: Self.logger(logs))
            )
            channel.pipeline.fireErrorCaught(error)
            #expect(!channel.isActive)
        }
        let entries = logs.entries.filter { $0.message == "connection closed after an error" }
        #expect(entries.map(\.level) == [.debug, .warning])
        #expect(entries.allSatisfy { $0.metadata["remote"] != nil && $0.metadata["error"] != nil })
    }

    @Test func subscriberHandler_logsConnectionErrors() throws {
        let logs = InMemoryLogHandler()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(SubscriberChannelHandler<HTTP1Framing>(eventLoop: channel.eventLoop, logger: Self.logger(logs)))
        channel.pipeline.fireErrorCaught(Unexpected())
        #expect(!channel.isActive)
        #expect(logs.entries.map(\.level) == [.warning])
    }

    /// A reset that fails the stream's first flush closes the channel while the broker registers
    /// it, before the handler knows its subscription: the broker must still hear of the close.
    @Test func subscriberHandler_aChannelThatClosesWhileSubscribing_isRemoved() throws {
        let broker = try Broker(configuration: .predictable, logger: Self.logger(InMemoryLogHandler()))
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let handler = SubscriberChannelHandler<HTTP1Framing>(eventLoop: channel.eventLoop, logger: Self.logger(InMemoryLogHandler()))
        try channel.pipeline.syncOperations.addHandlers(CloseOnFlush(), handler)
        try handler.start(broker: broker, clientID: "reset", request: ConnectRequest(), remoteAddress: nil, userAgent: nil)
        #expect(!channel.isActive)
        #expect(broker.connectionCount == 0)
        #expect(broker.recentDisconnections.map(\.client.clientID) == ["reset"])
    }

    /// Closes the channel on the first flush, as a connection reset does when the write fails.
    final class CloseOnFlush: ChannelOutboundHandler, Sendable {
        typealias OutboundIn = ByteBuffer
        func flush(context: ChannelHandlerContext) {
            context.close(promise: nil)
        }
    }
}
