import HTTPTypes
import NIOCore
import NIOHTTP1
import SSEBroker
import SSEBrokerServer
import SSEClient
import Testing

/// Extra routes beside the broker's endpoints on the embedded server.
@Suite(.timeLimit(.minutes(1)))
struct HTTPRouteTests {
    @Test func extraRoutes_areServed_onKeepAliveConnections_besideTheBrokersEndpoints() async throws {
        let routes: [HTTPRoute] = [
            .get("/version") { request in .text("1.0 \(request.path ?? "")\n") },
            HTTPRoute(.delete, "/version") { _ in HTTPErrorResponse(status: .noContent) },
            .get("/connect") { _ in .text("never: the broker's paths take precedence") },
        ]
        try await TestServer.with(extraRoutes: routes) { server in
            let connection = try await server.publisher()
            let version = try await connection.send(.GET, "/version?x=1")
            #expect(version.status == .ok)
            #expect(version.text == "1.0 /version?x=1\n")
            #expect(version.headers.first(name: "content-type") == "text/plain; charset=utf-8")
            #expect(try await connection.post("/broadcast", body: "same connection").status == .accepted)
            #expect(try await connection.send(.DELETE, "/version").status == .noContent)
            let wrongMethod = try await connection.send(.PUT, "/version")
            #expect(wrongMethod.status == .methodNotAllowed)
            #expect(wrongMethod.headers.first(name: "allow") == "GET, DELETE")
            await connection.close()
            var reader = try await server.connectedReader("/connect?id=alice")
            #expect(try await reader.next() == .retry(3000))
        }
    }

    @Test func unknownPaths_stillGet404_throughTheErrorHandler_andAreCounted() async throws {
        let configuration = BrokerConfiguration(errorHandler: { _, status, error in
            HTTPErrorResponse(status: status, headerFields: [.contentType: "application/json"], body: ByteBuffer(string: #"{"error":"\#(error)"}"#))
        })
        try await TestServer.with(configuration, extraRoutes: [.browserPage("/")]) { server in
            let response = try await server.request(.GET, "/nope")
            #expect(response.status == .notFound)
            #expect(response.text == #"{"error":"no endpoint at /nope"}"#)
            #expect(server.broker.statistics.refusals == [404: 1])
        }
    }

    @Test func health_isOK_thenServiceUnavailableOnceShuttingDown() async throws {
        let broker = try Broker(configuration: .predictable, logger: quietLogger)
        let route = HTTPRoute.health("/healthz", broker: broker)
        let head = HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/healthz")
        let ok = route.handler(head)
        #expect(ok.status == .ok)
        #expect(String(buffer: ok.body) == #"{"status":"ok","clients":0,"lastEventId":"0"}"# + "\n")
        broker.shutdown()
        #expect(route.handler(head).status == .serviceUnavailable)
    }

    @Test func browserPage_isSelfContained_withTheConfiguredPaths() {
        let route = HTTPRoute.browserPage("/ui", routes: BrokerRoutes(connect: "/sse/</script>", broadcast: "/pub"))
        let page = String(buffer: route.handler(HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/ui")).body)
        #expect(page.contains(#"const CONNECT_PATH = "/sse/\u003c/script\u003e";"#))
        #expect(page.contains(#"const BROADCAST_PATH = "/pub";"#))
        #expect(page.contains("new EventSource("))
        // No external assets: nothing is loaded from another URL.
        #expect(!page.contains("src=") && !page.contains("href=") && !page.contains("@import") && !page.contains("url("))
    }
}
