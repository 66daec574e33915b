/// A column the topics view can be sorted by.
public enum TopicColumn: String, Sendable, Hashable, CaseIterable {
    case subscribers, topic, rate, events, last

    /// Name shown in the pane title.
    public var title: String {
        switch self {
        case .subscribers: "subscribers"
        case .topic: "topic"
        case .rate: "events/s"
        case .events: "events"
        case .last: "last event"
        }
    }
}

/// The topics view's model: every topic or pattern subscribed to (``TopicRow``), sorted, and how
/// far it is scrolled. The app replaces the rows with each snapshot; rendering formats only the
/// visible ones, so thousands of topics cost a sort per snapshot and a screenful per frame.
public struct TopicsView: Sendable, Hashable {
    public private(set) var rows: [TopicRow] = []
    public private(set) var sortColumn: TopicColumn = .subscribers
    /// Most first for numbers, A–Z for the topic, by default.
    public private(set) var sortDescending = true
    public private(set) var scrollOffset = 0

    public init() {}

    public mutating func update(_ rows: [TopicRow]) {
        self.rows = rows
        self.sort()
    }

    /// `s`: the next column, in its natural order.
    public mutating func cycleSortColumn() {
        let all = TopicColumn.allCases
        self.sortColumn = all[(all.firstIndex(of: self.sortColumn)! + 1) % all.count]
        self.sortDescending = self.sortColumn != .topic
        self.sort()
    }

    /// `S`: the other way round.
    public mutating func reverseSort() {
        self.sortDescending.toggle()
        self.sort()
    }

    public mutating func scroll(by delta: Int, viewportHeight: Int) {
        self.scrollOffset = max(0, min(self.scrollOffset + delta, self.rows.count - max(1, viewportHeight)))
    }

    public mutating func scrollToTop() { self.scrollOffset = 0 }

    public mutating func scrollToBottom(viewportHeight: Int) {
        self.scrollOffset = max(0, self.rows.count - max(1, viewportHeight))
    }

    /// The rows a viewport of `viewportHeight` shows.
    public func visibleRange(viewportHeight: Int) -> Range<Int> {
        guard viewportHeight > 0, !self.rows.isEmpty else { return 0..<0 }
        let offset = min(self.scrollOffset, max(0, self.rows.count - viewportHeight))
        return offset..<min(self.rows.count, offset + viewportHeight)
    }

    private mutating func sort() {
        let column = self.sortColumn
        let descending = self.sortDescending
        // Ties by topic, A–Z, so the order is stable between snapshots.
        self.rows.sort { a, b in
            let order: Bool?
            switch column {
            case .subscribers: order = a.subscribers == b.subscribers ? nil : a.subscribers > b.subscribers
            case .topic: order = a.topic == b.topic ? nil : a.topic > b.topic
            case .rate: order = a.eventsPerSecond == b.eventsPerSecond ? nil : a.eventsPerSecond > b.eventsPerSecond
            case .events: order = a.events == b.events ? nil : a.events > b.events
            case .last: order = a.lastEventAt == b.lastEventAt ? nil : (a.lastEventAt ?? -1) > (b.lastEventAt ?? -1)
            }
            guard let order else { return a.topic < b.topic }
            return order == descending
        }
    }
}

/// Renders the topics view in the clients pane's place: title, column header and the visible rows only.
enum TopicsPane {
    private struct Column {
        var title: String
        var width: Int
        var alignRight: Bool
        var sort: TopicColumn?
    }

    static func draw(_ canvas: inout Canvas, state: ConsoleState, geometry: LayoutGeometry, now: Double, theme: Theme) {
        let view = state.topics
        let height = geometry.clientsViewportHeight
        let range = view.visibleRange(viewportHeight: height)
        let focused = state.focus == .clients

        var segments: [(text: String, style: CellStyle)] = [
            ("Topics \(Format.thousands(view.rows.count))", theme.style(focused ? .cyan : .default, bold: true)),
            ("sort: \(view.sortColumn.title) \(view.sortDescending ? "▼" : "▲")", theme.style()),
            ("t: clients", theme.style(.gray)),
        ]
        if view.rows.count > height && !range.isEmpty {
            segments.insert(
                ("\(Format.thousands(range.lowerBound + 1))–\(Format.thousands(range.upperBound)) of \(Format.thousands(view.rows.count))", theme.style()),
                at: 2
            )
        }
        PaneTitle.draw(&canvas, row: geometry.clientsTitleRow, segments: segments, focused: focused, theme: theme)

        let gutter = ClientsPane.gutter
        let spacing = ClientsPane.spacing
        var columns = [
            Column(title: "TOPIC", width: 0, alignRight: false, sort: .topic),
            Column(title: "SUBS", width: 7, alignRight: true, sort: .subscribers),
            Column(title: "KIND", width: 7, alignRight: false, sort: nil),
            Column(title: "EV/S", width: 8, alignRight: true, sort: .rate),
            Column(title: "EVENTS", width: 10, alignRight: true, sort: .events),
            Column(title: "LAST", width: 8, alignRight: true, sort: .last),
        ]
        let fixed = columns.dropFirst().reduce(0) { $0 + $1.width } + spacing * (columns.count - 1)
        columns[0].width = max(8, canvas.width - gutter - fixed)
        var x = gutter
        var positions: [Int] = []
        for column in columns {
            positions.append(x)
            x += column.width + spacing
        }
        let headerStyle = theme.style(bold: true)
        for (column, position) in zip(columns, positions) {
            var title = column.title
            if column.sort == view.sortColumn { title += view.sortDescending ? "▼" : "▲" }
            canvas.put(TextFit.pad(title, toWidth: column.width, alignRight: column.alignRight),
                       row: geometry.clientsHeaderRow, col: position, style: headerStyle)
        }
        guard !view.rows.isEmpty else {
            canvas.put("no topics: no client is connected", row: geometry.clientsBody.lowerBound, col: gutter,
                       style: theme.style(.gray, dim: true))
            return
        }
        for (offset, index) in range.enumerated() {
            let row = view.rows[index]
            let texts = [
                TextFit.truncate(Format.oneLine(row.topic, maxCharacters: 200), toWidth: columns[0].width),
                Format.thousands(row.subscribers),
                row.kind.rawValue,
                row.eventsPerSecond < 10 ? String(format1: row.eventsPerSecond) : Format.thousands(Int(row.eventsPerSecond.rounded())),
                Format.thousands(row.events),
                row.lastEventAt.map { Format.duration(max(0, now - $0)) } ?? "–",
            ]
            let style = row.kind == .all ? theme.style(.gray) : theme.style()
            for ((column, position), text) in zip(zip(columns, positions), texts) {
                canvas.put(TextFit.pad(text, toWidth: column.width, alignRight: column.alignRight),
                           row: geometry.clientsBody.lowerBound + offset, col: position, style: style)
            }
        }
    }
}

extension String {
    /// One decimal: `2.5`.
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(tenths % 10)"
    }
}
