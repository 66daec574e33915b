/// The small colour palette the console uses; the ncurses layer maps it to colour pairs.
public enum Color: String, Sendable, Hashable, CaseIterable {
    case `default`, green, yellow, red, cyan, blue, magenta, gray
}

/// How one cell is drawn.
public struct CellStyle: Sendable, Hashable {
    public var foreground: Color
    public var background: Color
    public var bold: Bool
    public var dim: Bool
    public var reverse: Bool

    public init(
        foreground: Color = .default, background: Color = .default,
        bold: Bool = false, dim: Bool = false, reverse: Bool = false
    ) {
        self.foreground = foreground
        self.background = background
        self.bold = bold
        self.dim = dim
        self.reverse = reverse
    }

    /// Default colours, no attributes.
    public static let plain = CellStyle()
}

/// One terminal cell. A wide character occupies its cell and the next one; the second cell is a
/// *continuation* that holds no text of its own.
public struct Cell: Sendable, Hashable {
    public var character: Character
    public var style: CellStyle
    public var isContinuation: Bool

    public init(character: Character = " ", style: CellStyle = .plain, isContinuation: Bool = false) {
        self.character = character
        self.style = style
        self.isContinuation = isContinuation
    }
}

/// A zero-based screen position.
public struct CursorPosition: Sendable, Hashable {
    public var row: Int
    public var column: Int

    public init(row: Int, column: Int) {
        self.row = row
        self.column = column
    }
}

/// Consecutive cells of one row that share a style, ready to be drawn with one call.
public struct StyledRun: Sendable, Hashable {
    /// First column of the run.
    public var column: Int
    /// Columns covered (wide characters count 2).
    public var width: Int
    public var text: String
    public var style: CellStyle
}

/// A grid of styled cells: the output of `Layout.render`, drawn by the ncurses layer run by run.
public struct Canvas: Sendable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]
    /// Where the terminal cursor should be placed, or `nil` to hide it.
    public var cursor: CursorPosition?
    /// Instrumentation for tests: how many client rows / log entries were formatted.
    var stats = RenderStats()

    public init(width: Int, height: Int) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: Cell(), count: self.width * self.height)
    }

    public subscript(row: Int, column: Int) -> Cell {
        cells[row * width + column]
    }

    /// Writes `text` starting at (`row`, `col`), clipped to `maxWidth` columns and to the right
    /// edge. Wide characters that do not fit entirely are not drawn; control characters are drawn
    /// as `�`. Returns the number of columns written.
    @discardableResult
    public mutating func put(
        _ text: some StringProtocol, row: Int, col: Int, style: CellStyle = .plain, maxWidth: Int? = nil
    ) -> Int {
        guard row >= 0, row < height, col < width else { return 0 }
        let limit = min(width, maxWidth.map { col + max(0, $0) } ?? width)
        var column = col
        var lastWritten: Int?
        for raw in text {
            let character = Self.sanitized(raw)
            let w = displayWidth(of: character)
            if w == 0 {
                // Combining mark typed or stored separately: attach it to the previous cell.
                if let last = lastWritten {
                    let index = row * width + last
                    let merged = String(cells[index].character) + String(character)
                    if merged.count == 1 { cells[index].character = Character(merged) }
                }
                continue
            }
            if column + w > limit { break }
            if column >= 0 {
                setCell(row: row, column: column, character: character, style: style, wide: w == 2)
                lastWritten = column
            }
            column += w
        }
        return max(0, column - col)
    }

    /// Fills `width` cells with `character` (default: space) in `style`.
    public mutating func fill(row: Int, col: Int, width count: Int, style: CellStyle = .plain, character: Character = " ") {
        guard row >= 0, row < height else { return }
        let start = max(0, col)
        let end = min(width, col + count)
        guard start < end else { return }
        for column in start..<end {
            setCell(row: row, column: column, character: character, style: style, wide: false)
        }
    }

    /// Changes the style of existing cells without touching their text (e.g. to reverse a row).
    public mutating func restyle(row: Int, col: Int, width count: Int, _ change: (inout CellStyle) -> Void) {
        guard row >= 0, row < height else { return }
        for column in max(0, col)..<max(max(0, col), min(width, col + count)) {
            change(&cells[row * width + column].style)
        }
    }

    /// One string per row, trailing spaces trimmed — for golden tests and logs.
    public var plainText: [String] {
        (0..<height).map { row in
            var line = ""
            for column in 0..<width where !self[row, column].isContinuation {
                line.append(self[row, column].character)
            }
            while line.last == " " { line.removeLast() }
            return line
        }
    }

    /// The row split into runs of identical style, left to right, covering the whole row.
    public func runs(row: Int) -> [StyledRun] {
        var result: [StyledRun] = []
        guard row >= 0, row < height else { return result }
        for column in 0..<width {
            let cell = self[row, column]
            if var last = result.last, last.style == cell.style {
                if !cell.isContinuation { last.text.append(cell.character) }
                last.width += 1
                result[result.count - 1] = last
            } else {
                result.append(StyledRun(
                    column: column, width: 1,
                    text: cell.isContinuation ? "" : String(cell.character), style: cell.style))
            }
        }
        return result
    }

    private mutating func setCell(row: Int, column: Int, character: Character, style: CellStyle, wide: Bool) {
        let base = row * width
        // Overwriting half of an existing wide character must not leave the other half behind.
        if cells[base + column].isContinuation && column > 0 {
            cells[base + column - 1] = Cell(style: cells[base + column - 1].style)
        }
        let end = column + (wide ? 1 : 0)
        if end + 1 < width && cells[base + end + 1].isContinuation {
            cells[base + end + 1] = Cell(style: cells[base + end + 1].style)
        }
        cells[base + column] = Cell(character: character, style: style)
        if wide { cells[base + column + 1] = Cell(character: " ", style: style, isContinuation: true) }
    }

    private static func sanitized(_ character: Character) -> Character {
        guard let value = character.unicodeScalars.first?.value else { return " " }
        if value < 0x20 || (0x7F..<0xA0).contains(value) { return "\u{FFFD}" }
        return character
    }
}

/// Counters that let tests check that rendering stays proportional to the screen, not the data.
struct RenderStats: Sendable, Hashable {
    var clientRowsFormatted = 0
    var logEntriesFormatted = 0
}
