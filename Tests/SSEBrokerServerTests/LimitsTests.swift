import Foundation
import NIOCore
import NIOHTTP1
import SSEBroker
import SSEBrokerServer
import SSEClient
import SSETestSupport
import Testing

/// Every resource a peer can make the server hold is bounded, and every refusal is counted.
@Suite(.timeLimit(.minutes(1)))
struct LimitsTests {
    @Test func maxClients_is503WithRetryAfter_untilASlotFrees() async throws {
        let security = ServerSecurity(limits: ServerLimits(maxClients: 2, retryAfter: .seconds(7)))
        try await TestServer.with(security: security) { server in
            var first = try await server.connectedReader("/connect?id=a")
            let second = try await server.connectedReader("/connect?id=b")
            let refused = try await server.request(.GET, "/connect?id=c")
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.headers.first(name: "retry-after") == "7")
            #expect(refused.text == "503 Service Unavailable: the server already serves its maximum of 2 clients; retry later\n")
            #expect(server.broker.clients.count == 2)
            // The refused request published nothing and disturbed nobody.
            try server.broker.broadcast(Event(data: "one"))
            #expect(try await first.nextEvent() == ServerSentEvent(data: "one", lastEventID: "1"))
            // A slot frees when a client leaves.
            await second.client.close()
            try await server.server.waitUntil { server.server.admission.openStreams == 1 }
            var third = try await server.connectedReader("/connect?id=c")
            try server.broker.broadcast(Event(data: "two"))
            #expect(try await third.nextEvent().data == "two")
            #expect(server.broker.statistics.refusals == [503: 1])
        }
    }

    @Test func perClientIDCap_is429() async throws {
        let security = ServerSecurity(limits: ServerLimits(maxConnectionsPerClientID: 2))
        try await TestServer.with(security: security) { server in
            _ = try await server.connectedReader("/connect?id=alice")
            _ = try await server.connectedReader("/connect?id=alice")
            let refused = try await server.request(.GET, "/connect?id=alice")
            #expect(refused.status == .tooManyRequests)
            #expect(refused.headers.first(name: "retry-after") == "5")
            #expect(refused.text == "429 Too Many Requests: client id \"alice\" already has its maximum of 2 connections\n")
            // Another id is not affected.
            _ = try await server.connectedReader("/connect?id=bob")
            #expect(server.broker.clients.count == 3)
        }
    }

    @Test func oversizedHeaders_are431_andTheConnectionCloses() async throws {
        let security = ServerSecurity(limits: ServerLimits(maxHeaderBytes: 1024))
        try await TestServer.with(security: security) { server in
            let connection = try await server.raw()
            try await connection.send("GET /connect HTTP/1.1\r\nHost: x\r\nX-Padding: \(String(repeating: "a", count: 2000))\r\n\r\n")
            let answer = try await connection.untilClosed()
            #expect(answer.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
            #expect(answer.hasSuffix("431 Request Header Fields Too Large: the request line and headers are larger than the limit of 1024 bytes\n"))
            #expect(server.broker.clients.isEmpty)
            #expect(server.broker.statistics.refusals == [431: 1])
        }
    }

    @Test func slowLorisHead_gets408_andIsClosed() async throws {
        // The deadline also covers the stream's own request below: 5 s, so that request beats it
        // even under a sanitizer with the whole suite (storms included) running (200 ms did not
        // under ASan, 2 s not under TSan).
        let security = ServerSecurity(limits: ServerLimits(headerTimeout: .seconds(5)))
        try await TestServer.with(security: security) { server in
            var reader = try await server.connectedReader("/connect?id=a")
            let connection = try await server.raw()
            // ... and nothing more. On a loaded machine the deadline may pass before this is even
            // sent (the server has then answered and closed): the answer is the same.
            try? await connection.send("POST /broadcast HTTP/1.1\r\nHost: x\r\n")
            let answer = try await connection.untilClosed()
            #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
            #expect(answer.contains("connection: close\r\n") || answer.contains("Connection: close\r\n"))
            #expect(answer.hasSuffix("408 Request Timeout: the request line and headers did not arrive within 5 s\n"))
            #expect(server.broker.statistics.refusals == [408: 1])
            // The established stream is not subject to the header deadline.
            try server.broker.broadcast(Event(data: "still here"))
            #expect(try await reader.nextEvent().data == "still here")
        }
    }

    @Test func silentConnection_isClosedAfterTheHeaderTimeout() async throws {
        let security = ServerSecurity(limits: ServerLimits(headerTimeout: .milliseconds(100)))
        try await TestServer.with(security: security) { server in
            let connection = try await server.raw()
            let answer = try await connection.untilClosed()
            #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        }
    }

    @Test func idleKeepAliveConnection_isClosedQuietly() async throws {
        // Long enough that the request itself always beats the deadline: ASan with the whole suite
        // running made 150 ms, then 1 s, too short.
        let security = ServerSecurity(limits: ServerLimits(headerTimeout: .seconds(5)))
        try await TestServer.with(security: security) { server in
            let publisher = try await server.publisher()
            #expect(try await publisher.post("/broadcast", body: "x").status == .accepted)
            try await publisher.closeFuture.get()
            #expect(server.broker.statistics.refusals.isEmpty)
        }
    }

    @Test func slowBody_gets408_andPublishesNothing() async throws {
        let security = ServerSecurity(limits: ServerLimits(bodyTimeout: .milliseconds(200)))
        try await TestServer.with(security: security) { server in
            var reader = try await server.connectedReader("/connect?id=a")
            let connection = try await server.raw()
            try await connection.send("POST /broadcast HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            let answer = try await connection.untilClosed()
            #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
            #expect(answer.hasSuffix("408 Request Timeout: the request body did not arrive within 0.2 s\n"))
            #expect(server.broker.lastEventID == 0)
            try server.broker.broadcast(Event(data: "next"))
            #expect(try await reader.nextEvent() == ServerSentEvent(data: "next", lastEventID: "1"))
        }
    }

    @Test(arguments: [
        ("/connect?id=\(String(repeating: "i", count: 129))", "invalid client id: it is 129 bytes long; the limit is 128"),
        ("/broadcast?type=\(String(repeating: "t", count: 129))", "invalid event type: it is 129 bytes long; the limit is 128"),
    ])
    func overlongIDsAndTypes_are400(uri: String, message: String) async throws {
        try await TestServer.with { server in
            let response = try await server.request(uri.hasPrefix("/connect") ? .GET : .POST, uri, body: uri.hasPrefix("/connect") ? nil : "x")
            #expect(response.status == .badRequest)
            #expect(response.text == "400 Bad Request: \(message)\n")
            #expect(server.broker.lastEventID == 0)
            #expect(server.broker.clients.isEmpty)
        }
    }

    @Test func refusals_areCountedByStatus_andGoThroughTheErrorHandler() async throws {
        let configuration = BrokerConfiguration(errorHandler: { request, status, error in
            HTTPErrorResponse(status: status, headerFields: [.contentType: "application/json"], body: ByteBuffer(string: "{\"error\":\"\(error)\"}"))
        })
        let security = ServerSecurity(publishToken: try PublishToken("t0ken"), limits: ServerLimits(maxClients: 1))
        try await TestServer.with(configuration, security: security) { server in
            _ = try await server.connectedReader()
            let full = try await server.request(.GET, "/connect")
            #expect(full.text == "{\"error\":\"the server already serves its maximum of 1 clients; retry later\"}")
            #expect(full.headers.first(name: "retry-after") == "5")  // added although the handler did not
            let unauthorized = try await server.request(.POST, "/broadcast", body: "x")
            #expect(unauthorized.text == "{\"error\":\"publishing needs an Authorization: Bearer token\"}")
            #expect(unauthorized.headers.first(name: "www-authenticate") == #"Bearer realm="sse-broker""#)
            _ = try await server.request(.GET, "/nope")
            _ = try await server.request(.POST, "/broadcast", body: "x")
            #expect(server.broker.statistics.refusals == [503: 1, 401: 2, 404: 1])
            #expect(server.broker.statistics.refused == 4)
        }
    }

    @Test func invalidLimits_areRefusedAtStart() async throws {
        let broker = try Broker(logger: quietLogger)
        let server = BrokerServer(broker: broker, port: 0, security: ServerSecurity(limits: ServerLimits(maxClients: 0)), logger: quietLogger)
        await #expect(throws: BrokerError.invalidConfiguration("maxClients must be at least 1 (got 0)")) {
            try await server.start()
        }
        try await server.shutdown()
    }
}

extension BrokerServer {
    /// Polls a condition the server reaches asynchronously (a closed socket's slot is released on
    /// its event loop, with no event to await from outside), bounded by `timeout`.
    func waitUntil(timeout: Duration = .seconds(5), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw StreamEnded.ended }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
