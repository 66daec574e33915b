import Foundation
import NIOCore
import NIOHTTP1
import SSEBroker
@testable import SSEBrokerServer
import SSEClient
import SSETestSupport
import Testing

let publisherSecret = "a-publisher-secret-of-at-least-32-bytes"

/// The `topics` claim of subscriber tokens, and publisher tokens with a `publish` claim.
@Suite(.timeLimit(.minutes(1)))
struct TopicAuthTests {
    let subscribers = try! SubscriberTokenVerifier(secret: subscriberSecret)
    let publishers = try! PublisherTokenVerifier(secret: publisherSecret)

    var security: ServerSecurity {
        ServerSecurity(
            publishToken: try! PublishToken("producer-secret"),
            subscriberTokens: self.subscribers,
            publisherTokens: self.publishers
        )
    }

    func bearer(_ token: String) -> HTTPHeaders { ["Authorization": "Bearer \(token)"] }
    var producer: HTTPHeaders { self.bearer("producer-secret") }

    func token(_ subject: String, topics: [String]?) throws -> HTTPHeaders {
        self.bearer(try self.subscribers.makeToken(subject: subject, topics: topics))
    }

    // MARK: Subscribers

    @Test func topicsClaim_allowsRequestedTopicsItCovers() async throws {
        try await TestServer.with(security: self.security) { server in
            let headers = try self.token("alice", topics: ["price", "orders.*"])
            var reader = try await server.connectedReader("/connect?topic=price&topic=orders.eu&topic=orders.*", headers: headers)
            for type in ["chat", "price", "orders.eu", "orders.us"] {
                let response = try await server.request(.POST, "/broadcast?type=\(type)", body: type, headers: self.producer)
                #expect(response.status == .accepted)
            }
            #expect(try await reader.data(3) == ["price", "orders.eu", "orders.us"])
        }
    }

    @Test(arguments: [
        ("topic=chat", "the token does not allow topic \"chat\""),
        ("topic=price&topic=chat", "the token does not allow topic \"chat\""),
        ("topic=orders.eu.*", "the token does not allow topic \"orders.eu.*\""),
        ("topic=*", "the token does not allow topic \"*\""),
        ("topic=pri*", "the token does not allow topic \"pri*\""),
    ])
    func topicsClaim_refusesOtherTopics_with403_andRegistersNothing(query: String, message: String) async throws {
        try await TestServer.with(security: self.security) { server in
            let response = try await server.request(.GET, "/connect?\(query)", headers: try self.token("alice", topics: ["price", "orders.*"]))
            #expect(response.status == .forbidden)
            #expect(response.text == "403 Forbidden: \(message)\n")
            #expect(server.broker.clients.isEmpty)
            #expect(server.broker.statistics.connectionsAccepted == 0)
        }
    }

    @Test func topicsClaim_noRequestedTopic_getsExactlyTheClaimsTopics() async throws {
        try await TestServer.with(security: self.security) { server in
            var reader = try await server.connectedReader("/connect", headers: try self.token("alice", topics: ["price", "orders.*"]))
            #expect(server.broker.clients.first?.topics == ["orders.*", "price"])
            for type in ["chat", "price", "", "orders.eu"] {
                _ = try await server.request(.POST, "/broadcast?type=\(type)", body: type.isEmpty ? "untyped" : type, headers: self.producer)
            }
            #expect(try await reader.data(2) == ["price", "orders.eu"])
        }
    }

    @Test func topicsClaim_star_allowsAnyPattern_andAnEmptyClaimAllowsNothing() async throws {
        try await TestServer.with(security: self.security) { server in
            _ = try await server.connectedReader("/connect?topic=a.*&topic=b", headers: try self.token("alice", topics: ["*"]))
            #expect(server.broker.clients.first?.topics == ["a.*", "b"])
            let empty = try await server.request(.GET, "/connect", headers: try self.token("bob", topics: []))
            #expect(empty.status == .forbidden)
            #expect(empty.text == "403 Forbidden: the token allows no topic (its \"topics\" claim is empty)\n")
        }
    }

    @Test func tokenWithoutTopicsClaim_keepsTodaysBehaviour() async throws {
        try await TestServer.with(security: self.security) { server in
            _ = try await server.connectedReader("/connect?topic=anything.*", headers: try self.token("alice", topics: nil))
            _ = try await server.connectedReader("/connect", headers: try self.token("bob", topics: nil))
            #expect(server.broker.clients(withID: "alice").first?.topics == ["anything.*"])
            #expect(server.broker.clients(withID: "bob").first?.topics == [])
        }
    }

    @Test func topicsClaim_withAnInvalidTopic_is401() async throws {
        try await TestServer.with(security: self.security) { server in
            let response = try await server.request(.GET, "/connect", headers: try self.token("alice", topics: ["ok", "bad\nline"]))
            #expect(response.status == .unauthorized)
            #expect(response.text == "401 Unauthorized: malformed token: the \"topics\" claim has an invalid topic \"badU+000Aline\"\n")
        }
    }

    // MARK: Publishers

    @Test func publisherToken_publishesTheTypesOfItsClaim() async throws {
        try await TestServer.with(security: self.security) { server in
            var reader = try await server.connectedReader("/connect?id=alice", headers: try self.token("alice", topics: nil))
            let token = try self.publishers.makeToken(publish: ["price", "orders.*", "message"], subject: "feed")
            for (query, body) in [("?type=price", "1"), ("?type=orders.eu", "2"), ("", "3"), ("?type=message", "4")] {
                let response = try await server.request(.POST, "/broadcast\(query)", body: body, headers: self.bearer(token))
                #expect(response.status == .accepted)
            }
            #expect(try await reader.data(4) == ["1", "2", "3", "4"])
        }
    }

    @Test(arguments: [
        ("?type=chat", "the publisher token does not allow publishing events of type \"chat\""),
        ("?type=orders", "the publisher token does not allow publishing events of type \"orders\""),
        ("", "the publisher token does not allow publishing events of type \"message\""),
        ("?type=price&id=alice", nil),
        ("?type=chat&id=alice", "the publisher token does not allow publishing events of type \"chat\""),
    ])
    func publisherToken_otherType_is403_andNothingIsPublished(query: String, message: String?) async throws {
        try await TestServer.with(security: self.security) { server in
            var reader = try await server.connectedReader("/connect?id=alice", headers: try self.token("alice", topics: nil))
            let token = try self.publishers.makeToken(publish: ["price", "orders.*"])
            let response = try await server.request(.POST, "/broadcast\(query)", body: "x", headers: self.bearer(token))
            guard let message else {
                #expect(response.status == .accepted)
                #expect(try await reader.nextEvent().data == "x")
                return
            }
            #expect(response.status == .forbidden)
            #expect(response.text == "403 Forbidden: \(message)\n")
            #expect(server.broker.lastEventID == 0)
            #expect(server.broker.statistics.published == 0)
            // Alice's next event is the next allowed one.
            _ = try await server.request(.POST, "/broadcast?type=price", body: "ok", headers: self.bearer(token))
            #expect(try await reader.nextEvent() == ServerSentEvent(type: "price", data: "ok", lastEventID: "1"))
        }
    }

    static let badPublisherTokens: [(String, String)] = {
        let publishers = try! PublisherTokenVerifier(secret: publisherSecret)
        let subscribers = try! SubscriberTokenVerifier(secret: subscriberSecret)
        let good = try! publishers.makeToken(publish: ["price"])
        let parts = good.split(separator: ".").map(String.init)
        let noneHeader = Base64URLForTests.encode(#"{"alg":"none","typ":"JWT"}"#)
        let forgedClaims = Base64URLForTests.encode(#"{"publish":["*"]}"#)
        let future = Date(timeIntervalSince1970: 4_102_444_800)
        return [
            // A subscriber token is no publisher token: another secret.
            (try! subscribers.makeToken(subject: "alice"), "the token's signature does not match"),
            ("\(noneHeader).\(parts[1]).", "unsupported token algorithm \"none\" (only HS256 is accepted)"),
            ("\(parts[0]).\(forgedClaims).\(parts[2])", "the token's signature does not match"),
            (
                try! publishers.makeToken(publish: ["price"], expiresAt: Date(timeIntervalSince1970: 1_700_000_000)),
                "the token expired at 2023-11-14T22:13:20Z"
            ),
            (
                Self.sign(NotBefore(publish: ["price"], nbf: 4_102_444_800)),
                "the token is not valid before \(future.formatted(.iso8601))"
            ),
            (Self.sign(SubjectOnly(sub: "feed")), "malformed token: the token has no \"publish\" claim (the types it may publish)"),
            (Self.sign(PublishString(publish: "price")), "malformed token: the claims are not a JSON object with an array of strings \"publish\", numeric \"exp\"/\"nbf\" and a string \"sub\""),
            ("not.a-jwt", "malformed token: a JWT has three dot-separated parts, this one has 2"),
            ("wrong-shared-token", "the bearer token is not valid for publishing"),
        ]
    }()

    struct NotBefore: Encodable {
        var publish: [String]
        var nbf: Int
    }
    struct SubjectOnly: Encodable { var sub: String }
    struct PublishString: Encodable { var publish: String }

    /// A token over claims the minting API does not make, signed under the publisher secret.
    static func sign(_ claims: some Encodable) -> String {
        try! HS256Token(secret: Array(publisherSecret.utf8), purpose: "test").sign(claims)
    }

    @Test(arguments: badPublisherTokens)
    func publisherToken_bad_is401_andNothingIsPublished(token: String, message: String) async throws {
        try await TestServer.with(security: self.security) { server in
            let response = try await server.request(.POST, "/broadcast?type=price", body: "x", headers: self.bearer(token))
            #expect(response.status == .unauthorized)
            #expect(response.headers.first(name: "www-authenticate") == #"Bearer realm="sse-broker", error="invalid_token""#)
            #expect(response.text == "401 Unauthorized: \(message)\n")
            #expect(server.broker.lastEventID == 0)
        }
    }

    @Test func publisherTokensAlone_requireAToken_andTheSharedTokenStillPublishesAnything() async throws {
        try await TestServer.with(security: ServerSecurity(publisherTokens: self.publishers)) { server in
            let none = try await server.request(.POST, "/broadcast?type=price", body: "x")
            #expect(none.status == .unauthorized)
            #expect(server.broker.lastEventID == 0)
        }
        try await TestServer.with(security: self.security) { server in
            let shared = try await server.request(.POST, "/broadcast?type=anything", body: "x", headers: self.producer)
            #expect(shared.status == .accepted)
        }
    }

    @Test func publisherSecret_mustBe32Bytes() {
        #expect(throws: BrokerError.invalidConfiguration("the publisher token secret is 5 bytes; HS256 needs at least 32 (256 bits)")) {
            try PublisherTokenVerifier(secret: "short")
        }
    }
}
