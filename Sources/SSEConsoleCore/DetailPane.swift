/// What the client and event detail views share: a title (theirs, then the scroll position when the
/// lines do not fit, then "Esc: back") on the body's first row, and one screenful of their lines
/// from the scroll offset, clamped so the last screenful stays full.
enum DetailPane {
    typealias Segment = (text: String, style: CellStyle)

    static func draw(
        _ canvas: inout Canvas, body: Range<Int>, title: [Segment], lines all: [[Segment]], scrollOffset: Int, theme: Theme
    ) {
        let height = body.count - 1
        let offset = max(0, min(scrollOffset, all.count - height))
        var segments = title
        if all.count > height {
            segments.append(("\(offset + 1)–\(min(all.count, offset + height)) of \(all.count)", theme.style()))
        }
        segments.append(("Esc: back", theme.style(.gray)))
        PaneTitle.draw(&canvas, row: body.lowerBound, segments: segments, focused: false, theme: theme)
        for (index, line) in all.dropFirst(offset).prefix(height).enumerated() {
            var x = 1
            for segment in line where x < canvas.width {
                x += canvas.put(segment.text, row: body.lowerBound + 1 + index, col: x, style: segment.style,
                                maxWidth: canvas.width - x)
            }
        }
    }
}
