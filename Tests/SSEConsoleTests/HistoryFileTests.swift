import Foundation
import NIOCore
import NIOHTTP1
import SSEClient
import SSETestSupport
import Testing

@testable import SSEConsole

/// `sse-console --history-file`, as a process: events survive a restart, and a subscriber resumes
/// from its `Last-Event-ID` on the restarted broker.
@Suite(.timeLimit(.minutes(1)))
struct HistoryFileTests {
    let directory: String
    var path: String { self.directory + "/history.sqlite" }

    init() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("sse-history-e2e-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
    }

    private func cleanUp() {
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    @Test func restart_subscriberResumesFromLastEventID_andIdsContinue() async throws {
        defer { self.cleanUp() }
        let arguments = ["--no-tui", "--port", "0", "--heartbeat", "60", "--history-file", self.path]

        // First run: alice and bob connected (targeted events need their client), then publish.
        let first = try ConsoleProcess.start(arguments)
        defer { first.killIfRunning() }
        var port = try await first.listeningPort()
        let alice = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=alice")
        let bob = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=bob")
        var producer = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        // (target, type, data), published in this order; their ids are taken from the 202s.
        var ids: [UInt64] = []
        let published: [(String?, String?, String)] = [
            (nil, nil, "b1"), ("alice", nil, "to alice 2"), ("bob", nil, "to bob 3"), (nil, "note", "b4"),
            ("bob", "note", "to bob 5"), ("alice", "price", "to alice 6"), (nil, nil, "b7\nsecond line"), ("bob", nil, "to bob 8"),
        ]
        for (target, type, data) in published {
            var query: [String] = []
            if let type { query.append("type=\(type)") }
            if let target { query.append("id=\(target)") }
            let uri = "/broadcast" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
            let response = try await producer.post(uri, body: data)
            #expect(response.status == .accepted)
            let json = try JSONSerialization.jsonObject(with: Data(response.text.utf8)) as? [String: Any]
            ids.append(try #require((json?["id"] as? String).flatMap { UInt64($0) }))
        }
        await producer.close()
        kill(first.pid, SIGTERM)
        #expect(try await first.waitForExit(within: .seconds(10)) == 0)
        await alice.close()
        await bob.close()

        // Second run on the same file.
        let second = try ConsoleProcess.start(arguments)
        defer { second.killIfRunning() }
        port = try await second.listeningPort()
        let resumedClient = try await SSEClient.connect(
            host: "127.0.0.1", port: port, path: "/connect?id=alice", headers: ["Last-Event-ID": "\(ids[2])"])
        // Everything after it is in the file: the resume is complete.
        #expect(resumedClient.headers.first(name: "sse-replay") == "complete")
        var resumed = StreamReader(resumedClient)
        // After the third, what alice may see: the broadcasts and her own, not bob's.
        let expected = [
            ServerSentEvent(type: "note", data: "b4", lastEventID: "\(ids[3])"),
            ServerSentEvent(type: "price", data: "to alice 6", lastEventID: "\(ids[5])"),
            ServerSentEvent(type: "message", data: "b7\nsecond line", lastEventID: "\(ids[6])"),
        ]
        for event in expected {
            #expect(try await resumed.nextEvent() == event)
        }
        producer = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        #expect(try await producer.post("/broadcast", body: "after restart").status == .accepted)
        let afterRestart = try await resumed.nextEvent()
        #expect(afterRestart.data == "after restart")
        #expect(try #require(UInt64(afterRestart.lastEventID)) > ids[7])  // ids never go backwards
        await producer.close()
        await resumed.client.close()
        kill(second.pid, SIGTERM)
        #expect(try await second.waitForExit(within: .seconds(10)) == 0)
        #expect(second.standardError.contains("history: 8 events restored from \(self.path)"))
    }

    @Test func restart_filteredReplay_usesTheRestoredTypes() async throws {
        defer { self.cleanUp() }
        let arguments = ["--no-tui", "--port", "0", "--heartbeat", "60", "--history-file", self.path]
        let first = try ConsoleProcess.start(arguments)
        defer { first.killIfRunning() }
        var port = try await first.listeningPort()
        let producer = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        var ids: [UInt64] = []
        for (type, data) in [("price", "p1"), ("chat", "c1"), ("", "m1"), ("orders.eu", "o1"), ("price", "p2")] {
            let response = try await producer.post("/broadcast" + (type.isEmpty ? "" : "?type=\(type)"), body: data)
            #expect(response.status == .accepted)
            let json = try JSONSerialization.jsonObject(with: Data(response.text.utf8)) as? [String: Any]
            ids.append(try #require((json?["id"] as? String).flatMap { UInt64($0) }))
        }
        await producer.close()
        kill(first.pid, SIGTERM)
        #expect(try await first.waitForExit(within: .seconds(10)) == 0)

        let second = try ConsoleProcess.start(arguments)
        defer { second.killIfRunning() }
        port = try await second.listeningPort()
        let resume: HTTPHeaders = ["Last-Event-ID": "\(ids[0] - 1)"]
        var price = StreamReader(
            try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?topic=price", headers: resume))
        var others = StreamReader(
            try await SSEClient.connect(
                host: "127.0.0.1", port: port, path: "/connect?topic=message&topic=orders.*", headers: resume))
        #expect(try await price.nextEvent() == ServerSentEvent(type: "price", data: "p1", lastEventID: "\(ids[0])"))
        #expect(try await price.nextEvent() == ServerSentEvent(type: "price", data: "p2", lastEventID: "\(ids[4])"))
        #expect(try await others.nextEvent() == ServerSentEvent(type: "message", data: "m1", lastEventID: "\(ids[2])"))
        #expect(try await others.nextEvent() == ServerSentEvent(type: "orders.eu", data: "o1", lastEventID: "\(ids[3])"))
        await price.client.close()
        await others.client.close()
        kill(second.pid, SIGTERM)
        #expect(try await second.waitForExit(within: .seconds(10)) == 0)
    }

    @Test func historyFileInAMissingDirectory_failsWithAClearMessage() async throws {
        defer { self.cleanUp() }
        let path = self.directory + "/missing/history.sqlite"
        let console = try ConsoleProcess.start(["--no-tui", "--port", "0", "--history-file", path])
        defer { console.killIfRunning() }
        let status = try await console.waitForExit(within: .seconds(10))
        #expect(status == 1)
        #expect(console.standardError.contains("cannot open history file \(path): no such directory: \(self.directory)/missing"))
    }

    @Test func historyFileThatIsNotSQLite_failsWithAClearMessage() async throws {
        defer { self.cleanUp() }
        try String(repeating: "not a database\n", count: 300).write(toFile: self.path, atomically: true, encoding: .utf8)
        let console = try ConsoleProcess.start(["--no-tui", "--port", "0", "--history-file", self.path])
        defer { console.killIfRunning() }
        let status = try await console.waitForExit(within: .seconds(10))
        #expect(status == 1)
        #expect(console.standardError.contains("cannot open history file \(self.path): file is not a database"))
        // Left as it was.
        #expect(try String(contentsOfFile: self.path, encoding: .utf8).hasPrefix("not a database"))
    }

    @Test func options_validate() throws {
        defer { self.cleanUp() }
        #expect(try ConsoleCommand.parse([]).historyFile.path == nil)
        let parsed = try ConsoleCommand.parse(["--history", "50", "--history-file", self.path])
        #expect(parsed.historyFile.retention(historySize: 50).maxCount == 50)
        let custom = try ConsoleCommand.parse(["--history-file", self.path, "--history-retention", "100000", "--history-max-age", "1.5"])
        #expect(custom.historyFile.retention(historySize: 1000).maxCount == 100_000)
        #expect(custom.historyFile.retention(historySize: 1000).maxAge == .milliseconds(1500))
        #expect(throws: (any Error).self) { try ConsoleCommand.parse(["--history", "0", "--history-file", self.path]) }
        #expect(throws: (any Error).self) { try ConsoleCommand.parse(["--history-file", self.path, "--history-retention", "0"]) }
        #expect(throws: (any Error).self) { try ConsoleCommand.parse(["--history-file", self.path, "--history-max-age", "-1"]) }
        // A cluster's shared log is its durable history: one or the other.
        let both = ["--history-file", self.path, "--cluster", "postgres://u@127.0.0.1/d"]
        do {
            _ = try ConsoleCommand.parse(both)
            Issue.record("--history-file with --cluster was accepted")
        } catch {
            #expect(ConsoleCommand.message(for: error).contains("do not go together"))
        }
    }
}
