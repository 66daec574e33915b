/// The operator's lists shown in the clients pane's place: the bans in force (`bans`, `b`) and the
/// audit trail (`audit`, `A`).
public enum OpsPanel: String, Sendable, Hashable {
    case bans, audit
}

/// One ban, as the bans view shows it. Times are Unix seconds.
public struct BanRow: Sendable, Hashable {
    public var clientID: String
    /// `nil`: until unban.
    public var until: Double?
    public var setAt: Double
    public var setBy: String
    /// The node it was set on (cluster mode).
    public var node: String?

    public init(clientID: String, until: Double?, setAt: Double, setBy: String, node: String? = nil) {
        self.clientID = clientID
        self.until = until
        self.setAt = setAt
        self.setBy = setBy
        self.node = node
    }
}

/// One audit record, as the audit view shows it.
public struct AuditRow: Sendable, Hashable {
    public var time: Double
    public var action: String
    /// `console`, `http 10.0.0.7:53012`, `api`.
    public var origin: String
    public var node: String?
    /// The arguments, already in `key=value` form, in a stable order.
    public var arguments: String

    public init(time: Double, action: String, origin: String, node: String?, arguments: String) {
        self.time = time
        self.action = action
        self.origin = origin
        self.node = node
        self.arguments = arguments
    }
}

/// Rows with a selection and a scroll position, replaced by each snapshot; the selection follows
/// its row's key across snapshots. Rendering formats only the visible rows.
public struct SelectableList<Row: Sendable & Hashable>: Sendable, Hashable {
    public private(set) var rows: [Row] = []
    public private(set) var selectedIndex = 0
    public private(set) var scrollOffset = 0

    public init() {}

    /// Replaces the rows, keeping the selection on the row with the same `key` if it is still there.
    public mutating func update(_ rows: [Row], key: (Row) -> String) {
        let selectedKey = self.selectedRow.map(key)
        self.rows = rows
        if let selectedKey, let index = rows.firstIndex(where: { key($0) == selectedKey }) {
            self.selectedIndex = index
        } else {
            self.selectedIndex = max(0, min(self.selectedIndex, rows.count - 1))
        }
    }

    public var selectedRow: Row? {
        self.rows.indices.contains(self.selectedIndex) ? self.rows[self.selectedIndex] : nil
    }

    /// Moves the selection by `delta` rows (clamped) and scrolls it into a viewport of `height`.
    public mutating func moveSelection(by delta: Int, viewportHeight height: Int) {
        guard !self.rows.isEmpty else { return }
        self.selectedIndex = max(0, min(self.rows.count - 1, self.selectedIndex + delta))
        self.scrollToSelection(viewportHeight: height)
    }

    public mutating func scrollToSelection(viewportHeight height: Int) {
        let height = max(1, height)
        if self.selectedIndex < self.scrollOffset { self.scrollOffset = self.selectedIndex }
        if self.selectedIndex >= self.scrollOffset + height { self.scrollOffset = self.selectedIndex - height + 1 }
        self.scrollOffset = max(0, min(self.scrollOffset, self.rows.count - height))
    }

    /// The rows a viewport of `height` shows (the selection is kept in view after a resize).
    public func visibleRange(viewportHeight height: Int) -> Range<Int> {
        guard height > 0, !self.rows.isEmpty else { return 0..<0 }
        var offset = min(self.scrollOffset, max(0, self.rows.count - height))
        if self.selectedIndex >= offset + height { offset = self.selectedIndex - height + 1 }
        if self.selectedIndex < offset { offset = self.selectedIndex }
        return offset..<min(self.rows.count, offset + height)
    }
}

/// Draws the bans or the audit view in the clients pane's place: title, column header, visible rows.
enum OpsPane {
    struct Column {
        var title: String
        var width: Int
        var alignRight = false
    }

    static let gutter = 2
    static let spacing = 2

    /// Lays out `columns` from `x = gutter`, the last one taking what is left (at least 8).
    static func positions(_ columns: [Column], width: Int) -> [(Column, Int)] {
        var out: [(Column, Int)] = []
        var x = gutter
        for (index, column) in columns.enumerated() {
            var column = column
            if index == columns.count - 1 { column.width = max(8, width - x) }
            guard x + min(column.width, 4) <= width else { break }
            column.width = min(column.width, width - x)
            out.append((column, x))
            x += column.width + spacing
        }
        return out
    }

    static func draw(
        _ canvas: inout Canvas, state: ConsoleState, panel: OpsPanel, geometry: LayoutGeometry, now: Double,
        theme: Theme, utcOffset: Int
    ) {
        let height = geometry.clientsViewportHeight
        let focused = state.focus == .clients
        let highlight = focused && state.mode == .navigate
        let count: Int
        let title: String
        let hint: String
        let columns: [Column]
        let range: Range<Int>
        let selected: Int
        switch panel {
        case .bans:
            count = state.bans.rows.count
            title = "Bans \(Format.thousands(count))"
            hint = "u: unban · b: clients"
            // NODE only matters in a cluster; it is empty stand-alone. Narrower than every column at
            // full width: times without the year and a shorter id, so who set a ban still shows.
            let full = canvas.width >= Self.bansFullWidth
            columns = [
                Column(title: "ID", width: full ? 24 : 14), Column(title: "UNTIL", width: full ? 19 : 14),
                Column(title: "SET", width: full ? 19 : 14), Column(title: "NODE", width: full ? 12 : 9),
                Column(title: "BY", width: 20),
            ]
            range = state.bans.visibleRange(viewportHeight: height)
            selected = state.bans.selectedIndex
        case .audit:
            count = state.audit.rows.count
            title = "Audit \(Format.thousands(count))"
            hint = "newest first · A: clients"
            columns = [
                Column(title: "TIME", width: 8), Column(title: "ACTION", width: 11), Column(title: "ORIGIN", width: 21),
                Column(title: "NODE", width: 10), Column(title: "ARGUMENTS", width: 20),
            ]
            range = state.audit.visibleRange(viewportHeight: height)
            selected = state.audit.selectedIndex
        }
        var segments: [(text: String, style: CellStyle)] = [(title, theme.style(focused ? .cyan : .default, bold: true))]
        if count > height && !range.isEmpty {
            segments.append(("\(Format.thousands(range.lowerBound + 1))–\(Format.thousands(range.upperBound)) of \(Format.thousands(count))", theme.style()))
        }
        segments.append((hint, theme.style(.gray)))
        PaneTitle.draw(&canvas, row: geometry.clientsTitleRow, segments: segments, focused: focused, theme: theme)

        let placed = positions(columns, width: canvas.width)
        for (column, x) in placed {
            canvas.put(TextFit.pad(column.title, toWidth: column.width, alignRight: column.alignRight),
                       row: geometry.clientsHeaderRow, col: x, style: theme.style(bold: true))
        }
        guard count > 0 else {
            let empty = panel == .bans ? "no client is banned" : "no action recorded yet"
            canvas.put(empty, row: geometry.clientsBody.lowerBound, col: gutter, style: theme.style(.gray, dim: true))
            return
        }
        for (offset, index) in range.enumerated() {
            let row = geometry.clientsBody.lowerBound + offset
            let cells: [String]
            switch panel {
            case .bans:
                let ban = state.bans.rows[index]
                let full = canvas.width >= Self.bansFullWidth
                func time(_ at: Double) -> String {
                    full ? stamp(at, utcOffset: utcOffset) : String(stamp(at, utcOffset: utcOffset).dropFirst(5))
                }
                // Shown until the next snapshot drops it; the time of day is enough then.
                let until = ban.until.map { now >= $0 ? "ended " + Format.clock($0, utcOffset: utcOffset) : time($0) }
                cells = [
                    Format.oneLine(ban.clientID, maxCharacters: 160),
                    until ?? "until unban",
                    time(ban.setAt),
                    Format.oneLine(ban.node ?? "-", maxCharacters: 80),
                    Format.oneLine(ban.setBy, maxCharacters: 200),
                ]
            case .audit:
                let record = state.audit.rows[index]
                cells = [
                    Format.clock(record.time, utcOffset: utcOffset), record.action,
                    Format.oneLine(record.origin, maxCharacters: 120), Format.oneLine(record.node ?? "-", maxCharacters: 80),
                    Format.oneLine(record.arguments, maxCharacters: 400),
                ]
            }
            for ((column, x), text) in zip(placed, cells) {
                canvas.put(TextFit.pad(TextFit.truncate(text, toWidth: column.width), toWidth: column.width, alignRight: column.alignRight),
                           row: row, col: x, style: theme.style())
            }
            if index == selected {
                canvas.put(">", row: row, col: 0, style: theme.style(bold: true))
                if highlight { canvas.restyle(row: row, col: 0, width: canvas.width) { $0.reverse = true } }
            }
            canvas.stats.clientRowsFormatted += 1
        }
    }

    /// The bans view's width for every column at full width; narrower, times lose their year.
    static let bansFullWidth = 104

    /// `YYYY-MM-DD HH:MM:SS` in the console's time zone (bans last days; a clock alone is ambiguous).
    static func stamp(_ time: Double, utcOffset: Int) -> String {
        let seconds = Int64((time + Double(utcOffset)).rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil-from-days (H. Hinnant), proleptic Gregorian.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day)) \(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60))"
    }
}
