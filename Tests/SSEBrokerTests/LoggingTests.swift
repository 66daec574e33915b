import InMemoryLogging
import Logging
import NIOEmbedded
import Testing

@testable import SSEBroker

/// The library logs through the `Logger` it is given and never bootstraps: records are captured
/// in memory here, with the global logging system untouched.
@Suite struct LoggingTests {
    @Test func brokerLogsConnectsKicksBansAndDisconnects_toTheLoggerItWasGiven() throws {
        let handler = {
            var handler = InMemoryLogHandler()
            handler.logLevel = .debug  // connects are logged at debug
            return handler
        }()
        let broker = try Broker(logger: Logger(label: "sse.broker", factory: { _ in handler }))
        let loop = EmbeddedEventLoop()
        let transport = RecordingTransport(loop: loop)
        transport.subscription = try broker.subscribe(
            clientID: "alice",
            lastEventID: nil,
            remoteAddress: "127.0.0.1:5",
            userAgent: nil,
            transport: transport
        )
        try broker.kick("alice")
        loop.run()
        try broker.ban("mallory", for: .seconds(60))

        let entries = handler.entries
        #expect(entries.map(\.message.description) == ["client connected", "client disconnected", "client banned"])
        #expect(entries[0].level == .debug)
        #expect(entries[0].metadata["client"] == "alice")
        #expect(entries[0].metadata["remote"] == "127.0.0.1:5")
        #expect(entries[1].level == .notice)
        #expect(entries[1].metadata["reason"] == "kicked")
        #expect(entries[2].metadata["client"] == "mallory")
    }

    @Test func loggerLevelIsRespected() throws {
        var handler = InMemoryLogHandler()
        handler.logLevel = .warning
        let broker = try Broker(logger: Logger(label: "sse.broker", factory: { _ in handler }))
        try broker.ban("mallory")
        #expect(handler.entries.isEmpty)
    }
}
