import NIOCore
import NIOHTTP1
import SSEBroker
import SSEBrokerServer
import SSEClient
import Testing

@Suite(.timeLimit(.minutes(1)))
struct CORSTests {
    let explicit = ServerSecurity(cors: try! CORSPolicy(allowedOrigins: ["https://app.example.com", "http://localhost:3000/"]))
    let wildcard = ServerSecurity(cors: try! CORSPolicy(allowedOrigins: ["*"]))

    @Test func preflight_forBroadcast_allowsTheMethodAndHeaders() async throws {
        try await TestServer.with(security: self.explicit) { server in
            let response = try await server.request(
                .OPTIONS,
                "/broadcast",
                headers: [
                    "Origin": "https://app.example.com",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type",
                ]
            )
            #expect(response.status == .noContent)
            #expect(response.headers.first(name: "access-control-allow-origin") == "https://app.example.com")
            #expect(response.headers.first(name: "access-control-allow-credentials") == "true")
            #expect(response.headers.first(name: "access-control-allow-methods") == "POST, OPTIONS")
            #expect(response.headers.first(name: "access-control-allow-headers") == "Authorization, Content-Type, Last-Event-ID, Idempotency-Key")
            #expect(response.headers.first(name: "access-control-max-age") == "600")
            #expect(response.headers.first(name: "vary") == "Origin")
            #expect(server.broker.lastEventID == 0)
        }
    }

    @Test func preflight_fromAnotherOrigin_is403() async throws {
        try await TestServer.with(security: self.explicit) { server in
            let response = try await server.request(
                .OPTIONS,
                "/broadcast",
                headers: ["Origin": "https://evil.example", "Access-Control-Request-Method": "POST"]
            )
            #expect(response.status == .forbidden)
            #expect(response.text == "403 Forbidden: origin https://evil.example is not allowed\n")
            #expect(response.headers.first(name: "access-control-allow-origin") == nil)
        }
    }

    @Test func broadcast_fromAnAllowedOrigin_carriesTheHeaders_andOtherOriginsAre403() async throws {
        try await TestServer.with(security: self.explicit) { server in
            var reader = try await server.connectedReader()
            let allowed = try await server.request(.POST, "/broadcast", body: "hi", headers: ["Origin": "http://localhost:3000"])
            #expect(allowed.status == .accepted)
            #expect(allowed.headers.first(name: "access-control-allow-origin") == "http://localhost:3000")
            #expect(allowed.headers.first(name: "access-control-allow-credentials") == "true")
            let refused = try await server.request(.POST, "/broadcast", body: "forged", headers: ["Origin": "https://evil.example"])
            #expect(refused.status == .forbidden)
            #expect(refused.headers.first(name: "connection") == "close")
            #expect(try await reader.nextEvent() == ServerSentEvent(data: "hi", lastEventID: "1"))
            #expect(server.broker.lastEventID == 1)
        }
    }

    @Test func stream_forAnAllowedOrigin_carriesTheHeaders() async throws {
        try await TestServer.with(security: self.explicit) { server in
            let client = try await server.subscribe("/connect?id=a", headers: ["Origin": "https://app.example.com"])
            #expect(client.status == .ok)
            #expect(client.headers.first(name: "access-control-allow-origin") == "https://app.example.com")
            #expect(client.headers.first(name: "access-control-expose-headers") == "X-SSE-Client-ID, Retry-After, WWW-Authenticate, Idempotent-Replayed")
            let refused = try await server.request(.GET, "/connect?id=b", headers: ["Origin": "https://evil.example"])
            #expect(refused.status == .forbidden)
            #expect(server.broker.clients.map(\.clientID) == ["a"])
        }
    }

    @Test func wildcard_answersStar_neverWithCredentials() async throws {
        try await TestServer.with(security: self.wildcard) { server in
            let response = try await server.request(.POST, "/broadcast", body: "x", headers: ["Origin": "https://anywhere.example"])
            #expect(response.status == .accepted)
            #expect(response.headers.first(name: "access-control-allow-origin") == "*")
            #expect(response.headers.first(name: "access-control-allow-credentials") == nil)
            #expect(response.headers.first(name: "vary") == nil)
            let preflight = try await server.request(.OPTIONS, "/connect", headers: ["Origin": "https://x.example"])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers.first(name: "access-control-allow-methods") == "GET, OPTIONS")
        }
    }

    @Test func withoutCORS_optionsIs405_andNoHeadersAreSent() async throws {
        try await TestServer.with { server in
            let options = try await server.request(.OPTIONS, "/broadcast", headers: ["Origin": "https://app.example.com"])
            #expect(options.status == .methodNotAllowed)
            #expect(options.headers.first(name: "allow") == "POST")
            let post = try await server.request(.POST, "/broadcast", body: "x", headers: ["Origin": "https://app.example.com"])
            #expect(post.status == .accepted)
            #expect(post.headers.first(name: "access-control-allow-origin") == nil)
        }
    }

    @Test func policy_validatesItsOrigins() {
        #expect(throws: BrokerError.invalidConfiguration("CORS origin \"*\" cannot be combined with others")) {
            try CORSPolicy(allowedOrigins: ["*", "https://a.example"])
        }
        #expect(throws: BrokerError.invalidConfiguration("CORS origin \"app.example.com\" is not of the form scheme://host[:port]")) {
            try CORSPolicy(allowedOrigins: ["app.example.com"])
        }
        #expect(throws: BrokerError.invalidConfiguration("CORS origin \"https://a.example/path\" is not of the form scheme://host[:port]")) {
            try CORSPolicy(allowedOrigins: ["https://a.example/path"])
        }
        #expect((try? CORSPolicy(allowedOrigins: ["*"]))?.allowsCredentials == false)
        #expect((try? CORSPolicy(allowedOrigins: ["HTTPS://A.example"]))?.allows("https://a.example") == true)
    }
}
