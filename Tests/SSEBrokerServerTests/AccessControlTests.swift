import Foundation
import NIOCore
import NIOHTTP1
import SSEBroker
import SSEBrokerServer
import SSEClient
import SSETestSupport
import Testing

let subscriberSecret = "an-example-secret-of-at-least-32-bytes!"

/// Producers need the publish token; subscribers need a token whose subject is their id.
@Suite(.timeLimit(.minutes(1)))
struct AccessControlTests {
    let security = ServerSecurity(
        publishToken: try! PublishToken("producer-secret"),
        subscriberTokens: try! SubscriberTokenVerifier(secret: subscriberSecret)
    )
    let verifier = try! SubscriberTokenVerifier(secret: subscriberSecret)

    func bearer(_ token: String) -> HTTPHeaders { ["Authorization": "Bearer \(token)"] }

    // MARK: Producers

    @Test(arguments: [
        ("", #"Bearer realm="sse-broker""#, "publishing needs an Authorization: Bearer token"),
        ("Bearer wrong", #"Bearer realm="sse-broker", error="invalid_token""#, "the bearer token is not valid for publishing"),
        ("Bearer producer-secret-and-more", #"Bearer realm="sse-broker", error="invalid_token""#, "the bearer token is not valid for publishing"),
        ("Basic cHJvZHVjZXItc2VjcmV0", #"Bearer realm="sse-broker""#, "publishing needs an Authorization: Bearer token"),
    ])
    func publish_withoutTheToken_is401_andNobodySeesAnything(authorization: String, challenge: String, message: String) async throws {
        let headers: HTTPHeaders = authorization.isEmpty ? [:] : ["Authorization": authorization]
        try await TestServer.with(security: self.security) { server in
            var reader = try await server.connectedReader(
                "/connect?id=alice",
                headers: self.bearer(self.verifier.makeToken(subject: "alice"))
            )
            let response = try await server.request(.POST, "/broadcast?type=x", body: "forged", headers: headers)
            #expect(response.status == .unauthorized)
            #expect(response.headers.first(name: "www-authenticate") == challenge)
            #expect(response.headers.first(name: "connection") == "close")
            #expect(response.text == "401 Unauthorized: \(message)\n")
            #expect(server.broker.lastEventID == 0)
            #expect(server.broker.statistics.refusals == [401: 1])
            // Alice's next event is the next authorised one.
            let ok = try await server.request(.POST, "/broadcast", body: "real", headers: ["Authorization": "bearer producer-secret"])
            #expect(ok.status == .accepted)
            #expect(try await reader.nextEvent() == ServerSentEvent(data: "real", lastEventID: "1"))
        }
    }

    @Test func publishToken_comparesWholeSecrets() throws {
        let token = try PublishToken("s3cret")
        #expect(token.accepts("s3cret"))
        #expect(!token.accepts("s3cre"))
        #expect(!token.accepts("s3crets"))
        #expect(!token.accepts(""))
        #expect(!token.accepts("S3CRET"))
        #expect(throws: BrokerError.invalidConfiguration("the publish token is empty")) { try PublishToken("") }
        #expect(throws: BrokerError.invalidConfiguration("the publish token contains whitespace")) { try PublishToken("abc\n") }
    }

    // MARK: Subscribers

    @Test(arguments: ["header", "cookie", "query"])
    func subscribe_withAValidToken_getsTheTokensSubjectAsID(via: String) async throws {
        try await TestServer.with(security: self.security) { server in
            let token = try self.verifier.makeToken(subject: "alice", expiresAt: Date() + 3600)
            let (path, headers): (String, HTTPHeaders) =
                switch via {
                case "header": ("/connect", self.bearer(token))
                case "cookie": ("/connect?id=alice", ["Cookie": "theme=dark; sse_token=\(token)"])
                default: ("/connect?token=\(token)", [:])
                }
            let client = try await server.subscribe(path, headers: headers)
            #expect(client.status == .ok)
            #expect(client.headers.first(name: "x-sse-client-id") == "alice")
            var reader = StreamReader(client)
            #expect(try await reader.next() == .comment("connected alice"))
            let response = try await server.request(.POST, "/broadcast?id=alice", body: "for alice", headers: self.bearer("producer-secret"))
            #expect(response.status == .accepted)
            #expect(try await reader.nextEvent().data == "for alice")
        }
    }

    @Test func subscribe_withoutAToken_is401() async throws {
        try await TestServer.with(security: self.security) { server in
            let response = try await server.request(.GET, "/connect?id=alice")
            #expect(response.status == .unauthorized)
            #expect(response.headers.first(name: "www-authenticate") == #"Bearer realm="sse-broker""#)
            #expect(
                response.text
                    == "401 Unauthorized: subscribing needs a token: an Authorization: Bearer header, the sse_token cookie or the token query parameter\n"
            )
            #expect(server.broker.clients.isEmpty)
        }
    }

    static let badTokens: [(String, String)] = {
        let verifier = try! SubscriberTokenVerifier(secret: subscriberSecret)
        let other = try! SubscriberTokenVerifier(secret: "another-secret-of-at-least-32-bytes!!")
        let good = try! verifier.makeToken(subject: "alice")
        let parts = good.split(separator: ".").map(String.init)
        let noneHeader = Base64URLForTests.encode(#"{"alg":"none","typ":"JWT"}"#)
        let forgedClaims = Base64URLForTests.encode(#"{"sub":"alice","exp":4102444800}"#)
        return [
            ("not-a-jwt", "malformed token: a JWT has three dot-separated parts, this one has 1"),
            (try! other.makeToken(subject: "alice"), "the token's signature does not match"),
            ("\(noneHeader).\(parts[1]).", "unsupported token algorithm \"none\" (only HS256 is accepted)"),
            ("\(parts[0]).\(forgedClaims).\(parts[2])", "the token's signature does not match"),
            (
                try! verifier.makeToken(subject: "alice", expiresAt: Date(timeIntervalSince1970: 1_700_000_000)),
                "the token expired at 2023-11-14T22:13:20Z"
            ),
            // Signed by PyJWT with HS384: another algorithm, even under the right key, is refused.
            (
                "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.0it7mFsQZ0c5EE8PdmSzzFFvKvV5vCPdQ4vRTV3G1Vm6lfkGxQKWY6sNSPpb1nWy",
                "unsupported token algorithm \"HS384\" (only HS256 is accepted)"
            ),
        ]
    }()

    @Test(arguments: badTokens)
    func subscribe_withABadToken_is401_invalidToken(token: String, message: String) async throws {
        try await TestServer.with(security: self.security) { server in
            let response = try await server.request(.GET, "/connect", headers: self.bearer(token))
            #expect(response.status == .unauthorized)
            #expect(response.headers.first(name: "www-authenticate") == #"Bearer realm="sse-broker", error="invalid_token""#)
            #expect(response.text == "401 Unauthorized: \(message)\n")
            #expect(server.broker.clients.isEmpty)
        }
    }

    @Test func subscribe_asSomebodyElse_is403_andTheirPrivateEventsStayPrivate() async throws {
        try await TestServer.with(security: self.security) { server in
            var alice = try await server.connectedReader("/connect?id=alice", headers: self.bearer(self.verifier.makeToken(subject: "alice")))
            let mallory = try self.verifier.makeToken(subject: "mallory")
            let response = try await server.request(.GET, "/connect?id=alice", headers: self.bearer(mallory))
            #expect(response.status == .forbidden)
            #expect(response.text == "403 Forbidden: the token is for client id \"mallory\", not \"alice\"\n")
            #expect(server.broker.clients.map(\.clientID) == ["alice"])
            let dm = try await server.request(.POST, "/broadcast?id=alice", body: "private", headers: self.bearer("producer-secret"))
            #expect(dm.text == "{\"id\":\"1\",\"delivered\":1}\n")
            #expect(try await alice.nextEvent().data == "private")
        }
    }

    @Test func tokenExpiry_closesTheStream_withAComment_andReasonExpired() async throws {
        try await TestServer.with(security: self.security) { server in
            // `exp` has one-second resolution (rounded down): this one is 9 to 10 s away, time
            // enough to connect even under a sanitizer on a machine loaded by the whole suite.
            let activity = server.broker.activity()
            let token = try self.verifier.makeToken(subject: "alice", expiresAt: Date() + 10)
            var reader = try await server.connectedReader("/connect", headers: self.bearer(token))
            let rest = await reader.untilEnd()
            #expect(rest.last == .comment("token expired"))
            // The server notices the close on its own loop; its activity stream says why.
            for await change in activity {
                guard case .disconnected(let client, let reason) = change else { continue }
                #expect(reason == .expired)
                #expect(client.clientID == "alice")
                break
            }
        }
    }

    // MARK: The verifier itself

    @Test func verifier_acceptsATokenSignedByPyJWT() throws {
        // python3 -c "import jwt; print(jwt.encode({'sub':'alice','exp':4102444800,'iat':1700000000}, SECRET, algorithm='HS256'))"
        let token =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ.Kq65kTW98mcsT1UQlcH895iCED2toR78ACrTr58OI40"
        #expect(try self.verifier.verify(token) == SubscriberToken(subject: "alice", expiresAt: Date(timeIntervalSince1970: 4_102_444_800)))
    }

    @Test func verifier_refusesATokenNotYetValid() {
        // PyJWT, {'sub':'alice','nbf':4102444800}
        let token =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsIm5iZiI6NDEwMjQ0NDgwMH0.OQvxpAqLnlYUHjHupUL9Pw91yDJVKaVGkDeV1Tm8nT0"
        #expect(throws: SubscriberTokenError.notYetValid(Date(timeIntervalSince1970: 4_102_444_800))) {
            try self.verifier.verify(token)
        }
    }

    @Test func verifier_roundTrips_andRefusesInvalidSubjects() throws {
        let token = try self.verifier.makeToken(subject: "bob", expiresAt: Date(timeIntervalSince1970: 4_102_444_800))
        #expect(try self.verifier.verify(token).subject == "bob")
        #expect(throws: SubscriberTokenError.invalidSubject("invalid client id: it contains whitespace (U+0020) at position 2")) {
            try self.verifier.verify(self.verifier.makeToken(subject: "a b"))
        }
    }

    @Test func verifier_needsA256BitSecret() {
        #expect(throws: BrokerError.invalidConfiguration("the subscriber token secret is 5 bytes; HS256 needs at least 32 (256 bits)")) {
            try SubscriberTokenVerifier(secret: "short")
        }
    }
}

enum Base64URLForTests {
    static func encode(_ text: String) -> String {
        Data(text.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
