import Foundation
import NIOCore
import SSEBroker
import Testing

@testable import SSEBrokerPostgres

@Suite struct NotificationPayloadTests {
    func event(_ data: String, type: String? = "price", target: String? = "alice") -> LoggedEvent {
        LoggedEvent(id: 42, type: type, data: ByteBuffer(string: data), target: target, origin: .http)
    }

    @Test func smallEvents_travelWhole_andRoundTrip() {
        for event in [
            self.event("hello"),
            self.event("", type: nil, target: nil),
            self.event("line one\nline two\r\nthree"),
            self.event("a\u{1F}separator inside the data, and é ✓"),
        ] {
            let payload = NotificationPayload.encode(event)
            #expect(payload.utf8.count <= NotificationPayload.maxBytes)
            #expect(NotificationPayload.decode(payload) == .event(event))
        }
    }

    @Test func eventsThatCannotTravelInANotification_areAnnouncedByID() {
        let large = self.event(String(repeating: "x", count: 8_000))
        #expect(NotificationPayload.encode(large) == "42")
        #expect(NotificationPayload.decode("42") == .reference(42))
        let withNUL = LoggedEvent(id: 7, type: nil, data: ByteBuffer(bytes: [0x61, 0, 0x62]), target: nil, origin: .api)
        #expect(NotificationPayload.encode(withNUL) == "7")
        let notUTF8 = LoggedEvent(id: 8, type: nil, data: ByteBuffer(bytes: [0xFF]), target: nil, origin: .api)
        #expect(NotificationPayload.encode(notUTF8) == "8")
        // The limit is on the whole payload, header included, with room for the longest id (the
        // database draws it after the payload was built).
        let header = String(Int64.max).utf8.count + "\u{1F}alice\u{1F}price\u{1F}http\u{1F}".utf8.count
        #expect(NotificationPayload.encode(self.event(String(repeating: "y", count: NotificationPayload.maxBytes - header))) != "42")
        #expect(NotificationPayload.encode(self.event(String(repeating: "y", count: NotificationPayload.maxBytes - header + 1))) == "42")
    }

    @Test func payloadsThisVersionDoesNotUnderstand_areRejected() {
        for payload in ["", "abc", "1\u{1F}2", "x\u{1F}a\u{1F}b\u{1F}c\u{1F}data", "-1"] {
            #expect(NotificationPayload.decode(payload) == nil, "\(payload)")
        }
    }
}

@Suite struct ClusterConfigurationTests {
    @Test func url_isParsedIntoTheDatabaseConfiguration() throws {
        let configuration = try ClusterConfiguration(url: "postgres://sse:p%40ss@db.example:6543/events?sslmode=disable", nodeName: "a")
        #expect(configuration.database.host == "db.example")
        #expect(configuration.database.port == 6543)
        #expect(configuration.database.username == "sse")
        #expect(configuration.database.password == "p@ss")
        #expect(configuration.database.database == "events")
        #expect(configuration.nodeName == "a")
        #expect(try ClusterConfiguration(url: "postgresql://u@h/d").database.port == 5432)
    }

    @Test(arguments: [
        ("http://u@h/d", "not a PostgreSQL URL"),
        ("postgres:///d", "names no host"),
        ("postgres://h/d", "names no user"),
        ("postgres://u@h/d?sslmode=sometimes", "unknown sslmode \"sometimes\""),
        ("not a url at all", "not a PostgreSQL URL"),
    ])
    func badURLs_areRefusedWithAPreciseMessage(url: String, message: String) {
        #expect {
            _ = try ClusterConfiguration(url: url)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func outOfRangeOptions_areRefused() throws {
        var configuration = try ClusterConfiguration(url: "postgres://u@h/d", nodeName: "n")
        try configuration.validate()
        for (change, message) in [
            ({ (c: inout ClusterConfiguration) in c.tablePrefix = "bad-prefix" }, "table prefix"),
            ({ (c: inout ClusterConfiguration) in c.tablePrefix = "1abc" }, "table prefix"),
            ({ (c: inout ClusterConfiguration) in c.nodeName = "with space" }, "node name"),
            ({ (c: inout ClusterConfiguration) in c.retentionCount = 0 }, "retention"),
            ({ (c: inout ClusterConfiguration) in c.nodeTimeout = .milliseconds(500) }, "node timeout"),
        ] as [((inout ClusterConfiguration) -> Void, String)] {
            var changed = configuration
            change(&changed)
            #expect(throws: ClusterConfigurationError.self) { try changed.validate() }
            #expect((try? changed.validate()) == nil)
            do { try changed.validate() } catch { #expect(error.message.contains(message), "\(error.message)") }
        }
        configuration.tablePrefix = "tenant_2"
        try configuration.validate()
    }

    @Test func names_deriveFromThePrefix_andTheLockKeyIsStable() {
        let names = PostgresCluster.Names(prefix: "sse")
        #expect(names.events == "sse_events" && names.presence == "sse_presence" && names.channel == "sse_events")
        #expect(names.lockKey == PostgresCluster.Names(prefix: "sse").lockKey)
        #expect(names.lockKey != PostgresCluster.Names(prefix: "other").lockKey)
    }
}

@Suite struct ClientSnapshotTests {
    @Test func encoding_roundTrips_withTheProtocol() {
        let clients = [
            ClientInfo(
                connectionID: 9, clientID: "alice", remoteAddress: "127.0.0.1:5000", connectedAt: Date(timeIntervalSince1970: 1_700_000_000.123),
                eventsSent: 3, bytesSent: 120, consecutiveErrors: 1, totalErrors: 2, backlogBytes: 64, topics: ["news", "sport.*"],
                httpVersion: "h2"
            ),
            ClientInfo(connectionID: 10, clientID: "bob", remoteAddress: nil, connectedAt: Date(timeIntervalSince1970: 1_700_000_001)),
        ]
        // The protocol is the last field, empty for HTTP/1.1.
        let lines = String(buffer: ClientSnapshot.encode(clients)).split(separator: "\n")
        #expect(lines.map { $0.split(separator: "\t", omittingEmptySubsequences: false).last } == ["h2", ""])
        #expect(ClientSnapshot.decode(ClientSnapshot.encode(clients)) == clients)
    }

    @Test func decoding_takesTheLinesOfEarlierVersions_andIgnoresFieldsOfLaterOnes() {
        // An earlier node's lines: 10 fields, no protocol (it served HTTP/1.1 only).
        let earlier = "9\talice\t127.0.0.1:5000\t1700000000123\t3\t120\t1\t2\t64\tnews,sport.*\n10\tbob\t-\t1700000001000\t0\t0\t0\t0\t0\t\n"
        let later = "11\tcarol\t-\t1700000002000\t0\t0\t0\t0\t0\t\th2\tsomething new\n"
        let broken = "12\tdave\t-\t1700000003000\t0\t0\t0\t0\n"  // too few fields: skipped
        let clients = ClientSnapshot.decode(ByteBuffer(string: earlier + broken + later))
        #expect(clients.map(\.clientID) == ["alice", "bob", "carol"])
        #expect(clients.map(\.httpVersion) == ["HTTP/1.1", "HTTP/1.1", "h2"])
        #expect(
            clients.first
                == ClientInfo(
                    connectionID: 9, clientID: "alice", remoteAddress: "127.0.0.1:5000",
                    connectedAt: Date(timeIntervalSince1970: 1_700_000_000.123), eventsSent: 3, bytesSent: 120, consecutiveErrors: 1,
                    totalErrors: 2, backlogBytes: 64, topics: ["news", "sport.*"]
                ))
    }
}
