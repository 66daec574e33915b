/// The help box drawn over the panes: commands (from `CommandParser.specs`, so it never drifts
/// from the parser), data escapes, and keys.
enum HelpOverlay {
    static func lines() -> [(text: String, heading: Bool)] {
        // No "Commands" heading, and the keys' heading shares its line: that is what keeps every
        // command and key line inside a 24-row terminal.
        var lines: [(String, Bool)] = []
        let usageWidth = CommandParser.specs.map { displayWidth(of: $0.usage) }.max() ?? 0
        let aliasWidth = CommandParser.specs.map { displayWidth(of: $0.aliases.joined(separator: ",")) }.max() ?? 0
        // `help` is this box: its line would only push the last key line out of a 24-row terminal.
        // Nor `quit` and `clear`: the key lines say them (q, c), and a 24-row terminal has no row to spare.
        for spec in CommandParser.specs where !["help", "quit", "clear"].contains(spec.name) {
            let usage = TextFit.pad(spec.usage, toWidth: usageWidth)
            let aliases = TextFit.pad(spec.aliases.joined(separator: ","), toWidth: aliasWidth)
            lines.append(("  \(usage)  \(aliases)  \(spec.summary)", false))
        }
        lines.append(("  data: rest of line; \\n \\r \\t \\\\ \\\" \\u{1F600}; quote tokens \"like this\"", false))
        lines.append(("Keys  Enter run  ↑↓ history  Tab complete  Ctrl-A/E/U/K/W edit  : command", true))
        lines.append(("  Esc navigate: ↑↓ PgUp PgDn Home End  Tab pane  Enter detail  Esc back", false))
        lines.append(("  m and / fill in the command line: Esc before typing clears it again", false))
        lines.append(("  k kick  B ban  m send to it  s sort  S reverse  / filter  G live  q quit", false))
        lines.append(("  a all nodes  b bans  A audit  n nodes  t topics  r rates  c clear", false))
        return lines
    }

    static let footer = "press any key to close"

    static func draw(_ canvas: inout Canvas, theme: Theme) {
        let content = lines()
        let contentWidth = max(content.map { displayWidth(of: $0.text) }.max() ?? 0, displayWidth(of: footer))
        let boxWidth = min(canvas.width - 2, contentWidth + 4)
        // Content, one blank line, footer, two borders — without the blank line when that is what
        // keeps the message line (the result of `help`) visible.
        let spacer = content.count + 4 <= canvas.height - 3 ? 1 : 0
        let boxHeight = min(canvas.height - 3, content.count + 3 + spacer)
        guard boxWidth >= 10, boxHeight >= 4 else { return }
        // Blank the panes so fragments of them do not show around the box.
        for row in 1..<max(1, canvas.height - 2) {
            canvas.fill(row: row, col: 0, width: canvas.width, style: theme.style())
        }
        let left = (canvas.width - boxWidth) / 2
        let top = (canvas.height - boxHeight) / 2
        let border = theme.style(.cyan, bold: true)
        let inner = boxWidth - 4

        for row in top..<(top + boxHeight) {
            canvas.fill(row: row, col: left, width: boxWidth, style: theme.style())
            canvas.put("│", row: row, col: left, style: border)
            canvas.put("│", row: row, col: left + boxWidth - 1, style: border)
        }
        let title = " sse-console help "
        canvas.put("┌" + String(repeating: "─", count: boxWidth - 2) + "┐", row: top, col: left, style: border)
        canvas.put(title, row: top, col: left + max(1, (boxWidth - displayWidth(of: title)) / 2), style: border, maxWidth: boxWidth - 2)
        canvas.put("└" + String(repeating: "─", count: boxWidth - 2) + "┘", row: top + boxHeight - 1, col: left, style: border)

        let available = boxHeight - 3 - spacer
        for (offset, line) in content.prefix(available).enumerated() {
            canvas.put(TextFit.truncate(line.text, toWidth: inner), row: top + 1 + offset, col: left + 2,
                       style: line.heading ? theme.style(.yellow, bold: true) : theme.style())
        }
        let footerText = TextFit.truncate(footer, toWidth: inner)
        canvas.put(footerText, row: top + boxHeight - 2,
                   col: left + 2 + max(0, (inner - displayWidth(of: footerText)) / 2), style: theme.style(.gray, dim: true))
    }
}
