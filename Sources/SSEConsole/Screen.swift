import CNcurses
import Foundation
import SSEConsoleCore

/// The terminal, through ncursesw. The only type that calls curses.
///
/// Not thread-safe and not `Sendable`: curses keeps global state, so one thread (the console's UI
/// thread) creates the screen, draws, reads keys and ends it.
final class Screen {
    /// Whether colours are used (off for `NO_COLOR` and terminals without colour).
    let colors: Bool
    private var pairs: [CellStyleColors: Int16] = [:]
    private var isActive = true

    private struct CellStyleColors: Hashable {
        var foreground: Color
        var background: Color
    }

    /// Takes over the terminal: raw keys (Ctrl-C arrives as a key, so quitting restores the
    /// terminal), no echo, keypad decoding, a short Esc delay.
    /// Whether the terminal takes UTF-8 (its locale's codeset), so block characters can be drawn;
    /// `false` also with `--ascii`.
    let unicode: Bool

    init(noColor: Bool, ascii: Bool = false) {
        setlocale(LC_ALL, "")
        self.unicode = !ascii && String(cString: nl_langinfo(nl_item(CODESET))).uppercased().replacing("-", with: "") == "UTF8"
        initscr()
        raw()
        noecho()
        nonl()
        keypad(shim_stdscr(), true)
        set_escdelay(25)
        // tmux and screen send Home and End as `ESC [1~` and `ESC [4~` whatever TERM says; with
        // TERM=xterm-256color inside them (common) curses would read Esc and three characters —
        // and Esc leaves a detail view. Known sequences are not affected.
        for (sequence, code) in [("\u{1B}[1~", KEY_HOME), ("\u{1B}[4~", KEY_END), ("\u{1B}[7~", KEY_HOME), ("\u{1B}[8~", KEY_END)] {
            define_key(sequence, code)
        }
        wtimeout(shim_stdscr(), 50)
        if !noColor && has_colors() {
            start_color()
            use_default_colors()
            self.colors = true
        } else {
            self.colors = false
        }
        // Whatever way the process ends (a fatal error included), leave the terminal usable.
        // (Only if still in curses mode: a second endwin re-emits the cursor restore and the
        // shell's next line overwrites ours.)
        atexit {
            if !isendwin() { endwin() }
        }
    }

    /// The terminal size now.
    var size: ScreenSize {
        ScreenSize(cols: Int(shim_cols()), rows: Int(shim_lines()))
    }

    /// Draws `canvas` and moves the cursor; curses sends only what changed.
    func draw(_ canvas: Canvas, clearFirst: Bool = false) {
        if clearFirst { wclear(shim_stdscr()) }
        for row in 0..<canvas.height {
            var column = 0
            for run in canvas.runs(row: row) {
                if run.column > column {
                    self.apply(.plain)
                    mvaddstr(Int32(row), Int32(column), String(repeating: " ", count: run.column - column))
                }
                self.apply(run.style)
                mvaddstr(Int32(row), Int32(run.column), run.text)
                column = run.column + run.width
            }
            if column < canvas.width {
                self.apply(.plain)
                // The bottom-right cell cannot be written without scrolling: clear to the end instead.
                move(Int32(row), Int32(column))
                clrtoeol()
            }
        }
        if let cursor = canvas.cursor {
            curs_set(1)
            move(Int32(cursor.row), Int32(cursor.column))
        } else {
            curs_set(0)
        }
        refresh()
    }

    /// Waits up to 50 ms for a key.
    func readKey() -> Key? {
        var character: wint_t = 0
        switch shim_get_wch(&character) {
        case KEY_CODE_YES:
            return Self.key(code: Int32(character))
        case OK:
            return Self.key(character: UInt32(character))
        default:
            return nil
        }
    }

    /// Gives the terminal back. Idempotent.
    func end() {
        guard self.isActive else { return }
        self.isActive = false
        curs_set(1)
        endwin()
    }

    private func apply(_ style: CellStyle) {
        var attributes = shim_a_normal()
        if style.bold { attributes |= shim_a_bold() }
        if style.dim { attributes |= shim_a_dim() }
        if style.reverse { attributes |= shim_a_reverse() }
        let pair = self.colors ? self.pair(foreground: style.foreground, background: style.background) : 0
        _ = shim_set_style(attributes, pair)
    }

    private func pair(foreground: Color, background: Color) -> Int16 {
        if foreground == .default && background == .default { return 0 }
        let key = CellStyleColors(foreground: foreground, background: background)
        if let pair = self.pairs[key] { return pair }
        let next = Int16(self.pairs.count + 1)
        guard Int32(next) < shim_color_pairs() else { return 0 }
        init_pair(next, self.cursesColor(foreground), self.cursesColor(background))
        self.pairs[key] = next
        return next
    }

    private func cursesColor(_ color: Color) -> Int16 {
        switch color {
        case .default: -1
        case .green: Int16(COLOR_GREEN)
        case .yellow: Int16(COLOR_YELLOW)
        case .red: Int16(COLOR_RED)
        case .cyan: Int16(COLOR_CYAN)
        case .blue: Int16(COLOR_BLUE)
        case .magenta: Int16(COLOR_MAGENTA)
        // Bright black where the terminal has 16 colours; white otherwise.
        case .gray: shim_colors() >= 16 ? 8 : Int16(COLOR_WHITE)
        }
    }

    static func key(code: Int32) -> Key? {
        switch code {
        case KEY_RESIZE: return .resize
        case KEY_UP: return .up
        case KEY_DOWN: return .down
        case KEY_LEFT: return .left
        case KEY_RIGHT: return .right
        case KEY_HOME: return .home
        case KEY_END: return .end
        case KEY_PPAGE: return .pageUp
        case KEY_NPAGE: return .pageDown
        case KEY_DC: return .delete
        case KEY_BACKSPACE: return .backspace
        case KEY_BTAB: return .backTab
        case KEY_ENTER: return .enter
        default:
            for number in 1...12 where code == shim_key_f(Int32(number)) {
                return .function(number)
            }
            return nil
        }
    }

    static func key(character: UInt32) -> Key? {
        switch character {
        case 9: return .tab
        case 10, 13: return .enter
        case 8, 127: return .backspace
        case 27: return .escape
        case 1...26: return .ctrl(Character(Unicode.Scalar(UInt8(character) + 96)))
        default:
            guard let scalar = Unicode.Scalar(character), character >= 32 else { return nil }
            return .character(Character(scalar))
        }
    }
}
