import CoreMetrics
import Foundation
import GRDB
import Logging
import NIOCore
import SSEBroker

/// The write-behind queue of ``SQLiteEventHistory`` and the one thread that drains it.
///
/// `@unchecked Sendable`: every mutable field is in `state`, touched only with `condition` locked.
/// The writer thread is a plain thread, not a task: SQLite calls block, and the cooperative pool
/// must not wait on a disk.
final class HistoryWriter: @unchecked Sendable {
    private struct State {
        var queue = CircularBuffer<LoggedEvent>(initialCapacity: 1024)
        var queuedBytes = 0
        /// Events recorded since opening (a sequence number for `flush`).
        var accepted: UInt64 = 0
        /// Of those, how many are settled: written, dropped or failed.
        var settled: UInt64 = 0
        var statistics = SQLiteEventHistory.Statistics()
        /// The writer waits for a first event: any enqueue wakes it.
        var writerWaiting = false
        /// The writer lets a batch gather: only a full batch wakes it.
        var writerLingering = false
        var closing = false
        var finished = false
        var flushWaiters: [(target: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let condition = NSCondition()
    private var state = State()
    private let database: DatabaseQueue
    private let retention: SQLiteEventHistory.Retention
    private let limits: SQLiteEventHistory.QueueLimits
    private let logger: Logger
    private let metrics: Metrics

    private struct Metrics {
        let written: Counter
        let batches: Counter
        let dropped: Counter
        let writeErrors: Counter
        let queued: Gauge
    }

    init(
        database: DatabaseQueue,
        retention: SQLiteEventHistory.Retention,
        limits: SQLiteEventHistory.QueueLimits,
        logger: Logger,
        metricsFactory: any MetricsFactory,
        trimmed: UInt64
    ) {
        self.database = database
        self.retention = retention
        self.limits = limits
        self.logger = logger
        self.metrics = Metrics(
            written: Counter(label: "sse_history_events_written_total", factory: metricsFactory),
            batches: Counter(label: "sse_history_batches_total", factory: metricsFactory),
            dropped: Counter(label: "sse_history_events_dropped_total", factory: metricsFactory),
            writeErrors: Counter(label: "sse_history_write_errors_total", factory: metricsFactory),
            queued: Gauge(label: "sse_history_queue_depth", factory: metricsFactory)
        )
        self.state.statistics.trimmed = trimmed
    }

    func start() {
        let thread = Thread { self.run() }
        thread.name = "sse-history-writer"
        thread.start()
    }

    // MARK: Called from anywhere

    /// Under the broker's lock: append, drop the oldest past the bound, wake the writer. No I/O.
    func enqueue(_ event: LoggedEvent) {
        self.condition.lock()
        defer { self.condition.unlock() }
        self.state.accepted += 1
        guard !self.state.closing else {
            self.state.settled += 1
            self.state.statistics.dropped += 1
            return
        }
        self.state.queue.append(event)
        self.state.queuedBytes += event.data.readableBytes
        while self.state.queue.count > self.limits.maxEvents
            || (self.state.queuedBytes > self.limits.maxBytes && self.state.queue.count > 1)
        {
            let oldest = self.state.queue.removeFirst()
            self.state.queuedBytes -= oldest.data.readableBytes
            self.state.settled += 1
            self.state.statistics.dropped += 1
        }
        if self.state.writerWaiting || (self.state.writerLingering && self.state.queue.count >= self.limits.maxBatch) {
            self.condition.signal()
        }
    }

    func flush() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            self.condition.lock()
            let target = self.state.accepted
            if self.state.settled >= target || self.state.finished {
                self.condition.unlock()
                continuation.resume()
                return
            }
            self.state.flushWaiters.append((target, continuation))
            self.condition.signal()
            self.condition.unlock()
        }
    }

    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            self.condition.lock()
            self.state.closing = true
            if self.state.finished {
                self.condition.unlock()
                continuation.resume()
                return
            }
            self.state.closeWaiters.append(continuation)
            self.condition.signal()
            self.condition.unlock()
        }
    }

    /// Asks the writer to finish what is queued and end, without waiting.
    func stop() {
        self.condition.lock()
        self.state.closing = true
        self.condition.signal()
        self.condition.unlock()
    }

    var statistics: SQLiteEventHistory.Statistics {
        self.condition.lock()
        defer { self.condition.unlock() }
        var statistics = self.state.statistics
        statistics.queued = self.state.queue.count
        return statistics
    }

    // MARK: The writer thread

    private func run() {
        // Trim by count once this many events were written since the last trim: often enough to
        // keep the file near its bound, rarely enough that the DELETE is amortised over many inserts.
        let trimEvery = self.retention.maxCount.map { min(max($0 / 8, 64), 8192) } ?? Int.max
        // Trim by age on this period even when nothing is published.
        let ageCheck: TimeInterval? = self.retention.maxAge.map { min(max($0 / .seconds(4), 0.05), 5) }
        var writtenSinceTrim = 0
        var lastAgeTrim = Date()
        var reportedDrops: UInt64 = 0
        var lastDropLog = Date.distantPast

        while true {
            self.condition.lock()
            while self.state.queue.isEmpty && !self.state.closing {
                self.state.writerWaiting = true
                if let ageCheck {
                    let due = lastAgeTrim.addingTimeInterval(ageCheck)
                    if Date() >= due || !self.condition.wait(until: due) {
                        self.state.writerWaiting = false
                        break
                    }
                } else {
                    self.condition.wait()
                }
                self.state.writerWaiting = false
            }
            self.state.writerWaiting = false
            if self.limits.commitDelay > .zero && !self.state.queue.isEmpty {
                let deadline = Date().addingTimeInterval(self.limits.commitDelay / .seconds(1))
                while !self.state.closing && self.state.flushWaiters.isEmpty && self.state.queue.count < self.limits.maxBatch {
                    self.state.writerLingering = true
                    let signalled = self.condition.wait(until: deadline)
                    self.state.writerLingering = false
                    if !signalled { break }
                }
            }
            var batch: [LoggedEvent] = []
            batch.reserveCapacity(min(self.state.queue.count, self.limits.maxBatch))
            while batch.count < self.limits.maxBatch, let event = self.state.queue.popFirst() {
                self.state.queuedBytes -= event.data.readableBytes
                batch.append(event)
            }
            let queued = self.state.queue.count
            let drops = self.state.statistics.dropped
            let done = self.state.closing && self.state.queue.isEmpty
            self.condition.unlock()

            let now = Date()
            let ageDue = ageCheck.map { now.timeIntervalSince(lastAgeTrim) >= $0 } ?? false
            let countDue = writtenSinceTrim + batch.count >= trimEvery
            var written = 0
            var trimmed = 0
            var failure: (any Error)?
            if !batch.isEmpty || ageDue {
                do {
                    trimmed = try self.database.write { db in
                        if !batch.isEmpty {
                            try Self.insert(batch, into: db, now: now)
                        }
                        return ageDue || countDue ? try Self.trim(db, retention: self.retention, now: now) : 0
                    }
                    written = batch.count
                } catch {
                    failure = error
                }
                // Also after a failure: a failing trim is retried on the next period, not in a loop.
                if ageDue || countDue {
                    writtenSinceTrim = 0
                    lastAgeTrim = now
                } else {
                    writtenSinceTrim += written
                }
            }

            self.metrics.queued.record(queued)
            if written > 0 {
                self.metrics.written.increment(by: written)
                self.metrics.batches.increment()
            }
            if drops > reportedDrops {
                self.metrics.dropped.increment(by: Int(drops - reportedDrops))
                // At most one line per few seconds: the queue overflows for a reason that lasts.
                if now.timeIntervalSince(lastDropLog) >= 5 {
                    self.logger.warning(
                        "history queue full: oldest unwritten events dropped (the disk is slower than publishing)",
                        metadata: ["dropped": "\(drops)", "limit": "\(self.limits.maxEvents)"])
                    lastDropLog = now
                }
                reportedDrops = drops
            }
            if let failure {
                self.metrics.writeErrors.increment()
                self.logger.error(
                    "history write failed; events lost",
                    metadata: ["events": "\(batch.count)", "error": "\(SQLiteEventHistory.describe(failure))"])
            }

            self.condition.lock()
            self.state.settled += UInt64(batch.count)
            self.state.statistics.trimmed += UInt64(trimmed)
            if failure != nil {
                self.state.statistics.writeErrors += 1
                self.state.statistics.failed += UInt64(batch.count)
            } else if written > 0 {
                self.state.statistics.written += UInt64(written)
                self.state.statistics.batches += 1
            }
            let settled = self.state.settled
            var ready: [CheckedContinuation<Void, Never>] = []
            self.state.flushWaiters.removeAll { waiter in
                guard waiter.target <= settled else { return false }
                ready.append(waiter.continuation)
                return true
            }
            var closeWaiters: [CheckedContinuation<Void, Never>] = []
            if done {
                self.state.finished = true
                ready += self.state.flushWaiters.map(\.continuation)
                self.state.flushWaiters = []
                closeWaiters = self.state.closeWaiters
                self.state.closeWaiters = []
            }
            self.condition.unlock()
            ready.forEach { $0.resume() }
            if done {
                let final = self.statistics
                if final.dropped > 0 || final.failed > 0 {
                    self.logger.warning(
                        "history closed with events missing from the file",
                        metadata: ["dropped": "\(final.dropped)", "failed": "\(final.failed)", "written": "\(final.written)"])
                }
                // Everything queued is written: the next start may continue right after the newest id.
                _ = try? self.database.write { db in try db.execute(sql: "UPDATE state SET value = 0 WHERE key = 'open'") }
                try? self.database.close()
                closeWaiters.forEach { $0.resume() }
                return
            }
        }
    }

    private static func insert(_ batch: [LoggedEvent], into db: Database, now: Date) throws {
        // OR REPLACE: a broker that restored nothing (replay off) starts its ids at 1 again; its
        // events replace the stale rows instead of failing the whole batch.
        let statement = try db.cachedStatement(
            sql: "INSERT OR REPLACE INTO event (id, type, data, target, origin, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        let createdAt = now.timeIntervalSince1970
        for event in batch {
            try statement.execute(arguments: [
                Int64(bitPattern: event.id), event.type, Data(event.data.readableBytesView), event.target,
                event.origin.rawValue, createdAt,
            ])
        }
    }

    /// Deletes what `retention` no longer keeps. - Returns: how many rows.
    static func trim(_ db: Database, retention: SQLiteEventHistory.Retention, now: Date) throws -> Int {
        var deleted = 0
        if let maxCount = retention.maxCount {
            // The id of the oldest event kept is found through the primary key; no scan.
            try db.execute(
                sql: "DELETE FROM event WHERE id < (SELECT id FROM event ORDER BY id DESC LIMIT 1 OFFSET ?)",
                arguments: [maxCount - 1])
            deleted += db.changesCount
        }
        if let maxAge = retention.maxAge {
            // Ids and times grow together, so the first recent row bounds the deletion; walking
            // ids from the oldest stops there (no index on created_at to maintain on every insert).
            let oldest = now.timeIntervalSince1970 - maxAge / .seconds(1)
            try db.execute(
                sql: """
                    DELETE FROM event WHERE id < COALESCE(
                        (SELECT id FROM event WHERE created_at >= ? ORDER BY id LIMIT 1),
                        (SELECT MAX(id) + 1 FROM event))
                    """,
                arguments: [oldest])
            deleted += db.changesCount
        }
        return deleted
    }
}
