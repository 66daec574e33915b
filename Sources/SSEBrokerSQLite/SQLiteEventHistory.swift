import CoreMetrics
import Foundation
import GRDB
import Logging
import NIOCore
import SSEBroker
import ServiceLifecycle

/// A broker's event history in one SQLite file, so clients resume with `Last-Event-ID` across a
/// restart of the broker process.
///
/// Write-behind: ``record(_:)`` (called by the broker under its lock) only appends the event to a
/// bounded in-memory queue; one writer thread drains the queue and writes what it holds in one
/// transaction (group commit), so publishing never waits for the disk. ``flush()`` waits until
/// everything recorded so far is written; ``close()`` does that and stops the writer.
///
/// What survives what:
/// - a clean stop (``close()`` after the broker shut down): every event the broker accepted;
/// - the process crashing or being killed: every event committed so far, which trails the
///   broker by one batch (the events still queued: about the last ``QueueLimits/commitDelay``,
///   10 ms by default);
/// - the machine losing power: SQLite runs in WAL mode with `synchronous = NORMAL`, so commits
///   since the last checkpoint may be lost as well (the file itself stays consistent).
///
/// When the disk is slower than publishing for long enough that the queue reaches its bound
/// (``QueueLimits``), the oldest events not yet written are dropped: publishing is never slowed
/// down, the loss is counted in ``Statistics/dropped`` and logged. Such events are missing
/// from the history after a restart (clients that resume from before them do not get them).
///
/// Use one file per broker: the ids in it are that broker's. Thread-safe.
///
///     let history = try SQLiteEventHistory(path: "history.sqlite", retention: .init(maxCount: 1000))
///     let broker = try Broker(configuration: configuration, journal: history)
///     broker.restore(try history.recentEvents(limit: configuration.historySize))  // before serving
///     // ... serve; on shutdown, after `broker.shutdown()`:
///     await history.close()
///
/// It is a swift-service-lifecycle `Service` whose ``run()`` closes the file when its group shuts
/// down: put it *before* the server in the group (a group stops its services in reverse order), so
/// it closes once the broker has stopped recording.
public final class SQLiteEventHistory: EventJournal, Service {
    /// The database file.
    public let path: String
    /// What the file keeps.
    public let retention: Retention
    /// Internal so a test can stall the writer with a transaction of its own.
    let database: DatabaseQueue
    private let writer: HistoryWriter

    /// How much of the history the file keeps. Older events are deleted by the writer from time
    /// to time (not on every insert), so the file may briefly hold a few more.
    public struct Retention: Sendable, Hashable {
        /// The most events kept (at least 1), or `nil` for no limit by count.
        public var maxCount: Int?
        /// The longest an event is kept, or `nil` for no limit by age.
        public var maxAge: Duration?

        public init(maxCount: Int? = 1000, maxAge: Duration? = nil) {
            self.maxCount = maxCount
            self.maxAge = maxAge
        }
    }

    /// The bound on events recorded but not yet written, and how they are grouped into
    /// transactions. Past the bound the oldest unwritten events are dropped (and counted), so a
    /// slow disk never slows publishing down or grows memory for ever.
    public struct QueueLimits: Sendable, Hashable {
        /// The most events waiting to be written.
        public var maxEvents: Int
        /// The most payload bytes waiting to be written.
        public var maxBytes: Int
        /// The most events written in one transaction.
        public var maxBatch: Int
        /// How long the writer lets events gather after the first one before it commits them
        /// (unless `maxBatch` are waiting, or a flush or close asks for them): a commit costs tens
        /// of microseconds however small it is, so one per event would cost more than the
        /// broker's whole fan-out. What a crash can lose grows by as much. Zero commits at once.
        public var commitDelay: Duration

        public init(maxEvents: Int = 100_000, maxBytes: Int = 64 << 20, maxBatch: Int = 8192, commitDelay: Duration = .milliseconds(10)) {
            self.maxEvents = maxEvents
            self.maxBytes = maxBytes
            self.maxBatch = maxBatch
            self.commitDelay = commitDelay
        }
    }

    /// Counters since the history was opened.
    public struct Statistics: Sendable, Hashable {
        /// Events committed to the file.
        public var written: UInt64 = 0
        /// Transactions that wrote events.
        public var batches: UInt64 = 0
        /// Events recorded and not written yet.
        public var queued: Int = 0
        /// Events never written because the queue was full (or the history was closed).
        public var dropped: UInt64 = 0
        /// Transactions that failed (disk full, I/O error); their events are lost.
        public var writeErrors: UInt64 = 0
        /// Events lost in those failed transactions.
        public var failed: UInt64 = 0
        /// Events deleted by retention.
        public var trimmed: UInt64 = 0
    }

    /// Opens the file at `path`, creating it (and its table) if needed, and starts the writer.
    /// - Parameters:
    ///   - retention: what to keep; also applied once now.
    ///   - limits: the bound on the write-behind queue.
    ///   - logger: where write errors and drops are logged.
    ///   - metricsFactory: where the `sse_history_*` metrics go; by default the bootstrapped factory.
    /// - Throws: ``SQLiteEventHistoryError/cannotOpen(path:reason:)`` when the directory does not
    ///   exist, the file is not an SQLite database or cannot be written.
    public init(
        path: String,
        retention: Retention = Retention(),
        limits: QueueLimits = QueueLimits(),
        logger: Logger = Logger(label: "sse.history"),
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) throws(SQLiteEventHistoryError) {
        precondition(retention.maxCount.map { $0 >= 1 } ?? true, "Retention.maxCount must be at least 1")
        precondition(retention.maxAge.map { $0 > .zero } ?? true, "Retention.maxAge must be positive")
        precondition(limits.maxEvents >= 1 && limits.maxBytes >= 1 && limits.maxBatch >= 1, "QueueLimits must be positive")
        precondition(limits.commitDelay >= .zero, "QueueLimits.commitDelay must not be negative")
        self.path = path
        self.retention = retention
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .cannotOpen(path: path, reason: "no such directory: \(directory)")
        }
        do {
            var configuration = Configuration()
            configuration.label = "sse-history"
            configuration.journalMode = .wal
            // WAL + NORMAL: a commit is an append to the WAL without fsync; durable against a
            // process crash, not a power cut. A full fsync per batch would bound throughput by the disk.
            configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
            self.database = try DatabaseQueue(path: path, configuration: configuration)
            try Self.migrator.migrate(self.database)
            // Whether the previous run closed the file; from now on it is open until `close()`.
            self.previousRunStoppedCleanly = try self.database.write { db in
                let wasOpen = try Int.fetchOne(db, sql: "SELECT value FROM state WHERE key = 'open'") ?? 0
                try db.execute(sql: "INSERT OR REPLACE INTO state (key, value) VALUES ('open', 1)")
                return wasOpen == 0
            }
            self.limits = limits
            let trimmed = try self.database.write { db in try HistoryWriter.trim(db, retention: retention, now: Date()) }
            self.writer = HistoryWriter(
                database: self.database, retention: retention, limits: limits, logger: logger, metricsFactory: metricsFactory,
                trimmed: UInt64(trimmed))
        } catch {
            throw .cannotOpen(path: path, reason: Self.describe(error))
        }
        self.writer.start()
    }

    private let limits: QueueLimits

    deinit {
        // Without `close()` the writer still writes what is queued, then ends.
        self.writer.stop()
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: events") { db in
            try db.create(table: "event") { table in
                // INTEGER PRIMARY KEY: the rowid itself, so ids are the B-tree's order.
                table.primaryKey("id", .integer)
                table.column("type", .text)
                table.column("data", .blob).notNull()
                table.column("target", .text)
                table.column("origin", .text).notNull()
                // Unix time in seconds, when the writer stored it.
                table.column("created_at", .double).notNull()
            }
        }
        migrator.registerMigration("v2: state") { db in
            // `open` = 1 while a broker has the file open: still 1 at the next start means a crash.
            try db.create(table: "state") { table in
                table.primaryKey("key", .text)
                table.column("value", .integer).notNull()
            }
        }
        migrator.registerMigration("v3: bans") { db in
            // The bans of a stand-alone broker (BanStore), so they survive a restart.
            try db.create(table: "ban") { table in
                table.primaryKey("client_id", .text)
                // Unix time in seconds; NULL: until unban.
                table.column("until", .double)
                table.column("set_at", .double).notNull()
                table.column("set_by", .text).notNull()
            }
        }
        return migrator
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return error.message ?? "SQLite error \(error.resultCode.rawValue)"
        }
        return "\(error)"
    }

    // MARK: EventJournal

    /// Queues `event` for the writer. Never blocks on I/O: takes one short lock.
    public func record(_ event: LoggedEvent) {
        self.writer.enqueue(event)
    }

    // MARK: Reading

    /// The newest `limit` events still within ``retention``, oldest first: what
    /// ``Broker/restore(_:)`` takes before the server starts. Reads the file (blocking).
    public func recentEvents(limit: Int) throws(SQLiteEventHistoryError) -> [LoggedEvent] {
        guard limit > 0 else { return [] }
        let oldest = self.retention.maxAge.map { Date().timeIntervalSince1970 - $0 / .seconds(1) } ?? -Double.infinity
        do {
            let rows = try self.database.read { db in
                try Row.fetchAll(
                    db,
                    sql: "SELECT id, type, data, target, origin FROM event WHERE created_at >= ? ORDER BY id DESC LIMIT ?",
                    arguments: [oldest, limit]
                )
            }
            return rows.reversed().map { row in
                let id: Int64 = row["id"]
                let data: Data = row["data"] ?? Data()
                return LoggedEvent(
                    id: UInt64(bitPattern: id),
                    type: row["type"],
                    data: ByteBuffer(bytes: data),
                    target: row["target"],
                    origin: EventOrigin(rawValue: row["origin"])
                )
            }
        } catch {
            throw .cannotRead(path: self.path, reason: Self.describe(error))
        }
    }

    /// How many events the file holds now (written ones only).
    public func storedCount() throws(SQLiteEventHistoryError) -> Int {
        do {
            return try self.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event") ?? 0 }
        } catch {
            throw .cannotRead(path: self.path, reason: Self.describe(error))
        }
    }

    // MARK: Lifecycle

    /// Returns once every event recorded before the call is written (or dropped, or failed).
    public func flush() async {
        await self.writer.flush()
    }

    /// Writes everything queued, stops the writer and closes the file. Events recorded afterwards
    /// are dropped. Call it after the broker has shut down. Idempotent.
    public func close() async {
        await self.writer.close()
    }

    /// As a `Service`: waits for its group's graceful shutdown (or for cancellation), then
    /// ``close()``s the file. The writer itself runs on its own thread from ``init`` on.
    public func run() async {
        try? await gracefulShutdown()
        await self.close()
    }

    /// Whether the broker that used the file before stopped cleanly (called ``close()``). If not, it
    /// may have handed out ids of events that were still queued and are lost: see ``idFloor()``.
    public let previousRunStoppedCleanly: Bool

    /// The id new events must continue after (``Broker/restore(_:continuingAfter:)``): 0 after a
    /// clean stop; after a crash, the newest stored id plus the most events that can wait unwritten
    /// (``QueueLimits/maxEvents``), so no id a client may have seen is given to another event.
    public func idFloor() throws(SQLiteEventHistoryError) -> UInt64 {
        guard !self.previousRunStoppedCleanly else { return 0 }
        do {
            let newest = try self.database.read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM event") } ?? 0
            return UInt64(max(newest, 0)) + UInt64(self.limits.maxEvents)
        } catch {
            throw .cannotRead(path: self.path, reason: Self.describe(error))
        }
    }

    /// Counters since the history was opened.
    public var statistics: Statistics {
        self.writer.statistics
    }
}

/// Why a history file cannot be used.
public enum SQLiteEventHistoryError: Error, CustomStringConvertible, Sendable {
    /// The file could not be opened or prepared: `reason` says why.
    case cannotOpen(path: String, reason: String)
    /// The file could not be read.
    case cannotRead(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): "cannot open history file \(path): \(reason)"
        case .cannotRead(let path, let reason): "cannot read history file \(path): \(reason)"
        }
    }
}
