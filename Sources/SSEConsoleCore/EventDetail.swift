import Foundation

/// The event detail view's state: the log entry it was opened on, the event's whole data once the
/// app has found it, its lines (pretty-printed when the data is JSON), and the scroll position.
public struct EventDetailView: Sendable, Hashable {
    /// The data shown, in full or cut at ``maxDataBytes``.
    public enum DataState: Sendable, Hashable {
        /// The app has not answered yet.
        case loading
        /// The whole data (or its first ``maxDataBytes`` bytes; `totalBytes` says how many it has).
        case loaded(String, totalBytes: Int)
        /// The event is no longer kept; only the log's preview is left.
        case unavailable(String)
    }

    /// What the view holds of one event's data at most; a bigger event shows its start and says so.
    public static let maxDataBytes = 64 * 1024

    public let entry: LogEntry
    public private(set) var data: DataState = .loading
    /// The data as displayed, one string per line (before wrapping to the screen).
    public private(set) var dataLines: [String] = []
    /// Whether ``dataLines`` is the data re-indented as JSON.
    public private(set) var isPrettyJSON = false
    public private(set) var scrollOffset = 0

    public init(entry: LogEntry) {
        self.entry = entry
    }

    /// Sets the data the app found for the event (`nil`: it is no longer kept).
    public mutating func setData(_ text: String?, totalBytes: Int? = nil) {
        guard let text else {
            data = .unavailable(entry.message)
            dataLines = Self.splitLines(entry.message)
            isPrettyJSON = false
            return
        }
        data = .loaded(text, totalBytes: totalBytes ?? text.utf8.count)
        if let pretty = Self.prettyJSON(text) {
            dataLines = Self.splitLines(pretty)
            isPrettyJSON = true
        } else {
            dataLines = Self.splitLines(text)
            isPrettyJSON = false
        }
    }

    /// Moves `delta` lines down (negative: up), within the `lineCount` lines the view has.
    public mutating func scroll(by delta: Int, lineCount: Int, viewportHeight: Int) {
        scrollOffset = max(0, min(scrollOffset + delta, lineCount - max(1, viewportHeight)))
    }


    /// `text` re-indented with sorted keys, or `nil` when it is not a JSON object or array.
    static func prettyJSON(_ text: String) -> String? {
        let trimmed = text.drop { $0.isWhitespace }
        guard let first = trimmed.first, first == "{" || first == "[" else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)),
              let pretty = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return nil }
        return String(decoding: pretty, as: UTF8.self)
    }

    /// Splits on LF, CRLF and CR, as an SSE stream does.
    static func splitLines(_ text: String) -> [String] {
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        var previousWasCR = false
        for scalar in text.unicodeScalars {
            if scalar == "\n" && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = scalar == "\r"
            if scalar == "\n" || scalar == "\r" {
                lines.append(String(current))
                current = String.UnicodeScalarView()
            } else {
                current.append(scalar)
            }
        }
        lines.append(String(current))
        return lines
    }
}

/// Renders the event detail view in the panes' place: a title, the event's fields, then its data
/// line by line, long lines wrapped, with a line-number gutter so wrapped lines read as one.
enum EventDetailPane {
    typealias Segment = (text: String, style: CellStyle)
    typealias Line = [Segment]

    static func draw(
        _ canvas: inout Canvas, view: EventDetailView, geometry: LayoutGeometry, theme: Theme, utcOffset: Int
    ) {
        let body = geometry.detailBody
        guard body.count >= 2 else { return }
        let all = lines(view, width: canvas.width, theme: theme, utcOffset: utcOffset)
        let entry = view.entry
        var segments: [Segment] = [
            ("Event " + (entry.eventID.map { "#\($0)" } ?? "(no id)"), theme.style(.cyan, bold: true)),
        ]
        if let type = entry.type { segments.append((Format.oneLine(type, maxCharacters: 40), theme.style(bold: true))) }
        DetailPane.draw(&canvas, body: body, title: segments, lines: all, scrollOffset: view.scrollOffset, theme: theme)
    }

    /// How many lines the view has at `width` (for scrolling).
    static func lineCount(_ view: EventDetailView, width: Int) -> Int {
        lines(view, width: width, theme: Theme(colors: false), utcOffset: 0).count
    }

    static func lines(_ view: EventDetailView, width: Int, theme: Theme, utcOffset: Int) -> [Line] {
        let entry = view.entry
        let label = theme.style(.gray)
        let value = theme.style(bold: true)
        let inner = max(1, width - 2)
        let labelWidth = 11
        var fields: [(String, String)] = [
            ("id", entry.eventID.map(String.init) ?? "–"),
            ("type", entry.type.map { Format.oneLine($0, maxCharacters: 200) } ?? "message"),
            ("origin", entry.source.rawValue),
            ("target", entry.target.map { Format.oneLine($0, maxCharacters: 200) } ?? "all clients (broadcast)"),
            ("recipients", entry.recipients.map { Format.thousands($0) + " connections on this node" } ?? "–"),
            ("size", entry.size.map { "\(Format.thousands($0)) bytes" } ?? "–"),
            ("time", Format.clock(entry.time, utcOffset: utcOffset)),
        ]
        if entry.eventID == nil { fields.removeFirst() }
        var result: [Line] = fields.map { field in
            [(TextFit.pad(field.0, toWidth: labelWidth), label),
             (TextFit.truncate(field.1, toWidth: max(1, inner - labelWidth)), value)]
        }
        result.append([])
        let heading: String
        switch view.data {
        case .loading: heading = "Data (looking it up…)"
        case .unavailable: heading = "Data — no longer kept by the console; the log's preview:"
        case .loaded(_, let total):
            let count = view.dataLines.count
            let kind = view.isPrettyJSON ? "JSON, pretty-printed" : "\(count) line\(count == 1 ? "" : "s")"
            let cut = total > EventDetailView.maxDataBytes
                ? " — first \(Format.bytes(EventDetailView.maxDataBytes)) of \(Format.bytes(total))" : ""
            heading = "Data (\(kind))\(cut)"
        }
        result.append([(heading, theme.style(.yellow, bold: true))])
        guard !view.dataLines.isEmpty else { return result }
        let gutter = max(3, String(view.dataLines.count).count) + 1
        let room = max(1, inner - gutter - 1)
        for (number, line) in view.dataLines.enumerated() {
            let pieces = wrap(line, width: room)
            for (index, piece) in pieces.enumerated() {
                // A wrapped line's continuations carry an arrow instead of a number.
                let mark = TextFit.pad(index == 0 ? String(number + 1) : "↪", toWidth: gutter - 1, alignRight: true)
                result.append([(mark + " ", theme.style(.gray, dim: true)), (piece, theme.style())])
            }
        }
        return result
    }

    /// `line` cut into pieces of at most `width` columns (an empty line stays one empty piece).
    /// Tabs and other control characters show as the canvas draws them.
    static func wrap(_ line: String, width: Int) -> [String] {
        guard displayWidth(of: line) > width else { return [line] }
        var pieces: [String] = []
        var current = ""
        var used = 0
        for character in line {
            let w = max(1, displayWidth(of: character))
            if used + w > width && !current.isEmpty {
                pieces.append(current)
                current = ""
                used = 0
            }
            current.append(character)
            used += w
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces
    }
}
