import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import NIOCore
import NIOHTTP1
import SSEBroker
import SSEBrokerHummingbird
import SSEBrokerServer
import SSEClient
import SSETestSupport
import Testing

/// `ServerSecurity` on the Hummingbird mount, as the embedded server applies it.
@Suite struct HummingbirdSecurityTests {
    static let secret = "a-subscriber-secret-of-at-least-32-bytes"

    @Test func publishToken_isRequired_andAWrongOneIsRefused() async throws {
        let security = ServerSecurity(publishToken: try PublishToken("s3cret"))
        try await MountedBroker.with(security: security) { app in
            let missing = try await app.client.execute(uri: "/publish", method: .post, body: ByteBuffer(string: "x"))
            #expect(missing.status == .unauthorized)
            #expect(missing.headers[.wwwAuthenticate] == #"Bearer realm="sse-broker""#)
            let wrong = try await app.client.execute(
                uri: "/publish", method: .post, headers: [.authorization: "Bearer nope"], body: ByteBuffer(string: "x"))
            #expect(wrong.status == .unauthorized)
            #expect(wrong.headers[.wwwAuthenticate] == #"Bearer realm="sse-broker", error="invalid_token""#)
            #expect(app.broker.lastEventID == 0)
            let good = try await app.client.execute(
                uri: "/publish", method: .post, headers: [.authorization: "Bearer s3cret"], body: ByteBuffer(string: "x"))
            #expect(good.status == .accepted)
            #expect(app.broker.lastEventID == 1)
            #expect(app.broker.statistics.refusals[401] == 2)
        }
    }

    @Test func subscriberTokens_areRequired_andTheSubjectIsTheClientID() async throws {
        let verifier = try SubscriberTokenVerifier(secret: Self.secret)
        try await MountedBroker.with(security: ServerSecurity(subscriberTokens: verifier)) { app in
            let anonymous = try await app.client.execute(uri: "/events", method: .get)
            #expect(anonymous.status == .unauthorized)
            let token = try verifier.makeToken(subject: "alice")
            let other = try await app.client.execute(
                uri: "/events?id=bob", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(other.status == .forbidden)
            let forged = try await app.client.execute(uri: "/events?token=\(token)x", method: .get)
            #expect(forged.status == .unauthorized)
            let reader = try await app.subscribe("/events?token=\(token)")
            #expect(reader.client.headers.first(name: "x-sse-client-id") == "alice")
            #expect(app.broker.clients.map(\.clientID) == ["alice"])
            await reader.client.close()
        }
    }

    @Test func topics_filter_andTheTopicsClaimLimitsThem() async throws {
        let verifier = try SubscriberTokenVerifier(secret: Self.secret)
        try await MountedBroker.with(security: ServerSecurity(subscriberTokens: verifier)) { app in
            let token = try verifier.makeToken(subject: "alice", topics: ["price", "orders.*"])
            let refused = try await app.client.execute(
                uri: "/events?topic=chat", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(refused.status == .forbidden)
            #expect(String(buffer: refused.body) == "403 Forbidden: the token does not allow topic \"chat\"\n")
            let bad = try await app.client.execute(uri: "/events?topic=&token=\(token)", method: .get)
            #expect(bad.status == .badRequest)
            var reader = try await app.subscribe("/events?token=\(token)")
            #expect(app.broker.clients.map(\.topics) == [["orders.*", "price"]])
            for type in ["chat", "price", "orders.eu"] {
                try app.broker.broadcast(Event(type: type, data: type))
            }
            #expect(try await reader.data(2) == ["price", "orders.eu"])
            await reader.client.close()
        }
    }

    @Test func publisherTokens_publishOnlyTheirTypes() async throws {
        let publishers = try PublisherTokenVerifier(secret: Self.secret)
        try await MountedBroker.with(security: ServerSecurity(publisherTokens: publishers)) { app in
            let token = try publishers.makeToken(publish: ["price"])
            let refused = try await app.client.execute(
                uri: "/publish?type=chat",
                method: .post,
                headers: [.authorization: "Bearer \(token)"],
                body: ByteBuffer(string: "x")
            )
            #expect(refused.status == .forbidden)
            #expect(app.broker.lastEventID == 0)
            let good = try await app.client.execute(
                uri: "/publish?type=price",
                method: .post,
                headers: [.authorization: "Bearer \(token)"],
                body: ByteBuffer(string: "x")
            )
            #expect(good.status == .accepted)
            #expect(app.broker.lastEventID == 1)
        }
    }

    @Test func expiringToken_closesTheStream() async throws {
        let verifier = try SubscriberTokenVerifier(secret: Self.secret)
        try await MountedBroker.with(security: ServerSecurity(subscriberTokens: verifier)) { app in
            // `exp` has one-second resolution: 9 to 10 s, time enough to connect under a sanitizer
            // with the whole suite running.
            let activity = app.broker.activity()
            let token = try verifier.makeToken(subject: "alice", expiresAt: Date() + 10)
            var reader = try await app.subscribe("/events", headers: ["Authorization": "Bearer \(token)"])
            let rest = await reader.untilEnd()
            #expect(rest.contains { if case .comment("token expired") = $0 { true } else { false } })
            // The client may see the close before the broker has recorded it: wait for the record.
            for await change in activity {
                guard case .disconnected(let client, let reason) = change else { continue }
                #expect(client.clientID == "alice")
                #expect(reason == .expired)
                break
            }
        }
    }

    @Test func bannedClient_gets204() async throws {
        try await MountedBroker.with { app in
            try app.broker.ban("mallory")
            let response = try await app.client.execute(uri: "/events?id=mallory", method: .get)
            #expect(response.status == .noContent)
        }
    }

    @Test func streamLimits_apply_andSlotsComeBackWhenStreamsEnd() async throws {
        let security = ServerSecurity(limits: ServerLimits(maxClients: 1, maxConnectionsPerClientID: 1))
        let admission = AdmissionControl(limits: security.limits)
        try await MountedBroker.with(security: security, admission: admission) { app in
            var first = try await app.subscribe("/events?id=alice")
            let second = try await app.client.execute(uri: "/events?id=bob", method: .get)
            #expect(second.status == .serviceUnavailable)
            #expect(second.headers[.retryAfter] == "5")
            #expect(admission.openStreams == 1)
            try app.broker.kick("alice")
            _ = await first.untilEnd()
            // Given back by the response task or the connection's close, which announce themselves
            // to nobody: look until it is.
            for _ in 0..<500 where admission.openStreams > 0 {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(admission.openStreams == 0)
            var third = try await app.subscribe("/events?id=bob")
            #expect(admission.openStreams == 1)
            await third.client.close()
            _ = await third.untilEnd()
        }
    }

    @Test func idempotencyKey_retryGetsTheFirstAnswer_andADifferentRequestIs422() async throws {
        try await MountedBroker.with { app in
            let headers: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "k1"]
            let first = try await app.client.execute(uri: "/publish", method: .post, headers: headers, body: ByteBuffer(string: "x"))
            let retry = try await app.client.execute(uri: "/publish", method: .post, headers: headers, body: ByteBuffer(string: "x"))
            #expect(first.status == .accepted && retry.status == .accepted)
            #expect(String(buffer: retry.body) == String(buffer: first.body))
            #expect(retry.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            let other = try await app.client.execute(uri: "/publish", method: .post, headers: headers, body: ByteBuffer(string: "y"))
            #expect(other.status.code == 422)
            #expect(app.broker.lastEventID == 1)
        }
    }
}
