import Foundation
import GRDB
import Logging
import NIOCore
import SSEBroker
import SSETestSupport
import ServiceLifecycle
import Testing

@testable import SSEBrokerSQLite

/// The store on its own and behind a broker: round trip through the file, retention, the queue
/// bound, restore. Each test has its own file in a fresh directory.
@Suite(.timeLimit(.minutes(1)))
struct SQLiteEventHistoryTests {
    let directory: String
    var path: String { self.directory + "/history.sqlite" }

    init() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("sse-history-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
    }

    private func cleanUp() {
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    private static func sample() -> [LoggedEvent] {
        [
            LoggedEvent(id: 1, type: nil, data: ByteBuffer(string: "hello"), target: nil, origin: .http),
            LoggedEvent(id: 2, type: "price", data: ByteBuffer(string: "a\nb\r\nc"), target: "alice", origin: .console),
            // Every byte value, NUL and invalid UTF-8 included: the payload is a BLOB.
            LoggedEvent(id: 3, type: "bin", data: ByteBuffer(bytes: Array(0...255) + [0xff, 0xfe, 0x00]), target: nil, origin: .api),
            LoggedEvent(id: 4, type: nil, data: ByteBuffer(), target: "bob", origin: EventOrigin(rawValue: "node-7")),
            // Ids need not be contiguous.
            LoggedEvent(id: 10, type: "émoji", data: ByteBuffer(string: "✓ 🎉"), target: nil, origin: .http),
        ]
    }

    @Test func roundTrip_recordFlushReopen_givesTheSameEvents() async throws {
        defer { self.cleanUp() }
        let events = Self.sample()
        let history = try SQLiteEventHistory(path: self.path)
        events.forEach(history.record)
        await history.flush()
        #expect(history.statistics.written == UInt64(events.count))
        #expect(history.statistics.queued == 0)
        await history.close()

        let reopened = try SQLiteEventHistory(path: self.path)
        #expect(try reopened.recentEvents(limit: 100) == events)
        #expect(try reopened.recentEvents(limit: 2) == Array(events.suffix(2)))
        #expect(try reopened.recentEvents(limit: 0) == [])
        await reopened.close()
    }

    @Test func asAService_closesTheFile_whenItsGroupShutsDown() async throws {
        defer { self.cleanUp() }
        let history = try SQLiteEventHistory(path: self.path)
        let group = ServiceGroup(configuration: .init(services: [history], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        Self.sample().forEach(history.record)
        await group.triggerGracefulShutdown()
        try await running.value
        // Closed: what was recorded is in the file, and the run counts as a clean stop.
        let reopened = try SQLiteEventHistory(path: self.path)
        #expect(reopened.previousRunStoppedCleanly)
        #expect(try reopened.recentEvents(limit: 100) == Self.sample())
        await reopened.close()
    }

    @Test func close_writesEverythingQueued() async throws {
        defer { self.cleanUp() }
        let history = try SQLiteEventHistory(path: self.path, retention: .init(maxCount: nil), limits: .init(maxBatch: 100))
        for id in 1...5000 {
            history.record(LoggedEvent(id: UInt64(id), type: nil, data: ByteBuffer(string: "e\(id)"), target: nil, origin: .api))
        }
        await history.close()  // no flush first
        let statistics = history.statistics
        #expect(statistics.written == 5000)
        #expect(statistics.dropped == 0)
        #expect(statistics.batches >= 50)

        let reopened = try SQLiteEventHistory(path: self.path, retention: .init(maxCount: nil))
        #expect(try reopened.storedCount() == 5000)
        #expect(try reopened.recentEvents(limit: 1).first?.id == 5000)
        await reopened.close()
    }

    @Test func batches_gatherUntilFull_orUntilAFlush() async throws {
        defer { self.cleanUp() }
        // A commit delay no test would wait for: only a full batch or the flush can start a commit.
        let history = try SQLiteEventHistory(
            path: self.path, retention: .init(maxCount: nil), limits: .init(maxBatch: 10, commitDelay: .seconds(3600)))
        for id in 1...25 {
            history.record(LoggedEvent(id: UInt64(id), type: nil, data: ByteBuffer(string: "\(id)"), target: nil, origin: .api))
        }
        await history.flush()
        #expect(history.statistics.written == 25)
        #expect(history.statistics.batches == 3)  // 10, 10, then the 5 the flush asked for
        history.record(LoggedEvent(id: 26, type: nil, data: ByteBuffer(string: "26"), target: nil, origin: .api))
        await history.close()  // does not wait for the delay either
        #expect(history.statistics.written == 26)
    }

    @Test func recordAfterClose_isDroppedAndCounted() async throws {
        defer { self.cleanUp() }
        let history = try SQLiteEventHistory(path: self.path)
        await history.close()
        history.record(LoggedEvent(id: 1, type: nil, data: ByteBuffer(string: "late"), target: nil, origin: .api))
        await history.flush()  // returns: nothing is pending
        #expect(history.statistics.dropped == 1)
        #expect(history.statistics.written == 0)
    }

    @Test func retention_keepsTheNewestMaxCount() async throws {
        defer { self.cleanUp() }
        let history = try SQLiteEventHistory(path: self.path, retention: .init(maxCount: 10), limits: .init(maxBatch: 7))
        for id in 1...300 {
            history.record(LoggedEvent(id: UInt64(id), type: nil, data: ByteBuffer(string: "\(id)"), target: nil, origin: .api))
        }
        await history.flush()
        // Trimmed periodically while writing, not per insert: some older rows may remain until the next trim.
        #expect(try history.storedCount() < 300)
        #expect(try history.recentEvents(limit: 10).map(\.id) == Array(291...300))
        await history.close()

        // Opening applies the retention at once.
        let reopened = try SQLiteEventHistory(path: self.path, retention: .init(maxCount: 10))
        #expect(try reopened.storedCount() == 10)
        #expect(try reopened.recentEvents(limit: 100).map(\.id) == Array(291...300))
        await reopened.close()
    }

    @Test func retention_dropsEventsOlderThanMaxAge() async throws {
        defer { self.cleanUp() }
        let history = try SQLiteEventHistory(path: self.path, retention: .init(maxCount: nil))
        for id in 1...10 {
            history.record(LoggedEvent(id: UInt64(id), type: nil, data: ByteBuffer(string: "\(id)"), target: nil, origin: .api))
        }
        await history.close()
        // Age the first four by two hours instead of waiting.
        let database = try DatabaseQueue(path: self.path)
        try await database.write { db in try db.execute(sql: "UPDATE event SET created_at = created_at - 7200 WHERE id <= 4") }
        try database.close()

        let reopened = try SQLiteEventHistory(path: self.path, retention: .init(maxCount: nil, maxAge: .seconds(3600)))
        #expect(try reopened.storedCount() == 6)
        #expect(reopened.statistics.trimmed == 4)
        #expect(try reopened.recentEvents(limit: 100).map(\.id) == Array(5...10))
        await reopened.close()
    }

    @Test func recentEvents_leavesOutWhatIsPastMaxAge_beforeTheTrim() async throws {
        defer { self.cleanUp() }
        let history = try SQLiteEventHistory(path: self.path, retention: .init(maxCount: nil))
        for id in 1...3 {
            history.record(LoggedEvent(id: UInt64(id), type: nil, data: ByteBuffer(string: "\(id)"), target: nil, origin: .api))
        }
        await history.close()
        let database = try DatabaseQueue(path: self.path)
        try await database.write { db in try db.execute(sql: "UPDATE event SET created_at = created_at - 7200 WHERE id = 1") }
        try database.close()
        let reopened = try SQLiteEventHistory(path: self.path, retention: .init(maxCount: nil, maxAge: .seconds(3600)))
        #expect(try reopened.recentEvents(limit: 10).map(\.id) == [2, 3])
        await reopened.close()
    }

    @Test func fullQueue_dropsTheOldestUnwritten_andCountsThem() async throws {
        defer { self.cleanUp() }
        let history = try SQLiteEventHistory(
            path: self.path, retention: .init(maxCount: nil), limits: .init(maxEvents: 3, maxBatch: 1), logger: Logger(label: "test"))
        // Stall the writer: work on the same connection holds it until released.
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        Thread {
            history.database.writeWithoutTransaction { _ in
                holding.signal()
                release.wait()
            }
        }.start()
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                holding.wait()
                continuation.resume()
            }
        }
        for id in 1...10 {
            history.record(LoggedEvent(id: UInt64(id), type: nil, data: ByteBuffer(string: "\(id)"), target: nil, origin: .api))
        }
        // The stalled writer took at most one event (one per batch); of the others only the newest 3 stay queued.
        #expect(history.statistics.dropped >= 6)
        release.signal()
        await history.flush()
        let statistics = history.statistics
        #expect(statistics.written + statistics.dropped == 10)
        let ids = try history.recentEvents(limit: 100).map(\.id)
        #expect(Array(ids.suffix(3)) == [8, 9, 10])
        #expect(ids == ids.sorted())
        await history.close()
    }

    @Test func open_missingDirectory_saysSo() throws {
        defer { self.cleanUp() }
        let path = self.directory + "/no/such/dir/history.sqlite"
        #expect {
            _ = try SQLiteEventHistory(path: path)
        } throws: { error in
            guard case .cannotOpen(let failedPath, let reason) = error as? SQLiteEventHistoryError else { return false }
            return failedPath == path && reason.contains("no such directory")
        }
    }

    @Test func open_notAnSQLiteFile_saysSo() throws {
        defer { self.cleanUp() }
        try String(repeating: "this is not a database\n", count: 200).write(toFile: self.path, atomically: true, encoding: .utf8)
        #expect {
            _ = try SQLiteEventHistory(path: self.path)
        } throws: { error in
            "\(error)".contains("cannot open history file \(self.path): file is not a database")
        }
    }

    @Test func restore_replaysAndContinuesIds() async throws {
        defer { self.cleanUp() }
        let history = try SQLiteEventHistory(path: self.path)
        let broker = try Broker(configuration: .predictable, journal: history)
        try broker.broadcast(Event(data: "one"))
        try broker.broadcast(Event(type: "t", data: "two"))
        try broker.broadcast(Event(data: "three"))
        broker.shutdown()
        await history.close()

        let reopened = try SQLiteEventHistory(path: self.path)
        let restarted = try Broker(configuration: .predictable, journal: reopened)
        let restored = try reopened.recentEvents(limit: restarted.configuration.historySize)
        #expect(restored.map(\.id) == [1, 2, 3])
        #expect(restored.map(\.type) == [nil, "t", nil])
        #expect(restored.map { String(buffer: $0.data) } == ["one", "two", "three"])
        restarted.restore(restored)
        #expect(restarted.lastEventID == 3)
        #expect(try restarted.broadcast(Event(data: "four")).eventID == 4)
        restarted.shutdown()
        await reopened.flush()
        #expect(try reopened.recentEvents(limit: 10).map(\.id) == [1, 2, 3, 4])
        await reopened.close()
    }

    @Test func afterACrash_idsSkipPastEveryIDThatMayHaveBeenLost() async throws {
        defer { self.cleanUp() }
        let limits = SQLiteEventHistory.QueueLimits(maxEvents: 50)
        let crashed = try SQLiteEventHistory(path: self.path, limits: limits)
        #expect(crashed.previousRunStoppedCleanly)  // a new file
        let broker = try Broker(configuration: .predictable, journal: crashed)
        for index in 1...3 { try broker.broadcast(Event(data: "e\(index)")) }
        await crashed.flush()
        // No close(): the process died. Events 4... may have been sent and never stored.
        let afterCrash = try SQLiteEventHistory(path: self.path, limits: limits)
        #expect(!afterCrash.previousRunStoppedCleanly)
        #expect(try afterCrash.idFloor() == 3 + 50)
        let restarted = try Broker(configuration: .predictable, journal: afterCrash)
        restarted.restore(try afterCrash.recentEvents(limit: 10), continuingAfter: try afterCrash.idFloor())
        #expect(try restarted.broadcast(Event(data: "new")).eventID == 54)
        restarted.shutdown()
        await afterCrash.close()
        // Closed cleanly this time: the next start continues right after the newest id.
        let clean = try SQLiteEventHistory(path: self.path, limits: limits)
        #expect(clean.previousRunStoppedCleanly)
        #expect(try clean.idFloor() == 0)
        await clean.close()
    }
}
