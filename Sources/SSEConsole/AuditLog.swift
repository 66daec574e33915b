import Foundation
import Logging
import SSEBroker
import SSEConsoleCore
import ServiceLifecycle
import Synchronization

/// The console's audit trail: the broker's ``AuditSink``. Keeps the newest records in memory for
/// the `audit` view and, with `--audit-log FILE`, appends every record to the file as a JSON line.
///
/// ``record(_:)`` runs on whichever thread acted — an event loop for an HTTP publish — so it only
/// appends to a bounded queue under a short lock and signals the writer thread. The writer takes
/// everything queued, writes it with one `write(2)` and `fsync(2)`s it: what gathers while one
/// batch is being synced is the next batch, so a burst costs one fsync per batch, not per record.
///
/// When the queue is full (``capacity`` records waiting: the disk is slower than the actions for
/// that long) new records are not queued: they are counted, and the next batch starts with a
/// `{"action":"audit-dropped","count":N}` line, so the gap is visible in the file. The broker is
/// never slowed down by its audit trail. The in-memory list keeps every record either way.
///
/// A batch the file refuses (disk full, I/O error) is lost from the file, not retried: it is logged
/// with the reason, counted in ``counts``, and added to the next `audit-dropped` line.
final class AuditLog: AuditSink, Service {
    /// The file, or `nil` for the in-memory list only.
    let path: String?
    /// The cluster node this broker is; stamped on every record.
    let node: String?
    /// The most records waiting for the writer.
    let capacity: Int
    /// How many records the `audit` view keeps.
    static let recentLimit = 1000
    private let logger: Logger

    private struct State {
        var queue: [AuditRecord] = []
        var recent: [AuditRecord] = []
        /// Where the ring `recent` starts once it is full.
        var recentStart = 0
        var dropped = 0
        var written = 0
        var batches = 0
        /// Records in batches the file refused (write or fsync failed).
        var failed = 0
        var closed = false
        var flushWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Locked(State())
    private let wakeup = DispatchSemaphore(value: 0)
    private let descriptor: Int32
    private let finished = DispatchSemaphore(value: 0)

    /// Opens (or creates, mode 0600) `path` for appending and starts the writer thread (unless
    /// `startWriting` is false: a test then fills the queue and calls ``startWriter()``).
    /// - Throws: ``AuditLogError`` with the reason when the file cannot be opened for writing.
    init(
        path: String?, node: String?, capacity: Int = 10_000, startWriting: Bool = true,
        logger: Logger = Logger(label: "sse.audit")
    ) throws(AuditLogError) {
        self.path = path
        self.node = node
        self.capacity = capacity
        self.logger = logger
        if let path {
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw AuditLogError(message: "cannot open audit log \(path): \(String(cString: strerror(errno)).lowercased())")
            }
            self.descriptor = fd
            if startWriting { self.startWriter() }
        } else {
            self.descriptor = -1
        }
    }

    func startWriter() {
        let thread = Thread { [self] in
            nameCurrentThread("sse-audit-write")
            self.writeLoop()
        }
        thread.name = "sse-audit-writer"
        thread.start()
    }

    func record(_ record: AuditRecord) {
        var record = record
        record.node = record.node ?? self.node
        let wake = self.state.withLock { state -> Bool in
            if state.recent.count < Self.recentLimit {
                state.recent.append(record)
            } else {
                state.recent[state.recentStart] = record
                state.recentStart = (state.recentStart + 1) % Self.recentLimit
            }
            guard self.descriptor >= 0, !state.closed else { return false }
            guard state.queue.count < self.capacity else {
                state.dropped += 1
                return false
            }
            state.queue.append(record)
            return state.queue.count == 1
        }
        if wake { self.wakeup.signal() }
    }

    /// The newest records, newest first, at most ``recentLimit``.
    var recent: [AuditRecord] {
        self.state.withLock { state in
            Array((state.recent[state.recentStart...] + state.recent[..<state.recentStart]).reversed())
        }
    }

    /// Records written to the file; batches (one fsync each); records missing from the file and not
    /// yet reported there by an `audit-dropped` line (dropped because the queue was full, or in a
    /// batch the file refused); and records in batches the file refused.
    var counts: (written: Int, batches: Int, dropped: Int, failed: Int) {
        self.state.withLock { ($0.written, $0.batches, $0.dropped, $0.failed) }
    }

    /// Returns once everything queued before the call is written and synced.
    func flush() async {
        guard self.descriptor >= 0 else { return }
        await withCheckedContinuation { continuation in
            let immediate = self.state.withLock { state -> Bool in
                if state.closed { return true }
                state.flushWaiters.append(continuation)
                return false
            }
            if immediate { continuation.resume() } else { self.wakeup.signal() }
        }
    }

    /// Writes what is queued and closes the file; later records stay in memory only.
    func close() {
        guard self.descriptor >= 0 else { return }
        let first = self.state.withLock { state -> Bool in
            defer { state.closed = true }
            return !state.closed
        }
        guard first else { return }
        self.wakeup.signal()
        self.finished.wait()
    }

    /// As a service: closes the file (after writing what is queued) when its group shuts down. Put it
    /// before the server, so it closes after the server has stopped acting.
    func run() async {
        try? await gracefulShutdown()
        self.close()
    }

    private func writeLoop() {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        while true {
            self.wakeup.wait()
            // `dropped` stays counted until a line that reports it is in the file.
            let (batch, dropped, waiters, closed) = self.state.withLock { state in
                defer {
                    state.queue = []
                    state.flushWaiters = []
                }
                return (state.queue, state.dropped, state.flushWaiters, state.closed)
            }
            var bytes = Data()
            if dropped > 0 {
                let marker = AuditRecord(action: "audit-dropped", origin: "audit", node: self.node, arguments: ["count": "\(dropped)"])
                if let line = try? encoder.encode(marker) { bytes.append(line + [0x0A]) }
            }
            for record in batch {
                if let line = try? encoder.encode(record) { bytes.append(line + [0x0A]) }
            }
            if !bytes.isEmpty {
                let failure = self.writeAndSync(bytes)
                self.state.withLock { state in
                    if failure == nil {
                        state.written += batch.count
                        state.batches += 1
                        state.dropped -= dropped  // reported by this batch's audit-dropped line
                    } else {
                        // Lost from the file: the next batch's audit-dropped line counts them too.
                        state.failed += batch.count
                        state.dropped += batch.count
                    }
                }
                if let failure, !batch.isEmpty {  // a lone audit-dropped line failing again is no news
                    self.logger.error(
                        "audit log: \(batch.count) records not written",
                        metadata: ["path": "\(self.path ?? "-")", "error": "\(failure)"])
                }
            }
            waiters.forEach { $0.resume() }
            if closed {
                Foundation.close(self.descriptor)
                // Flushes asked for after the close are answered by `flush()` itself.
                self.finished.signal()
                return
            }
        }
    }
}

extension AuditLog {
    /// Appends `bytes` and syncs them; the reason when the file refused either.
    private func writeAndSync(_ bytes: Data) -> String? {
        let failure: String? = bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(self.descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return n < 0 ? String(cString: strerror(errno)) : "nothing written" }
                offset += n
            }
            return nil
        }
        if let failure { return failure }
        return fsync(self.descriptor) == 0 ? nil : String(cString: strerror(errno))
    }
}

/// Why the audit log cannot be used.
struct AuditLogError: Error, Equatable, CustomStringConvertible {
    var message: String
    var description: String { self.message }
}

extension AuditRow {
    /// The row the `audit` view shows for `record`.
    init(_ record: AuditRecord) {
        let order = ["client", "type", "bytes", "eventId", "recipients", "duration", "until", "closed", "nodes", "count"]
        let known = order.compactMap { key in record.arguments[key].map { "\(key)=\($0)" } }
        let others = record.arguments.keys.filter { !order.contains($0) }.sorted().map { "\($0)=\(record.arguments[$0]!)" }
        let origin = record.remoteAddress.map { "\(record.origin) \($0)" } ?? record.origin
        self.init(
            time: record.time.timeIntervalSince1970, action: record.action, origin: origin, node: record.node,
            arguments: (known + others).joined(separator: " ")
        )
    }
}

extension BanRow {
    /// The row the `bans` view shows for `ban`.
    init(_ ban: Ban) {
        self.init(
            clientID: ban.clientID, until: ban.until?.timeIntervalSince1970, setAt: ban.setAt.timeIntervalSince1970,
            setBy: ban.setBy, node: ban.node
        )
    }
}
