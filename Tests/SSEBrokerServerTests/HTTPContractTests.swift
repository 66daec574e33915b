import NIOCore
import NIOHTTP1
import SSEBroker
import SSEBrokerServer
import SSEClient
import SSETestSupport
import Testing

@Suite(.timeLimit(.minutes(1)))
struct HTTPContractTests {
    @Test func connect_answersAnEventStream_andWritesThePreambleAtOnce() async throws {
        try await TestServer.with { server in
            let client = try await server.subscribe("/connect?id=alice")
            #expect(client.status == .ok)
            #expect(client.headers.first(name: "content-type") == "text/event-stream; charset=utf-8")
            #expect(client.headers.first(name: "cache-control") == "no-cache")
            #expect(client.headers.first(name: "x-accel-buffering") == "no")
            #expect(client.headers.first(name: "x-sse-client-id") == "alice")
            var reader = StreamReader(client)
            #expect(try await reader.next() == .comment("connected alice"))
            #expect(try await reader.next() == .retry(3000))
        }
    }

    @Test func connect_withoutID_getsAGeneratedOne() async throws {
        try await TestServer.with { server in
            let client = try await server.subscribe()
            let id = try #require(client.headers.first(name: "x-sse-client-id"))
            var reader = StreamReader(client)
            #expect(try await reader.next() == .comment("connected \(id)"))
            #expect(server.broker.clients.map(\.clientID) == [id])
        }
    }

    @Test func broadcast_reachesEveryClient() async throws {
        try await TestServer.with { server in
            var readers: [StreamReader] = []
            for index in 0..<50 {
                readers.append(try await server.connectedReader("/connect?id=c\(index)"))
            }
            let response = try await server.request(.POST, "/broadcast?type=greeting", body: "hello\nworld")
            #expect(response.status == .accepted)
            #expect(response.headers.first(name: "content-type") == "application/json")
            #expect(response.text == "{\"id\":\"1\",\"delivered\":50}\n")
            for index in readers.indices {
                let event = try await readers[index].nextEvent()
                #expect(event == ServerSentEvent(type: "greeting", data: "hello\nworld", lastEventID: "1"))
            }
        }
    }

    @Test func broadcastTo_reachesBothConnectionsOfTheID_andNobodyElse() async throws {
        try await TestServer.with { server in
            var tab1 = try await server.connectedReader("/connect?id=alice")
            var tab2 = try await server.connectedReader("/connect?id=alice")
            var bob = try await server.connectedReader("/connect?id=bob")
            let response = try await server.request(.POST, "/broadcast?id=alice&type=dm", body: "psst")
            #expect(response.status == .accepted)
            #expect(response.text == "{\"id\":\"1\",\"delivered\":2}\n")
            #expect(try await tab1.nextEvent() == ServerSentEvent(type: "dm", data: "psst", lastEventID: "1"))
            #expect(try await tab2.nextEvent() == ServerSentEvent(type: "dm", data: "psst", lastEventID: "1"))
            // Bob's next event is the following broadcast: the targeted one never reached him.
            _ = try await server.request(.POST, "/broadcast", body: "everyone")
            #expect(try await bob.nextEvent() == ServerSentEvent(data: "everyone", lastEventID: "2"))
        }
    }

    @Test func emptyBody_isAnEventWithEmptyData() async throws {
        try await TestServer.with { server in
            var reader = try await server.connectedReader()
            #expect(try await server.request(.POST, "/broadcast?type=ping").status == .accepted)
            #expect(try await reader.nextEvent() == ServerSentEvent(type: "ping", data: "", lastEventID: "1"))
        }
    }

    @Test func multiLineAndUnicodeData_arriveIntact() async throws {
        let payloads = ["a\r\nb", "a\rb", "line\n\nblank", "trailing\n", "日本語 🎉 ünï", " leading space", "data: fake\nid: 666"]
        try await TestServer.with { server in
            var reader = try await server.connectedReader()
            let publisher = try await server.publisher()
            for payload in payloads {
                #expect(try await publisher.post("/broadcast", body: payload).status == .accepted)
            }
            let received = try await reader.data(payloads.count)
            // Clients normalise every line end to LF.
            #expect(received == payloads.map { $0.replacing("\r\n", with: "\n").replacing("\r", with: "\n") })
            await publisher.close()
        }
    }

    @Test func unknownClientID_is404() async throws {
        try await TestServer.with { server in
            let response = try await server.request(.POST, "/broadcast?id=ghost", body: "x")
            #expect(response.status == .notFound)
            #expect(response.text == "404 Not Found: no client is connected with id \"ghost\"\n")
        }
    }

    @Test(arguments: [
        ("/broadcast?type=a%0Aid:%205", "invalid event type: it contains the control character U+000A at position 2 (a line break would inject SSE fields)"),
        ("/broadcast?type=a%0Db", "invalid event type: it contains the control character U+000D at position 2 (a line break would inject SSE fields)"),
        ("/broadcast?type=a%00b", "invalid event type: it contains the control character U+0000 at position 2"),
        ("/broadcast?id=a%0Ab", "invalid client id: it contains the control character U+000A at position 2 (a line break would inject SSE fields)"),
        ("/broadcast?id=a%20b", "invalid client id: it contains whitespace (U+0020) at position 2"),
        ("/broadcast?id=", "invalid client id: it is empty"),
        ("/broadcast?type=%zz", "malformed percent-escape in query string near \"%zz\""),
        ("/broadcast?id=a&id=b", "query parameter \"id\" is given more than once"),
    ])
    func badParameters_are400_andNothingIsSent(uri: String, message: String) async throws {
        try await TestServer.with { server in
            var reader = try await server.connectedReader("/connect?id=a")
            let response = try await server.request(.POST, uri, body: "x")
            #expect(response.status == .badRequest)
            #expect(response.text == "400 Bad Request: \(message)\n")
            #expect(server.broker.lastEventID == 0)
            // The subscriber saw nothing: its next event is the next valid one, id 1.
            _ = try await server.request(.POST, "/broadcast", body: "valid")
            #expect(try await reader.nextEvent() == ServerSentEvent(data: "valid", lastEventID: "1"))
        }
    }

    @Test func connect_withInvalidID_is400() async throws {
        try await TestServer.with { server in
            let response = try await server.request(.GET, "/connect?id=a%0Ab")
            #expect(response.status == .badRequest)
            #expect(server.broker.clients.isEmpty)
        }
    }

    @Test func invalidUTF8Body_is400() async throws {
        try await TestServer.with { server in
            let connection = try await server.publisher()
            let response = try await connection.send(.POST, "/broadcast", body: ByteBuffer(bytes: [0x68, 0xFF, 0xFE]))
            #expect(response.status == .badRequest)
            #expect(response.text == "400 Bad Request: request body is not valid UTF-8 (server-sent event streams are UTF-8)\n")
            // The connection stays usable for the next request.
            #expect(try await connection.post("/broadcast", body: "ok").status == .accepted)
            await connection.close()
        }
    }

    @Test func declaredBodyOverLimit_is413_beforeReadingIt() async throws {
        try await TestServer.with(BrokerConfiguration(maxBodyBytes: 16, eventIDSeed: .after(0), retryJitter: 0)) { server in
            let connection = try await server.publisher()
            let response = try await connection.post("/broadcast", body: String(repeating: "x", count: 17))
            #expect(response.status == .payloadTooLarge)
            #expect(response.headers.first(name: "connection") == "close")
            #expect(response.text == "413 Content Too Large: request body is larger than the limit of 16 bytes\n")
            #expect(server.broker.lastEventID == 0)
            try await connection.closeFutureForTesting.get()
        }
    }

    @Test func chunkedBodyOverLimit_is413() async throws {
        try await TestServer.with(BrokerConfiguration(maxBodyBytes: 16, eventIDSeed: .after(0), retryJitter: 0)) { server in
            let connection = try await server.publisher()
            let response = try await connection.send(
                .POST,
                "/broadcast",
                headers: ["Transfer-Encoding": "chunked"],
                body: ByteBuffer(string: String(repeating: "y", count: 100))
            )
            #expect(response.status == .payloadTooLarge)
            #expect(server.broker.lastEventID == 0)
        }
    }

    @Test func bodyAtLimit_isAccepted() async throws {
        try await TestServer.with(BrokerConfiguration(maxBodyBytes: 16, eventIDSeed: .after(0), retryJitter: 0)) { server in
            let response = try await server.request(.POST, "/broadcast", body: String(repeating: "x", count: 16))
            #expect(response.status == .accepted)
        }
    }

    @Test func wrongMethod_is405_withAllow() async throws {
        try await TestServer.with { server in
            let get = try await server.request(.GET, "/broadcast")
            #expect(get.status == .methodNotAllowed)
            #expect(get.headers.first(name: "allow") == "POST")
            #expect(get.text == "405 Method Not Allowed: method GET is not allowed here; use POST\n")
            let post = try await server.request(.POST, "/connect", body: "x")
            #expect(post.status == .methodNotAllowed)
            #expect(post.headers.first(name: "allow") == "GET")
        }
    }

    @Test func unknownPath_is404() async throws {
        try await TestServer.with { server in
            let response = try await server.request(.GET, "/nope?x=1")
            #expect(response.status == .notFound)
            #expect(response.text == "404 Not Found: no endpoint at /nope\n")
        }
    }

    @Test func malformedHTTP_is400() async throws {
        try await TestServer.with { server in
            let connection = try await server.publisher()
            let response = try await connection.send(.POST, "/broadcast", headers: ["Content-Length": "abc"], body: nil)
            #expect(response.status == .badRequest)
            #expect(response.text.hasPrefix("400 Bad Request: malformed HTTP request"))
        }
    }

    @Test func customErrorHandler_shapesEveryError() async throws {
        let configuration = BrokerConfiguration(errorHandler: { request, status, error in
            HTTPErrorResponse(
                status: status,
                headerFields: [.contentType: "application/json"],
                body: ByteBuffer(string: "{\"status\":\(status.code),\"path\":\"\(request.path ?? "")\",\"error\":\"\(error)\"}")
            )
        })
        try await TestServer.with(configuration) { server in
            let response = try await server.request(.POST, "/broadcast?id=ghost", body: "x")
            #expect(response.status == .notFound)
            #expect(response.headers.first(name: "content-type") == "application/json")
            #expect(response.text == "{\"status\":404,\"path\":\"/broadcast?id=ghost\",\"error\":\"no client is connected with id \"ghost\"\"}")
            let wrongMethod = try await server.request(.DELETE, "/broadcast")
            #expect(wrongMethod.status == .methodNotAllowed)
            #expect(wrongMethod.headers.first(name: "allow") == "POST")  // added even though the handler did not
        }
    }

    @Test func expectContinue_getsAnInterimResponse() async throws {
        try await TestServer.with { server in
            let response = try await server.request(.POST, "/broadcast", body: "x", headers: ["Expect": "100-continue"])
            #expect(response.status == .accepted)
        }
    }

    @Test func bannedID_gets204() async throws {
        try await TestServer.with { server in
            try server.broker.ban("mallory")
            let client = try await server.subscribe("/connect?id=mallory")
            #expect(client.status == .noContent)
            #expect(server.broker.clients.isEmpty)
        }
    }
}

extension HTTPClientConnection {
    var closeFutureForTesting: EventLoopFuture<Void> { self.closeFuture }
}
