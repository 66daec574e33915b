import Foundation

/// The log pane's entries as JSON lines, for `save FILE`: one object per entry, oldest first,
/// with the fields a `LogEntry` has (absent ones left out) and the time as ISO 8601 UTC and Unix
/// seconds, so `jq` and a spreadsheet can both read it.
public enum LogExport {
    private struct Line: Encodable {
        var time: String
        var unixTime: Double
        var source: String
        var kind: String
        var type: String?
        var target: String?
        var size: Int?
        var eventId: UInt64?
        var recipients: Int?
        var message: String
    }

    /// The entries the log pane shows with its current filter (all of them, not just a screenful).
    public static func visibleEntries(of log: EventLog) -> [LogEntry] {
        (0..<log.visibleCount).map(log.visibleEntry(at:))
    }

    /// One JSON object per entry, each followed by a newline.
    public static func jsonLines(_ entries: [LogEntry]) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var out = Data()
        for entry in entries {
            let line = Line(
                time: formatter.string(from: Date(timeIntervalSince1970: entry.time)), unixTime: entry.time,
                source: entry.source.rawValue, kind: entry.kind.rawValue, type: entry.type, target: entry.target,
                size: entry.size, eventId: entry.eventID, recipients: entry.recipients, message: entry.message)
            // Encoding a struct of strings and numbers cannot fail.
            out.append((try? encoder.encode(line)) ?? Data("{}".utf8))
            out.append(0x0A)
        }
        return out
    }
}
