/// A pane's title line: `── Clients 4 ── sort: id ▲ ─────── [focused] ──`.
enum PaneTitle {
    static func draw(
        _ canvas: inout Canvas, row: Int, segments: [(text: String, style: CellStyle)],
        focused: Bool, theme: Theme
    ) {
        let ruleStyle = theme.style(.gray)
        canvas.fill(row: row, col: 0, width: canvas.width, style: ruleStyle, character: "─")
        let right = focused ? " [focused] " : ""
        let rightWidth = displayWidth(of: right)
        let leftLimit = canvas.width - (rightWidth > 0 ? rightWidth + 3 : 2)
        var column = 2
        for (index, segment) in segments.enumerated() where column < leftLimit {
            // Only the first segment (the pane name) may be cut; later ones show whole or not at all.
            if index > 0 && column + displayWidth(of: segment.text) + 2 > leftLimit { break }
            let written = canvas.put(" \(segment.text) ", row: row, col: column, style: segment.style, maxWidth: leftLimit - column)
            column += written + 1
        }
        if focused && canvas.width - rightWidth - 2 >= column {
            canvas.put(right, row: row, col: canvas.width - rightWidth - 2, style: theme.style(.cyan, bold: true))
        }
    }
}
