/// Renders the clients pane: title, column header and the visible rows only.
enum ClientsPane {
    enum Field: Sendable {
        case id, node, address, age, events, errors, totalErrors, backlog, sent, topics, httpVersion
    }

    struct Column: Sendable {
        var field: Field
        var title: String
        var width: Int
        var alignRight: Bool
        var sort: ClientColumn?
        /// Columns are dropped in increasing rank when the screen is narrow; 0 = never.
        var dropRank: Int
        var x = 0
    }

    static let gutter = 2
    static let spacing = 2
    static let idWidths = (min: 10, max: 32)
    static let addressMaxWidth = 47
    /// The topics column takes what is left after the id and the address, between these widths.
    static let topicsWidths = (min: 8, max: 48)

    static let allColumns: [Column] = [
        Column(field: .id, title: "ID", width: idWidths.min, alignRight: false, sort: .id, dropRank: 0),
        Column(field: .address, title: "ADDRESS", width: 21, alignRight: false, sort: .address, dropRank: 3),
        Column(field: .age, title: "AGE", width: 8, alignRight: true, sort: .age, dropRank: 0),
        Column(field: .events, title: "EVENTS", width: 9, alignRight: true, sort: .events, dropRank: 4),
        Column(field: .errors, title: "ERR", width: 6, alignRight: true, sort: .errors, dropRank: 0),
        Column(field: .totalErrors, title: "TOT.ERR", width: 8, alignRight: true, sort: .totalErrors, dropRank: 2),
        Column(field: .backlog, title: "BACKLOG", width: 8, alignRight: true, sort: .backlog, dropRank: 5),
        Column(field: .sent, title: "SENT", width: 7, alignRight: true, sort: nil, dropRank: 1),
    ]

    /// Columns that fit `width`, with positions. Least important columns go first; the id column
    /// takes the slack up to its maximum, then the address. Every node's table keeps its topics and
    /// events at 80 columns: its columns close up to one space before either goes.
    static func columns(forWidth width: Int, showsNode: Bool = false, showsProtocol: Bool = false) -> [Column] {
        var columns = allColumns
        if showsProtocol {
            // Only when protocols are mixed (or all h2): after the address, dropped before it.
            let after = columns.firstIndex { $0.field == .address } ?? 0
            columns.insert(Column(field: .httpVersion, title: "PROTO", width: 5, alignRight: false, sort: nil, dropRank: 2), at: after + 1)
        }
        if showsNode {
            // Every node's connections: which node is as important as the id, and the topics matter
            // more than the bytes sent (a snapshot's byte count is seconds old anyway).
            columns.removeAll { $0.field == .sent }
            // Narrow: the address (which client is it?) outlives the backlog.
            for index in columns.indices where columns[index].field == .address { columns[index].dropRank = 6 }
            for index in columns.indices where columns[index].field == .backlog { columns[index].dropRank = 3 }
            columns.insert(Column(field: .node, title: "NODE", width: 10, alignRight: false, sort: nil, dropRank: 0), at: 1)
            // Which client gets what, on which node: the topics go last of all.
            columns.append(Column(field: .topics, title: "TOPICS", width: topicsWidths.min, alignRight: false, sort: nil, dropRank: 7))
        }
        var spacing = Self.spacing
        func needed() -> Int {
            gutter + columns.reduce(0) { $0 + $1.width } + spacing * (columns.count - 1)
        }
        while needed() > width, let victim = columns.filter({ $0.dropRank > 0 }).min(by: { $0.dropRank < $1.dropRank }) {
            if showsNode && spacing > 1 && victim.dropRank >= 4 {
                spacing = 1
                continue
            }
            columns.removeAll { $0.field == victim.field }
        }
        var slack = max(0, width - needed())
        if let topics = columns.firstIndex(where: { $0.field == .topics }) {
            let growth = min(slack, topicsWidths.max - topicsWidths.min)
            columns[topics].width += growth
            slack -= growth
        }
        let idGrowth = min(slack, idWidths.max - idWidths.min)
        columns[0].width += idGrowth
        slack -= idGrowth
        if let address = columns.firstIndex(where: { $0.field == .address }) {
            let growth = min(slack, addressMaxWidth - columns[address].width)
            columns[address].width += growth
            slack -= growth
        }
        // The connection's topics, on screens wide enough for everything else (truncated to fit).
        if !showsNode && slack >= spacing + topicsWidths.min {
            let width = min(slack - spacing, topicsWidths.max)
            columns.append(Column(field: .topics, title: "TOPICS", width: width, alignRight: false, sort: nil, dropRank: 0))
        }
        var x = gutter
        for index in columns.indices {
            columns[index].x = x
            x += columns[index].width + spacing
        }
        return columns
    }

    static func draw(
        _ canvas: inout Canvas, state: ConsoleState, geometry: LayoutGeometry,
        tolerance: Int, now: Double, theme: Theme
    ) {
        let table = state.clients
        let height = geometry.clientsViewportHeight
        let range = table.visibleRange(viewportHeight: height)
        let focused = state.focus == .clients

        var segments: [(text: String, style: CellStyle)] = []
        let connected = table.connectedCount
        var count = "Clients \(Format.thousands(connected))"
        if state.clientScope == .allNodes { count += " · all nodes" }
        if table.count > connected { count += " (\(Format.thousands(table.count - connected)) leaving)" }
        segments.append((count, theme.style(focused ? .cyan : .default, bold: true)))
        segments.append(("sort: \(table.sortColumn.title) \(table.sortAscending ? "▲" : "▼")", theme.style()))
        if table.count > height && !range.isEmpty {
            segments.append(("\(Format.thousands(range.lowerBound + 1))–\(Format.thousands(range.upperBound)) of \(Format.thousands(table.count))", theme.style()))
        }
        PaneTitle.draw(&canvas, row: geometry.clientsTitleRow, segments: segments, focused: focused, theme: theme)

        let columns = columns(forWidth: canvas.width, showsNode: state.clientScope == .allNodes, showsProtocol: table.hasHTTP2)
        let headerStyle = theme.style(bold: true)
        for column in columns {
            var title = column.title
            if column.sort == table.sortColumn { title += table.sortAscending ? "▲" : "▼" }
            canvas.put(TextFit.pad(title, toWidth: column.width, alignRight: column.alignRight),
                       row: geometry.clientsHeaderRow, col: column.x, style: headerStyle)
        }

        guard !table.rows.isEmpty else {
            canvas.put("no clients connected", row: geometry.clientsBody.lowerBound, col: gutter,
                       style: theme.style(.gray, dim: true))
            return
        }
        let highlight = focused && state.mode == .navigate
        for (offset, index) in range.enumerated() {
            let row = geometry.clientsBody.lowerBound + offset
            let client = table.rows[index]
            let selected = index == table.selectedIndex
            drawRow(&canvas, client: client, row: row, columns: columns, tolerance: tolerance, now: now, theme: theme)
            if selected {
                canvas.put(">", row: row, col: 0, style: theme.style(bold: true))
                if highlight {
                    canvas.restyle(row: row, col: 0, width: canvas.width) { $0.reverse = true }
                }
            }
            canvas.stats.clientRowsFormatted += 1
        }
    }

    private static func drawRow(
        _ canvas: inout Canvas, client: ClientRow, row: Int, columns: [Column],
        tolerance: Int, now: Double, theme: Theme
    ) {
        let departed = client.departure != nil
        let base = departed ? theme.style(.gray, dim: true) : theme.style()
        for column in columns {
            var style = base
            let text: String
            switch column.field {
            case .id: text = Format.oneLine(client.id, maxCharacters: 160)
            case .node: text = Format.oneLine(client.node ?? "-", maxCharacters: 80)
            case .address: text = Format.oneLine(client.remoteAddress, maxCharacters: 160)
            case .age: text = client.departure?.reason.label ?? Format.duration(now - client.connectedAt)
            case .events: text = Format.thousands(client.eventsSent)
            case .errors:
                let color = theme.errorLevelColor(client.consecutiveErrors, tolerance: tolerance)
                let critical = color == .red
                text = "\(client.consecutiveErrors)/\(tolerance)" + (critical && !theme.colors ? "!" : "")
                style = theme.style(departed ? .gray : color, bold: critical, dim: departed)
            case .totalErrors: text = Format.thousands(client.totalErrors)
            case .backlog: text = Format.bytes(client.backlogBytes)
            case .sent: text = Format.bytes(client.bytesSent)
            case .httpVersion: text = client.httpVersion == "HTTP/1.1" ? "1.1" : client.httpVersion
            case .topics:
                let topics = client.topics.isEmpty ? TopicTable.allTopicsName : client.topics.joined(separator: ",")
                text = TextFit.truncate(Format.oneLine(topics, maxCharacters: 400), toWidth: column.width)
            }
            canvas.put(TextFit.pad(text, toWidth: column.width, alignRight: column.alignRight),
                       row: row, col: column.x, style: style)
        }
    }
}
