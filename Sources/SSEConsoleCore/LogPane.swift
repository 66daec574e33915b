/// Renders the event log pane: title (count, filter, paused state) and the visible entries.
enum LogPane {
    struct Columns: Sendable {
        var showSource: Bool
        var type: Int
        var target: Int
        var size: Int

        init(width: Int) {
            if width >= 100 {
                self = Columns(showSource: true, type: 16, target: 16, size: 7)
            } else {
                self = Columns(showSource: false, type: 12, target: 10, size: 6)
            }
        }

        private init(showSource: Bool, type: Int, target: Int, size: Int) {
            self.showSource = showSource
            self.type = type
            self.target = target
            self.size = size
        }
    }

    static let timeWidth = 8
    static let sourceWidth = 7
    static let kindWidth = 11

    static func draw(
        _ canvas: inout Canvas, state: ConsoleState, geometry: LayoutGeometry, theme: Theme, utcOffset: Int
    ) {
        let log = state.log
        let focused = state.focus == .log
        var segments: [(text: String, style: CellStyle)] = [
            ("Log \(Format.thousands(log.count))", theme.style(focused ? .cyan : .default, bold: true)),
        ]
        if log.isPaused && log.visibleCount > geometry.logViewportHeight {
            segments.append(("[paused – End for live]", theme.style(.yellow, bold: true)))
        }
        if let filter = log.filter {
            let shown = TextFit.truncate(Format.oneLine(filter, maxCharacters: 64), toWidth: 24)
            segments.append(("filter \"\(shown)\": \(Format.thousands(log.visibleCount)) of \(Format.thousands(log.count))", theme.style(.magenta, bold: true)))
        }
        PaneTitle.draw(&canvas, row: geometry.logTitleRow, segments: segments, focused: focused, theme: theme)

        let entries = log.visibleEntries(height: geometry.logViewportHeight)
        if entries.isEmpty {
            let text = log.filter == nil ? "no events yet" : "no entries match the filter"
            canvas.put(text, row: geometry.logBody.lowerBound, col: 0, style: theme.style(.gray, dim: true))
        }
        let columns = Columns(width: canvas.width)
        for (offset, entry) in entries.enumerated() {
            drawEntry(&canvas, entry: entry, row: geometry.logBody.lowerBound + offset,
                      columns: columns, theme: theme, utcOffset: utcOffset)
            canvas.stats.logEntriesFormatted += 1
        }
        // The selected entry (Enter opens it), while the log has the focus: counted back from the
        // newest visible entry, which is the bottom row once the scroll offset is taken off.
        if focused && !entries.isEmpty {
            let offset = min(log.scrollOffset, log.maxOffset(viewportHeight: geometry.logViewportHeight))
            let fromBottom = state.logSelection - offset
            if fromBottom >= 0 && fromBottom < entries.count {
                let row = geometry.logBody.lowerBound + entries.count - 1 - fromBottom
                canvas.restyle(row: row, col: 0, width: canvas.width) { $0.reverse = true }
                if !theme.colors { canvas.put(">", row: row, col: canvas.width - 1, style: theme.style(reverse: true)) }
            }
        }
    }

    private static func drawEntry(
        _ canvas: inout Canvas, entry: LogEntry, row: Int, columns: Columns, theme: Theme, utcOffset: Int
    ) {
        let isError = entry.kind == .error || entry.kind == .offline
        var x = 0
        canvas.put(Format.clock(entry.time, utcOffset: utcOffset), row: row, col: x, style: theme.style(.gray))
        x += timeWidth + 1
        if columns.showSource {
            canvas.put(entry.source.rawValue, row: row, col: x, style: theme.style(.blue))
            x += sourceWidth + 1
        }
        let kind = (isError && !theme.colors ? "!" : "") + entry.kind.rawValue
        canvas.put(kind, row: row, col: x, style: theme.style(theme.kindColor(entry.kind), bold: isError), maxWidth: kindWidth)
        x += kindWidth + 1
        // Entries without type, target and size let the message use those columns.
        if entry.type != nil || entry.target != nil || entry.size != nil {
            if let type = entry.type {
                canvas.put(TextFit.truncate(Format.oneLine(type, maxCharacters: 160), toWidth: columns.type),
                           row: row, col: x, style: theme.style(bold: true))
            }
            x += columns.type + 1
            if let target = entry.target {
                canvas.put(TextFit.truncate(Format.oneLine(target, maxCharacters: 160), toWidth: columns.target),
                           row: row, col: x, style: theme.style(.magenta))
            }
            x += columns.target + 1
            if let size = entry.size {
                canvas.put(TextFit.pad(Format.bytes(size), toWidth: columns.size, alignRight: true),
                           row: row, col: x, style: theme.style(.gray))
            }
            x += columns.size + 1
        }
        let room = canvas.width - x
        guard room > 0 else { return }
        let preview = Format.oneLine(entry.message, maxCharacters: room + 1)
        canvas.put(TextFit.truncate(preview, toWidth: room), row: row, col: x,
                   style: theme.style(isError ? .red : .default))
    }
}
