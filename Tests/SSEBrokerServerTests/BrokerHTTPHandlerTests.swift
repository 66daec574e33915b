import NIOCore
import NIOEmbedded
import NIOHTTP1
import SSEBroker
import SSEBrokerServer
import Testing

/// The handler's HTTP/1.1 behaviour on an `EmbeddedChannel`, where exact bytes are easy to see.
@Suite struct BrokerHTTPHandlerTests {
    func makeChannel(_ configuration: BrokerConfiguration = .predictable) throws -> (EmbeddedChannel, Broker) {
        let broker = try Broker(configuration: configuration, logger: quietLogger)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers(
            HTTPResponseEncoder(),
            ByteToMessageHandler(HTTPRequestDecoder()),
            BrokerHTTPHandler(broker: broker, logger: quietLogger)
        )
        return (channel, broker)
    }

    func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func pipelinedRequests_getResponsesInOrder() throws {
        let (channel, _) = try self.makeChannel()
        try channel.writeInbound(
            ByteBuffer(
                string: "POST /broadcast HTTP/1.1\r\nContent-Length: 1\r\n\r\na"
                    + "GET /nope HTTP/1.1\r\n\r\n"
                    + "POST /broadcast HTTP/1.1\r\nContent-Length: 1\r\n\r\nb"
            )
        )
        let text = try self.written(channel)
        let statuses = text.matches(of: /HTTP\/1\.1 (\d{3})/).map { String($0.output.1) }
        #expect(statuses == ["202", "404", "202"])
        #expect(text.contains("{\"id\":\"1\",\"delivered\":0}"))
        #expect(text.contains("{\"id\":\"2\",\"delivered\":0}"))
    }

    @Test func expectContinue_isAnsweredBeforeTheBody() throws {
        let (channel, _) = try self.makeChannel()
        try channel.writeInbound(ByteBuffer(string: "POST /broadcast HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"))
        #expect(try self.written(channel) == "HTTP/1.1 100 Continue\r\n\r\n")
        try channel.writeInbound(ByteBuffer(string: "hi"))
        #expect(try self.written(channel).hasPrefix("HTTP/1.1 202 Accepted\r\n"))
    }

    @Test func oversizedDeclaredBody_isRefusedWithoutContinue() throws {
        let (channel, _) = try self.makeChannel(BrokerConfiguration(maxBodyBytes: 1, eventIDSeed: .after(0), retryJitter: 0))
        try channel.writeInbound(ByteBuffer(string: "POST /broadcast HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"))
        let text = try self.written(channel)
        #expect(text.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"))
        #expect(!text.contains("100 Continue"))
    }

    @Test func connect_turnsTheChannelIntoARawEventStream() throws {
        let (channel, broker) = try self.makeChannel()
        try channel.writeInbound(ByteBuffer(string: "GET /connect?id=x HTTP/1.1\r\nUser-Agent: probe\r\n\r\n"))
        #expect(
            try self.written(channel)
                == "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
                + "X-Accel-Buffering: no\r\nX-SSE-Client-ID: x\r\nConnection: close\r\n\r\n: connected x\nretry: 3000\n\n"
        )
        #expect(broker.clients.first?.userAgent == "probe")
        try broker.broadcast(Event(type: "t", data: "d"))
        channel.embeddedEventLoop.run()
        // No chunked framing: the event's bytes as encoded.
        #expect(try self.written(channel) == "event: t\ndata: d\nid: 1\n\n")
        #expect((try? channel.pipeline.syncOperations.handler(type: HTTPResponseEncoder.self)) == nil)
    }

    /// The server's pipeline: with `HTTPServerPipelineHandler`, whose checks (one response per
    /// request, none without a request) trap in debug builds.
    func makePipelinedChannel(_ security: ServerSecurity = ServerSecurity()) throws -> (EmbeddedChannel, Broker) {
        let broker = try Broker(configuration: .predictable, logger: quietLogger)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers(
            HTTPResponseEncoder(),
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
            HTTPServerPipelineHandler(),
            BrokerHTTPHandler(broker: broker, security: security, logger: quietLogger)
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, broker)
    }

    @Test func malformedBodyAfterAnEarlyRefusal_closesWithoutASecondResponse() throws {
        let (channel, _) = try self.makePipelinedChannel()
        // Answered 404 at its head; its chunked body is then malformed.
        try channel.writeInbound(ByteBuffer(string: "POST /nope HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n"))
        let text = try self.written(channel)
        #expect(text.matches(of: /HTTP\/1\.1 (\d{3})/).map { String($0.output.1) } == ["404"])
        #expect(!channel.isActive)
    }

    @Test func slowHead_is408_withThePipeliningHandlerInPlace() throws {
        let security = ServerSecurity(limits: ServerLimits(headerTimeout: .seconds(1)))
        let (channel, _) = try self.makePipelinedChannel(security)
        try channel.writeInbound(ByteBuffer(string: "POST /broadcast HTTP/1.1\r\nHost:"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try self.written(channel).hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(!channel.isActive)
    }

    @Test func eachRequest_movesTheDeadline_theIdleTimeCountsFromTheLastResponse() throws {
        let security = ServerSecurity(limits: ServerLimits(headerTimeout: .seconds(1)))
        let (channel, _) = try self.makePipelinedChannel(security)
        let publish = "POST /broadcast HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"
        try channel.writeInbound(ByteBuffer(string: publish))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(800))
        try channel.writeInbound(ByteBuffer(string: publish))  // its answer moves the idle deadline to 1.8 s
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(700))  // 1.5 s: past the first deadline
        #expect(channel.isActive)
        #expect(try self.written(channel).matches(of: /HTTP\/1\.1 202/).count == 2)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(300))  // 1.8 s: idle for the whole timeout
        #expect(!channel.isActive)
        #expect(try self.written(channel).isEmpty, "an idle keep-alive connection is closed without a response")
    }

    @Test func pipelinedRequestsBehindAConnect_areNeverProcessed() throws {
        let (channel, broker) = try self.makePipelinedChannel()
        try channel.writeInbound(
            ByteBuffer(
                string: "GET /connect?id=x HTTP/1.1\r\n\r\n"
                    + "POST /broadcast HTTP/1.1\r\nContent-Length: 1\r\n\r\na"
                    + "POST /broadcast HTTP/1.1\r\nContent-Length: 1\r\n\r\nb"
            )
        )
        channel.embeddedEventLoop.run()
        #expect(broker.lastEventID == 0)
        #expect(try self.written(channel).hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect((try? channel.pipeline.syncOperations.handler(type: HTTPServerPipelineHandler.self)) == nil)
        #expect((try? channel.pipeline.syncOperations.handler(type: BrokerHTTPHandler.self)) == nil)
    }
}
