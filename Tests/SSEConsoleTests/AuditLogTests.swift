import Foundation
import Logging
import SSEBroker
import SSEConsoleCore
import SSETestSupport
import Testing

@testable import SSEConsole

/// The audit trail: what the broker reports for each state-changing action, the JSON lines in the
/// file, the bound on the queue, and the console's `audit` and `bans` answers.
@Suite(.timeLimit(.minutes(1)))
struct AuditLogTests {
    let directory: String
    var path: String { self.directory + "/audit.jsonl" }

    init() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("sse-audit-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
    }

    func records() throws -> [[String: Any]] {
        try String(contentsOfFile: self.path, encoding: .utf8).split(separator: "\n").map {
            try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test func everyStateChangingAction_isAJSONLine_withTimeOriginNodeAndArguments() async throws {
        defer { try? FileManager.default.removeItem(atPath: self.directory) }
        let audit = try AuditLog(path: self.path, node: "node-a")
        let broker = try Broker(
            configuration: .predictable, logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }), audit: audit)
        let alice = try RecordingTransportForConsole.subscribed(to: broker, "alice", topics: [])
        try broker.broadcast(Event(type: "price", data: "42", origin: .console))
        try broker.broadcast(Event(data: "from a producer", origin: .http).from("10.0.0.7:53012"), to: "alice")
        try await broker.kick("alice", origin: .console)
        try await broker.ban("mallory", for: .seconds(300), origin: .http("10.0.0.8:1"))
        #expect(try await broker.unban("mallory", origin: .api))
        #expect(try await !broker.unban("mallory", origin: .api))  // nothing changed: not recorded
        await #expect(throws: BrokerError.unknownClient("ghost")) { try await broker.kick("ghost", origin: .console) }
        await audit.flush()
        _ = alice

        let records = try self.records()
        #expect(records.map { $0["action"] as? String } == ["broadcast", "broadcastTo", "kick", "ban", "unban"])
        #expect(records.map { $0["origin"] as? String } == ["console", "http", "console", "http", "api"])
        #expect(records.map { $0["remoteAddress"] as? String } == [nil, "10.0.0.7:53012", nil, "10.0.0.8:1", nil])
        #expect(records.allSatisfy { $0["node"] as? String == "node-a" })
        let arguments = records.map { $0["arguments"] as? [String: String] ?? [:] }
        #expect(arguments[0] == ["type": "price", "bytes": "2", "eventId": "1", "recipients": "1"])
        #expect(arguments[1] == ["client": "alice", "bytes": "15", "eventId": "2", "recipients": "1"])
        #expect(arguments[2] == ["client": "alice", "closed": "1", "nodes": "1"])
        #expect(arguments[3]["client"] == "mallory" && arguments[3]["duration"] == "300s" && arguments[3]["until"] != nil)
        let time = try #require(records.first?["time"] as? String)
        #expect(try Date(time, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)).timeIntervalSinceNow > -60)
        // The console's list, newest first.
        #expect(audit.recent.map(\.action) == ["unban", "ban", "kick", "broadcastTo", "broadcast"])
        #expect(audit.counts.written == 5)
        audit.close()
    }

    @Test func aFullQueue_dropsNewRecords_andSaysSoInTheFile() async throws {
        defer { try? FileManager.default.removeItem(atPath: self.directory) }
        let audit = try AuditLog(path: self.path, node: nil, capacity: 3, startWriting: false)
        for index in 0..<10 {
            audit.record(AuditRecord(action: "kick", origin: "api", arguments: ["client": "c\(index)"]))
        }
        audit.startWriter()
        await audit.flush()
        let records = try self.records()
        #expect(records.map { $0["action"] as? String } == ["audit-dropped", "kick", "kick", "kick"])
        #expect((records[0]["arguments"] as? [String: String])?["count"] == "7")
        #expect(records.dropFirst().map { ($0["arguments"] as? [String: String])?["client"] } == ["c0", "c1", "c2"])
        // What had gathered is one batch: one write and one fsync, not one per record.
        #expect(audit.counts.written == 3 && audit.counts.batches == 1)
        // The console's list keeps every record either way.
        #expect(audit.recent.count == 10)
        audit.close()
    }

    /// A file that refuses a batch (here /dev/full: every write fails with ENOSPC) loses it from the
    /// file, says why in the log, and counts it: it is neither reported as written nor retried forever.
    @Test func aBatchTheFileRefuses_isLoggedAndCounted_notWritten() async throws {
        let messages = Locked<[String]>([])
        let logger = Logger(label: "audit") { _ in CollectingLogHandler(messages: messages) }
        let audit = try AuditLog(path: "/dev/full", node: nil, startWriting: false, logger: logger)
        audit.record(AuditRecord(action: "kick", origin: "api", arguments: ["client": "a"]))
        audit.record(AuditRecord(action: "kick", origin: "api", arguments: ["client": "b"]))
        audit.startWriter()
        await audit.flush()
        let counts = audit.counts
        #expect(counts.written == 0 && counts.batches == 0 && counts.failed == 2)
        #expect(counts.dropped == 2, "the next batch's audit-dropped line counts them")
        let logged = messages.withLock { $0 }
        #expect(logged.count == 1 && logged[0].contains("2 records not written") && logged[0].contains("No space left on device"), "\(logged)")
        #expect(audit.recent.count == 2)
        audit.close()
    }

    /// The writer thread is named for `top -H` and `/proc` (Foundation's `Thread.name` is not).
    @Test func writerThread_isNamedForTools() async throws {
        defer { try? FileManager.default.removeItem(atPath: self.directory) }
        let audit = try AuditLog(path: self.path, node: nil)
        audit.record(AuditRecord(action: "kick", origin: "api", arguments: ["client": "a"]))
        await audit.flush()  // the writer has run
        let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").map { task in
            (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
        }
        #expect(names.contains("sse-audit-write\n"), "\(Set(names))")
        audit.close()
    }

    struct CollectingLogHandler: LogHandler {
        let messages: Locked<[String]>
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            self.messages.withLock { $0.append("\(event.message) \(event.metadata ?? [:])") }
        }
    }

    @Test func unwritablePath_isAClearError() {
        #expect(throws: AuditLogError(message: "cannot open audit log /nonexistent-dir/audit.jsonl: no such file or directory")) {
            _ = try AuditLog(path: "/nonexistent-dir/audit.jsonl", node: nil)
        }
    }

    @Test func executor_listsBansAndTheAuditTrail() throws {
        let audit = try AuditLog(path: nil, node: nil)
        let broker = try Broker(logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }), audit: audit)
        let executor = CommandExecutor(broker: broker, audit: audit)
        #expect(executor.execute(.ban(clientID: "eve", duration: nil)) == .ok("banned eve until unban (0 connections on 0 nodes closed); it gets 204 No Content"))
        guard case .ok(let bans) = executor.execute(.bans) else { Issue.record("bans failed"); return }
        let lines = bans.split(separator: "\n")
        #expect(lines.first == "ID\tUNTIL\tSET_AT\tNODE\tSET_BY")
        #expect(lines.count == 2 && lines[1].hasPrefix("eve\tuntil-unban\t") && lines[1].hasSuffix("\t-\tconsole"))
        guard case .ok(let trail) = executor.execute(.audit) else { Issue.record("audit failed"); return }
        let rows = trail.split(separator: "\n")
        #expect(rows.first == "TIME\tACTION\tORIGIN\tNODE\tARGUMENTS")
        #expect(rows.count == 2 && rows[1].hasSuffix("\tban\tconsole\t-\tclient=eve duration=until unban closed=0 nodes=0"))
        #expect(executor.execute(.clientScope(.allNodes)) == .error("clients all: not a cluster node (start with --cluster URL)"))
        #expect(executor.execute(.unban(clientID: "eve")) == .ok("unbanned eve"))
        #expect(executor.execute(.unban(clientID: "eve")) == .error("unban: eve is not banned"))
    }
}
