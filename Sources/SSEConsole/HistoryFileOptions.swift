import ArgumentParser
import Logging
import SSEBroker
import SSEBrokerSQLite

/// `--history-file` and its settings: the replay history kept in an SQLite file, so clients resume
/// with `Last-Event-ID` across a restart. Off by default (see BENCHMARKS.md for what it costs).
struct HistoryFileOptions: ParsableArguments {
    @Option(
        name: .customLong("history-file"),
        help: ArgumentHelp(
            "SQLite file keeping the event history and the bans across restarts (created if missing; off by default).",
            valueName: "path")
    )
    var path: String?

    @Option(
        name: .customLong("history-retention"),
        help: ArgumentHelp("Events kept in the history file (default: --history).", valueName: "n")
    )
    var retention: Int?

    @Option(
        name: .customLong("history-max-age"),
        help: ArgumentHelp("Seconds an event is kept in the history file (default: no limit).", valueName: "seconds")
    )
    var maxAge: Double?

    /// Checked with the rest of the command line; `historySize` is `--history`.
    func validate(historySize: Int) throws {
        if let retention, retention < 1 { throw ValidationError("--history-retention must be at least 1") }
        if let maxAge, !(maxAge.isFinite && maxAge > 0) { throw ValidationError("--history-max-age must be a positive number of seconds") }
        if self.path != nil && historySize < 1 {
            throw ValidationError("--history-file needs replay: --history must be at least 1")
        }
    }

    func retention(historySize: Int) -> SQLiteEventHistory.Retention {
        SQLiteEventHistory.Retention(
            maxCount: self.retention ?? historySize,
            maxAge: self.maxAge.map { .milliseconds(Int64(($0 * 1000).rounded())) }
        )
    }

    /// Opens the file (`nil` when `--history-file` is not given).
    func open(historySize: Int) throws(SQLiteEventHistoryError) -> SQLiteEventHistory? {
        guard let path = self.path else { return nil }
        return try SQLiteEventHistory(path: path, retention: self.retention(historySize: historySize), logger: Logger(label: "sse.history"))
    }

    /// Seeds `broker`'s replay history from the file and says so in the log. Before the server starts.
    static func restore(_ broker: Broker, from history: SQLiteEventHistory) throws(SQLiteEventHistoryError) {
        let events = try history.recentEvents(limit: broker.configuration.historySize)
        let floor = try history.idFloor()
        broker.restore(events, continuingAfter: floor)
        if floor > 0 {
            Logger(label: "sse.history").warning(
                "history: the previous run did not stop cleanly; event ids continue after \(floor) so that none it may have sent is reused")
        }
        Logger(label: "sse.history").notice(
            "history: \(events.count) events restored from \(history.path)",
            metadata: events.last.map { ["last-event-id": "\($0.id)"] } ?? [:])
    }
}
