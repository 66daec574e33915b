import Foundation
import NIOCore
import NIOHTTP1
import SSEBroker
import SSEBrokerServer
import Testing

/// Several requests in one write, on a real server: one response per request, in order; nothing
/// processed after a response that closes the connection.
@Suite(.timeLimit(.minutes(1))) struct PipeliningTests {
    static func post(_ body: String, uri: String = "/broadcast", headers: String = "") -> String {
        "POST \(uri) HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\(headers)\r\n\(body)"
    }

    static let health = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    static let closing = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

    /// The status codes of the responses in `text`, in order.
    static func statuses(_ text: String) -> [String] {
        text.matches(of: /HTTP\/1\.[01] (\d{3})/).map { String($0.output.1) }
    }

    /// Sends `requests` in one write, then a closing request, and returns everything received.
    static func exchange(_ server: TestServer, _ requests: String, thenClose: Bool = true) async throws -> String {
        let raw = try await server.raw()
        try await raw.send(requests + (thenClose ? Self.closing : ""))
        return try await raw.untilClosed()
    }

    @Test func standAlone_threePublishesAndAHealthCheck_areAnsweredInOrder() async throws {
        try await TestServer.with(extraRoutes: [.health("/healthz", broker: try Broker(logger: quietLogger))]) { server in
            let text = try await Self.exchange(server, Self.post("a") + Self.post("b") + Self.post("c") + Self.health)
            #expect(Self.statuses(text) == ["202", "202", "202", "200", "200"])
            let ids = text.matches(of: /"id":"(\d+)"/).map { String($0.output.1) }
            #expect(ids == ["1", "2", "3"])
            #expect(server.broker.lastEventID == 3)
        }
    }

    @Test func refusalsInTheMiddle_400_404_413_areAnsweredInPlace_andTheRestIsProcessed() async throws {
        try await TestServer.with(BrokerConfiguration(maxBodyBytes: 8, eventIDSeed: .after(0), retryJitter: 0)) { server in
            let text = try await Self.exchange(
                server,
                Self.post("a")
                    + Self.post("b", uri: "/broadcast?type=%0A")  // 400: a line break in the type
                    + Self.post("c")
                    + "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"  // 404
                    + Self.post("d")
                    + Self.post(String(repeating: "x", count: 9))  // 413: closes
                    + Self.post("never"),
                thenClose: false
            )
            #expect(Self.statuses(text) == ["202", "400", "202", "404", "202", "413"])
            #expect(server.broker.lastEventID == 3)
            #expect(server.broker.statistics.published == 3)
        }
    }

    @Test func invalidUTF8Body_is400_andTheNextRequestIsProcessed() async throws {
        try await TestServer.with { server in
            var bytes = ByteBuffer(string: "POST /broadcast HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n")
            bytes.writeBytes([0xC3, 0x28])  // a lead byte followed by a non-continuation byte
            bytes.writeString(Self.post("ok") + Self.closing)
            let second = try await server.raw()
            try await second.send(bytes)
            let text = try await second.untilClosed()
            #expect(Self.statuses(text) == ["400", "202", "404"])
            #expect(text.contains("request body is not valid UTF-8"))
            #expect(server.broker.lastEventID == 1)
        }
    }

    @Test func withAPublishToken_a401InTheMiddle_closes_andNothingAfterItIsPublished() async throws {
        let security = ServerSecurity(publishToken: try PublishToken("s3cret"))
        try await TestServer.with(security: security) { server in
            let good = "Authorization: Bearer s3cret\r\n"
            let text = try await Self.exchange(
                server,
                Self.post("a", headers: good) + Self.post("b", headers: good) + Self.post("c") + Self.post("d", headers: good),
                thenClose: false
            )
            #expect(Self.statuses(text) == ["202", "202", "401"])
            #expect(server.broker.lastEventID == 2)
        }
    }

    @Test func connectionClose_laterRequestsAreNotProcessed() async throws {
        try await TestServer.with { server in
            let text = try await Self.exchange(
                server,
                Self.post("a") + Self.post("b", headers: "Connection: close\r\n") + Self.post("c") + Self.post("d"),
                thenClose: false
            )
            #expect(Self.statuses(text) == ["202", "202"])
            #expect(text.contains("Connection: close"))
            #expect(server.broker.lastEventID == 2)
            #expect(server.broker.statistics.published == 2)
        }
    }

    @Test func http10WithoutKeepAlive_onlyTheFirstRequestIsProcessed() async throws {
        try await TestServer.with { server in
            let request = "POST /broadcast HTTP/1.0\r\nContent-Length: 1\r\n\r\na"
            let text = try await Self.exchange(server, request + request + request, thenClose: false)
            #expect(Self.statuses(text) == ["202"])
            #expect(server.broker.lastEventID == 1)
        }
    }

    @Test func requestsBehindAConnect_areDropped_andTheStreamWorks() async throws {
        try await TestServer.with { server in
            let raw = try await server.raw()
            let activity = server.broker.activity()
            var changes = activity.makeAsyncIterator()
            try await raw.send("GET /connect?id=alice HTTP/1.1\r\nHost: x\r\n\r\n" + Self.post("smuggled") + Self.post("again"))
            guard case .connected = await changes.next() else { throw CancellationError() }
            // A publish from elsewhere arrives on the stream; the pipelined ones never ran.
            let response = try await server.request(.POST, "/broadcast", body: "real")
            #expect(response.status == .accepted)
            #expect(server.broker.lastEventID == 1)
            try server.broker.kick("alice")
            let text = try await raw.untilClosed()
            #expect(text.contains("data: real"))
            #expect(!text.contains("smuggled") && !text.contains("202"))
        }
    }

    @Test func idempotentRetry_pipelined_isAnsweredInOrderWithTheFirstAnswer() async throws {
        try await TestServer.with { server in
            let key = "Idempotency-Key: k1\r\n"
            let text = try await Self.exchange(server, Self.post("a", headers: key) + Self.post("a", headers: key) + Self.post("b"))
            #expect(Self.statuses(text) == ["202", "202", "202", "404"])
            #expect(text.matches(of: /"id":"(\d+)"/).map { String($0.output.1) } == ["1", "1", "2"])
            #expect(text.components(separatedBy: "Idempotent-Replayed: true").count == 2)
            #expect(server.broker.lastEventID == 2)
        }
    }

    /// Publishes that answer later (as a cluster node's or an overloaded broker's do), each after a
    /// moment, with ids in order.
    final class SlowBackplane: EventBackplane {
        private let next = Locked<UInt64>(0)

        func publish(_ event: Event, to target: String?) async throws(BrokerError) -> Delivery {
            try? await Task.sleep(for: .milliseconds(2))
            return Delivery(eventID: self.next.withLock { $0 += 1; return $0 }, recipients: 0)
        }
    }

    @Test func sixteenPipelined_answeredLaterAndAtOnceInTurn_areAllAnswered() async throws {
        // A producer's pipeline where asynchronous answers (the publishes) alternate with ones
        // written at once from inside the previous response's write (the health checks): every
        // request is answered, none is left unread in the socket (a request left unread shows as
        // a missing answer once the idle connection's header timeout closes it). The default
        // timeout: a shorter one can pass between connecting and sending on a loaded CI machine.
        try await TestServer.with(extraRoutes: [.health("/healthz", broker: try Broker(logger: quietLogger))]) { server in
            server.broker.attach(SlowBackplane())
            for _ in 0..<5 {
                let requests = (0..<8).map { Self.post("e\($0)") + Self.health }.joined()
                let text = try await Self.exchange(server, requests)
                #expect(Self.statuses(text) == Array(repeating: ["202", "200"], count: 8).flatMap { $0 } + ["200"])
            }
        }
    }
}
