import NIOCore
import NIOHTTP1
import NIOPosix
import SSEBroker
import SSEBrokerServer
import SSEClient
import Testing

/// `POST /broadcast` with an `Idempotency-Key`: a retry gets the first answer and publishes nothing.
@Suite struct IdempotencyTests {
    static func key(_ key: String) -> HTTPHeaders { ["Idempotency-Key": key] }

    @Test func retry_getsTheSameIDAndDelivered_andPublishesNothing() async throws {
        try await TestServer.with { server in
            var reader = try await server.connectedReader("/connect?id=alice")
            let first = try await server.request(.POST, "/broadcast?type=t", body: "hello", headers: Self.key("order-1"))
            let retry = try await server.request(.POST, "/broadcast?type=t", body: "hello", headers: Self.key("order-1"))
            #expect(first.status == .accepted && retry.status == .accepted)
            #expect(first.text == #"{"id":"1","delivered":1}"# + "\n")
            #expect(retry.text == first.text)
            #expect(first.headers.first(name: "idempotent-replayed") == nil)
            #expect(retry.headers.first(name: "idempotent-replayed") == "true")
            #expect(server.broker.lastEventID == 1)
            #expect(server.broker.statistics.published == 1)
            // The subscriber got it once: the next event it sees is the next publish.
            _ = try await server.request(.POST, "/broadcast", body: "next")
            #expect(try await reader.nextEvent().data == "hello")
            #expect(try await reader.nextEvent().data == "next")
            await reader.client.close()
        }
    }

    @Test func sameKey_differentRequest_is422_andPublishesNothing() async throws {
        try await TestServer.with { server in
            _ = try await server.request(.POST, "/broadcast?type=t", body: "hello", headers: Self.key("k"))
            for (uri, body) in [("/broadcast?type=t", "other body"), ("/broadcast?type=u", "hello"), ("/broadcast", "hello")] {
                let response = try await server.request(.POST, uri, body: body, headers: Self.key("k"))
                #expect(response.status == .unprocessableEntity)
                #expect(response.text.contains(#"the Idempotency-Key "k" was already used with a different request"#))
            }
            // Spelling the same request differently is still the same request.
            let same = try await server.request(.POST, "/broadcast?type=t&", body: "hello", headers: Self.key("k"))
            #expect(same.status == .accepted)
            #expect(server.broker.lastEventID == 1)
        }
    }

    @Test func invalidKeys_are400() async throws {
        try await TestServer.with { server in
            for value in ["", String(repeating: "k", count: 256), "caf\u{E9}", "tab\there"] {
                let response = try await server.request(.POST, "/broadcast", body: "x", headers: Self.key(value))
                #expect(response.status == .badRequest, "\(value)")
                #expect(response.text.contains("Idempotency-Key"))
            }
            var two = HTTPHeaders()
            two.add(name: "Idempotency-Key", value: "a")
            two.add(name: "Idempotency-Key", value: "b")
            #expect(try await server.request(.POST, "/broadcast", body: "x", headers: two).status == .badRequest)
            // A quoted key (the draft's sf-string) and the longest allowed one are fine.
            #expect(try await server.request(.POST, "/broadcast", body: "x", headers: Self.key("\"q\"")).status == .accepted)
            let longest = String(repeating: "k", count: 255)
            #expect(try await server.request(.POST, "/broadcast", body: "x", headers: Self.key(longest)).status == .accepted)
            #expect(server.broker.lastEventID == 2)
        }
    }

    @Test func concurrentDuplicates_publishOnce_andAllGetTheSameAnswer() async throws {
        try await TestServer.with { server in
            let port = server.port
            let responses = try await withThrowingTaskGroup(of: HTTPClientResponse.self) { group in
                for _ in 0..<16 {
                    group.addTask {
                        let connection = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
                        defer { Task { await connection.close() } }
                        return try await connection.post("/broadcast", body: "once", headers: Self.key("burst"))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(responses.allSatisfy { $0.status == .accepted && $0.text == #"{"id":"1","delivered":0}"# + "\n" })
            #expect(responses.filter { $0.headers.first(name: "idempotent-replayed") == nil }.count == 1)
            #expect(server.broker.lastEventID == 1)
        }
    }

    @Test func failedPublish_isNotRemembered_soTheRetryPublishes() async throws {
        try await TestServer.with { server in
            let missing = try await server.request(.POST, "/broadcast?id=alice", body: "hi", headers: Self.key("k"))
            #expect(missing.status == .notFound)
            var alice = try await server.connectedReader("/connect?id=alice")
            let retry = try await server.request(.POST, "/broadcast?id=alice", body: "hi", headers: Self.key("k"))
            #expect(retry.status == .accepted)
            #expect(retry.headers.first(name: "idempotent-replayed") == nil)
            #expect(try await alice.nextEvent().data == "hi")
            await alice.client.close()
        }
    }

    @Test func withoutAKey_everyRequestPublishes() async throws {
        try await TestServer.with { server in
            _ = try await server.request(.POST, "/broadcast", body: "same")
            _ = try await server.request(.POST, "/broadcast", body: "same")
            #expect(server.broker.lastEventID == 2)
        }
    }

    // MARK: The store itself

    static let loop = MultiThreadedEventLoopGroup.singleton.any()

    @Test func store_forgetsTheOldestPastItsCapacity() throws {
        let store = try IdempotencyStore(capacity: 2)
        for (index, name) in ["a", "b", "c"].enumerated() {
            let key = IdempotencyKey(key: name, fingerprint: "f")
            guard case .proceed = store.begin(key, on: Self.loop) else { Issue.record("\(name) not new"); return }
            store.finish(key, with: .success(Delivery(eventID: UInt64(index + 1), recipients: 0)))
        }
        #expect(store.count == 2)
        guard case .replay(let c) = store.begin(IdempotencyKey(key: "c", fingerprint: "f"), on: Self.loop) else {
            Issue.record("c forgotten")
            return
        }
        #expect(c.eventID == 3)
        guard case .proceed = store.begin(IdempotencyKey(key: "a", fingerprint: "f"), on: Self.loop) else {
            Issue.record("a still remembered")
            return
        }
    }

    @Test func store_forgetsKeysPastTheWindow() async throws {
        let store = try IdempotencyStore(window: .milliseconds(1))
        let key = IdempotencyKey(key: "a", fingerprint: "f")
        guard case .proceed = store.begin(key, on: Self.loop) else { Issue.record("not new"); return }
        store.finish(key, with: .success(Delivery(eventID: 1, recipients: 0)))
        // The only way to let a window pass is to wait for it.
        try await Task.sleep(for: .milliseconds(20))
        guard case .proceed = store.begin(key, on: Self.loop) else { Issue.record("still remembered"); return }
    }

    @Test func store_rejectsABadConfiguration() {
        #expect(throws: BrokerError.self) { try IdempotencyStore(window: .zero) }
        #expect(throws: BrokerError.self) { try IdempotencyStore(capacity: 0) }
    }

    @Test func fingerprint_dependsOnTypeTargetAndBody_only() {
        let body = ByteBuffer(string: "x")
        let base = IdempotencyStore.fingerprint(of: BroadcastRequest(type: "t", clientID: "a"), body: body)
        #expect(base == IdempotencyStore.fingerprint(of: BroadcastRequest(type: "t", clientID: "a"), body: ByteBuffer(string: "x")))
        #expect(base != IdempotencyStore.fingerprint(of: BroadcastRequest(type: "t", clientID: "b"), body: body))
        #expect(base != IdempotencyStore.fingerprint(of: BroadcastRequest(type: "u", clientID: "a"), body: body))
        #expect(base != IdempotencyStore.fingerprint(of: BroadcastRequest(type: "t", clientID: "a"), body: ByteBuffer(string: "y")))
        #expect(base.count == 64)
    }
}
