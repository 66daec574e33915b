/// Renders the cluster pane: the node's link state in the title, then one row per node — name
/// (this node marked `*`), URL, clients, last event id, lag behind the head, last heard, alive.
enum ClusterPane {
    enum Field: Sendable {
        case name, url, clients, lastEventID, lag, heard, state
    }

    struct Column: Sendable {
        var field: Field
        var title: String
        var width: Int
        var alignRight: Bool
        /// Columns are dropped in increasing rank when the screen is narrow; 0 = never.
        var dropRank: Int
        var x = 0
    }

    static let gutter = 2
    static let spacing = 2
    static let nameWidths = (min: 10, preferred: 16, max: 24)
    static let urlWidths = (min: 15, max: 40)
    /// Silent for longer than this (two heartbeats) reads as late.
    static let lateAfter = 2.5

    static let allColumns: [Column] = [
        Column(field: .name, title: "NODE", width: nameWidths.min, alignRight: false, dropRank: 0),
        Column(field: .url, title: "URL", width: urlWidths.min, alignRight: false, dropRank: 3),
        Column(field: .clients, title: "CLIENTS", width: 7, alignRight: true, dropRank: 0),
        Column(field: .lastEventID, title: "LAST ID", width: 9, alignRight: true, dropRank: 2),
        Column(field: .lag, title: "LAG", width: 6, alignRight: true, dropRank: 0),
        Column(field: .heard, title: "HEARD", width: 6, alignRight: true, dropRank: 1),
        Column(field: .state, title: "STATE", width: 5, alignRight: false, dropRank: 0),
    ]

    /// Columns that fit `width`, with positions. The least important go first; the slack widens
    /// the name to a readable width, then the URL, then the name again.
    static func columns(forWidth width: Int) -> [Column] {
        var columns = allColumns
        func needed() -> Int {
            gutter + columns.reduce(0) { $0 + $1.width } + spacing * (columns.count - 1)
        }
        while needed() > width, let victim = columns.filter({ $0.dropRank > 0 }).min(by: { $0.dropRank < $1.dropRank }) {
            columns.removeAll { $0.field == victim.field }
        }
        var slack = max(0, width - needed())
        func grow(_ field: Field, upTo limit: Int) {
            guard let index = columns.firstIndex(where: { $0.field == field }) else { return }
            let growth = min(slack, max(0, limit - columns[index].width))
            columns[index].width += growth
            slack -= growth
        }
        grow(.name, upTo: nameWidths.preferred)
        grow(.url, upTo: urlWidths.max)
        grow(.name, upTo: nameWidths.max)
        var x = gutter
        for index in columns.indices {
            columns[index].x = x
            x += columns[index].width + spacing
        }
        return columns
    }

    static func draw(_ canvas: inout Canvas, state: ConsoleState, geometry: LayoutGeometry, theme: Theme) {
        guard geometry.showsCluster, let view = state.cluster else { return }
        let height = geometry.clusterViewportHeight
        let first = state.clampedClusterScroll(viewportHeight: height)
        let range = first..<min(view.nodes.count, first + height)
        let focused = state.focus == .cluster

        var segments: [(text: String, style: CellStyle)] = [
            ("Cluster \(Format.oneLine(view.nodeName, maxCharacters: 40))", theme.style(focused ? .cyan : .default, bold: true)),
        ]
        let stateColor = HeaderBar.stateColor(view.state)
        switch view.state {
        case .online: segments.append(("online", theme.style(stateColor, bold: true)))
        case .connecting: segments.append(("connecting…", theme.style(stateColor, bold: true)))
        case .offline(let reason, let retryIn):
            let marker = theme.colors ? "" : "! "
            let text = "\(marker)offline: \(ClusterView.shortReason(reason, width: 36)) · retry in \(Format.seconds(retryIn))"
            segments.append((text, theme.style(stateColor, bold: true)))
        }
        if view.nodes.count > height && !range.isEmpty {
            segments.append(("\(range.lowerBound + 1)–\(range.upperBound) of \(view.nodeCountText)", theme.style()))
        } else {
            segments.append((view.nodeCountText, theme.style()))
        }
        segments.append(("\(Format.thousands(view.clusterClients)) clients", theme.style()))
        segments.append(("head \(view.head)", theme.style()))
        PaneTitle.draw(&canvas, row: geometry.clusterTitleRow, segments: segments, focused: focused, theme: theme)

        let columns = columns(forWidth: canvas.width)
        for column in columns {
            canvas.put(TextFit.pad(column.title, toWidth: column.width, alignRight: column.alignRight),
                       row: geometry.clusterHeaderRow, col: column.x, style: theme.style(bold: true))
        }
        guard !view.nodes.isEmpty else {
            let text = view.isOnline ? "no heartbeat read yet" : "no nodes known while \(view.stateName)"
            canvas.put(text, row: geometry.clusterBody.lowerBound, col: gutter, style: theme.style(.gray, dim: true))
            return
        }
        for (offset, index) in range.enumerated() {
            drawRow(&canvas, node: view.nodes[index], row: geometry.clusterBody.lowerBound + offset,
                    columns: columns, theme: theme)
        }
    }

    private static func drawRow(_ canvas: inout Canvas, node: ClusterView.Node, row: Int, columns: [Column], theme: Theme) {
        let dead = !node.isAlive
        let base = dead ? theme.style(.gray, dim: true) : theme.style()
        if node.isSelf {
            canvas.put("*", row: row, col: 0, style: theme.style(.cyan, bold: true))
        }
        for column in columns {
            var style = base
            var text: String
            switch column.field {
            case .name:
                text = Format.oneLine(node.name, maxCharacters: 80)
                if node.isSelf { style.bold = true }
            case .url:
                text = Format.oneLine(node.url, maxCharacters: 120)
                // The scheme is the first thing to go: `127.0.0.1:8080` still says where it is.
                if displayWidth(of: text) > column.width, let range = text.firstRange(of: "://") {
                    text = String(text[range.upperBound...])
                }
            case .clients: text = Format.thousands(node.clients)
            case .lastEventID: text = "\(node.lastEventID)"
            case .lag:
                text = Format.thousands(Int(clamping: node.lag))
                if !dead { style = theme.style(lagColor(node.lag), bold: node.lag >= 100) }
            case .heard:
                text = heard(node.silentFor)
                if !dead && node.silentFor > lateAfter { style = theme.style(.yellow) }
            case .state:
                text = node.isAlive ? "alive" : (theme.colors ? "dead" : "dead!")
                style = node.isAlive ? theme.style(.green) : theme.style(.red, bold: true)
            }
            canvas.put(TextFit.pad(text, toWidth: column.width, alignRight: column.alignRight),
                       row: row, col: column.x, style: style)
        }
    }

    /// Green when caught up, yellow when a few events behind, red from 100.
    static func lagColor(_ lag: UInt64) -> Color {
        lag == 0 ? .green : lag < 100 ? .yellow : .red
    }

    /// `0.4s` under ten seconds (heartbeats are a second apart), then `12s`, `3m05s`.
    static func heard(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "–" }
        return seconds < 10 ? Format.oneDecimal(max(0, seconds)) + "s" : Format.duration(seconds)
    }
}
