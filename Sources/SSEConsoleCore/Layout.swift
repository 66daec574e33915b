/// Renders the whole console into a `Canvas`: a pure function of the state, the header numbers,
/// the clock and the screen size, so every screen can be tested without a terminal.
public enum Layout {
    /// Hint line shown instead of the command line in navigate mode.
    public static let navigateHints: [(key: String, action: String)] = [
        ("↑↓", "select"), ("Tab", "pane"), ("k", "kick"), ("B", "ban"), ("s", "sort"),
        ("/", "filter"), (":", "command"), ("?", "help"), ("q", "quit"),
    ]

    /// Hint line while the client detail view is open.
    public static let clientDetailHints: [(key: String, action: String)] = [
        ("Esc", "back"), ("↑↓", "scroll"), ("k", "kick"), ("B", "ban"), ("m", "send to it"), (":", "command"),
        ("?", "help"), ("q", "quit"),
    ]

    /// Hint line while the event detail view is open.
    public static let eventDetailHints: [(key: String, action: String)] = [
        ("Esc", "back"), ("↑↓", "scroll"), ("PgUp/PgDn", "page"), ("Home/End", "top/bottom"), (":", "command"),
        ("?", "help"), ("q", "quit"),
    ]

    /// The hint added on a cluster node, after `sort`.
    public static let clusterHint = (key: "n", action: "nodes")

    /// Prompt in front of the command line.
    public static let prompt = "> "

    /// Draws one frame.
    /// - Parameters:
    ///   - now: Unix seconds, for client ages.
    ///   - colors: `false` for monochrome (NO_COLOR): only attributes and text markers are used.
    ///   - utcOffset: seconds added to log timestamps (the local time zone offset).
    ///   - unicode: `false` when the terminal's locale is not UTF-8 (or `--ascii`): sparklines in ASCII.
    /// - Returns: the canvas; `cursor` is where the terminal cursor belongs (`nil`: hide it).
    public static func render(
        state: ConsoleState, header: HeaderStats, now: Double, size: ScreenSize, colors: Bool,
        utcOffset: Int = 0, unicode: Bool = true
    ) -> Canvas {
        var canvas = Canvas(width: size.cols, height: size.rows)
        guard size.cols > 0, size.rows > 0 else { return canvas }
        let theme = Theme(colors: colors)
        let geometry = state.geometry(for: size)

        HeaderBar.draw(&canvas, stats: header, theme: theme)
        if geometry.isTooSmall {
            let need = LayoutGeometry.minimumSize
            canvas.put("terminal too small (need \(need.cols)x\(need.rows))", row: 1, col: 0,
                       style: theme.style(.yellow, bold: true), maxWidth: size.cols)
        } else if let detail = state.detail {
            switch detail {
            case .client(let view):
                ClientDetailPane.draw(&canvas, view: view, geometry: geometry, now: now, tolerance: header.tolerance,
                                      theme: theme, utcOffset: utcOffset)
            case .event(let view):
                EventDetailPane.draw(&canvas, view: view, geometry: geometry, theme: theme, utcOffset: utcOffset)
            }
        } else {
            ClusterPane.draw(&canvas, state: state, geometry: geometry, theme: theme)
            if let panel = state.opsPanel {
                OpsPane.draw(&canvas, state: state, panel: panel, geometry: geometry, now: now, theme: theme, utcOffset: utcOffset)
            } else if state.isTopicsViewVisible {
                TopicsPane.draw(&canvas, state: state, geometry: geometry, now: now, theme: theme)
            } else {
                ClientsPane.draw(&canvas, state: state, geometry: geometry, tolerance: header.tolerance, now: now, theme: theme)
            }
            LogPane.draw(&canvas, state: state, geometry: geometry, theme: theme, utcOffset: utcOffset)
        }
        if !geometry.isTooSmall, let row = geometry.ratesRow, let rates = state.rates {
            RatesPane.draw(&canvas, history: rates, row: row, theme: theme, unicode: unicode)
        }
        if size.rows >= 3 { drawMessage(&canvas, message: state.message, row: geometry.messageRow, theme: theme) }
        if size.rows >= 2 { drawCommandLine(&canvas, state: state, row: geometry.commandRow, theme: theme) }
        if state.isHelpVisible {
            HelpOverlay.draw(&canvas, theme: theme)
            canvas.cursor = nil
        }
        return canvas
    }

    private static func drawMessage(_ canvas: inout Canvas, message: ResultMessage?, row: Int, theme: Theme) {
        guard let message else { return }
        let style: CellStyle
        var text = Format.oneLine(message.text, maxCharacters: canvas.width + 1)
        switch message.severity {
        case .ok: style = theme.style(.green)
        case .error:
            style = theme.style(.red, bold: true)
            if !theme.colors { text = "! " + text }
        case .info: style = theme.style()
        }
        canvas.put(TextFit.truncate(text, toWidth: canvas.width), row: row, col: 0, style: style)
    }

    private static func drawCommandLine(_ canvas: inout Canvas, state: ConsoleState, row: Int, theme: Theme) {
        switch state.mode {
        case .command:
            let promptWidth = canvas.put(prompt, row: row, col: 0, style: theme.style(.green, bold: true))
            let slice = state.editor.visibleSlice(width: canvas.width - promptWidth)
            canvas.put(slice.text, row: row, col: promptWidth, style: theme.style())
            canvas.cursor = CursorPosition(row: row, column: min(canvas.width - 1, promptWidth + slice.cursorColumn))
        case .navigate:
            var x = 0
            var hints = navigateHints
            switch state.detail {
            case .client: hints = clientDetailHints
            case .event: hints = eventDetailHints
            case nil: break
            }
            if state.cluster != nil, state.detail == nil, let sort = hints.firstIndex(where: { $0.key == "s" }) {
                hints.insert(clusterHint, at: sort + 1)
            }
            for hint in hints {
                let width = displayWidth(of: hint.key) + 1 + displayWidth(of: hint.action)
                guard x + width <= canvas.width else { break }
                x += canvas.put(hint.key, row: row, col: x, style: theme.style(.cyan, bold: true))
                x += canvas.put(" " + hint.action, row: row, col: x, style: theme.style()) + 2
            }
            canvas.cursor = nil
        }
    }
}
