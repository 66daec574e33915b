import Logging
import NIOCore
import NIOEmbedded
import SSEBroker
import Testing

@testable import SSEBrokerServer

/// An HTTP/1.1 subscriber connection gets the events of one loop turn as one write through the
/// pipeline, within a bound, and the shared encoded events are never changed.
@Suite struct SubscriberGatheringTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A broker with one HTTP/1.1 subscriber on an `EmbeddedChannel`, its head and preamble read.
    func subscribed() throws -> (Broker, EmbeddedChannel) {
        let broker = try Broker(configuration: .predictable, logger: Self.logger)
        let channel = EmbeddedChannel()
        let handler = SubscriberChannelHandler<HTTP1Framing>(eventLoop: channel.eventLoop, logger: Self.logger)
        try channel.pipeline.syncOperations.addHandler(handler)
        try handler.start(broker: broker, clientID: "a", request: ConnectRequest(), remoteAddress: nil, userAgent: nil)
        _ = try self.outbound(channel)
        return (broker, channel)
    }

    func outbound(_ channel: EmbeddedChannel) throws -> [String] {
        var written: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written.append(String(buffer: buffer)) }
        return written
    }

    @Test func eventsOfOneTurn_areOneWrite_inOrder() throws {
        let (broker, channel) = try self.subscribed()
        for data in ["1", "2", "3"] { try broker.broadcast(Event(data: data)) }
        channel.embeddedEventLoop.run()
        let writes = try self.outbound(channel)
        #expect(writes.count == 1)
        #expect(writes.first?.matches(of: /data: (\d)/).map { String($0.output.1) } == ["1", "2", "3"])
    }

    @Test func aLoneEvent_isPassedOnAsEncoded() throws {
        let (broker, channel) = try self.subscribed()
        try broker.broadcast(Event(data: "only"))
        channel.embeddedEventLoop.run()
        #expect(try self.outbound(channel) == ["data: only\nid: 1\n\n"])
    }

    @Test func gathering_stopsAtItsBound_andStartsAgain() throws {
        let (broker, channel) = try self.subscribed()
        let data = String(repeating: "x", count: 1200)
        for _ in 0..<5 { try broker.broadcast(Event(data: data)) }
        channel.embeddedEventLoop.run()
        let writes = try self.outbound(channel)
        // Three events fit in the bound (4 KiB), the fourth does not: 3 + 2.
        #expect(writes.map { $0.components(separatedBy: "data: ").count - 1 } == [3, 2])
        #expect(writes.allSatisfy { $0.utf8.count <= SubscriberChannelHandler<HTTP1Framing>.gatherLimit })
        #expect(broker.statistics.delivered == 5)
    }
}
