/// The command line: text as grapheme clusters, a cursor, readline-style editing and a bounded
/// history. Indices count `Character`s, so `é` or `日本` move and delete as one unit each.
public struct LineEditor: Sendable, Hashable {
    public private(set) var characters: [Character] = []
    /// Insertion point, `0...characters.count`.
    public private(set) var cursor = 0
    /// Sent lines, oldest first.
    public private(set) var history: [String] = []
    public let historyLimit: Int
    /// Position while browsing history; `nil` when editing the draft.
    private var historyIndex: Int?
    /// The unsent line, restored when browsing comes back down.
    private var draft: [Character] = []
    private var killBuffer: [Character] = []

    public init(text: String = "", historyLimit: Int = 500) {
        self.historyLimit = max(1, historyLimit)
        setText(text)
    }

    public var text: String { String(characters) }
    public var isEmpty: Bool { characters.isEmpty }

    /// Replaces the text and puts the cursor at the end.
    public mutating func setText(_ text: String) {
        characters = Array(text)
        cursor = characters.count
    }

    public mutating func clear() {
        setText("")
        historyIndex = nil
    }

    /// Inserts at the cursor. A combining mark or joiner arriving on its own is merged into the
    /// preceding character, as a terminal delivers decomposed input scalar by scalar.
    public mutating func insert(_ character: Character) {
        if cursor > 0 {
            let merged = String(characters[cursor - 1]) + String(character)
            if merged.count == 1 {
                characters[cursor - 1] = Character(merged)
                return
            }
        }
        characters.insert(character, at: cursor)
        cursor += 1
    }

    public mutating func insert(_ text: String) {
        for character in text { insert(character) }
    }

    public mutating func moveLeft() { cursor = max(0, cursor - 1) }
    public mutating func moveRight() { cursor = min(characters.count, cursor + 1) }
    /// Home, Ctrl-A.
    public mutating func moveToStart() { cursor = 0 }
    /// End, Ctrl-E.
    public mutating func moveToEnd() { cursor = characters.count }

    /// Deletes the character before the cursor.
    public mutating func backspace() {
        guard cursor > 0 else { return }
        characters.remove(at: cursor - 1)
        cursor -= 1
    }

    /// Deletes the character under the cursor.
    public mutating func deleteForward() {
        guard cursor < characters.count else { return }
        characters.remove(at: cursor)
    }

    /// Ctrl-U: deletes from the start of the line to the cursor.
    public mutating func killToStart() {
        killBuffer = Array(characters[..<cursor])
        characters.removeSubrange(..<cursor)
        cursor = 0
    }

    /// Ctrl-K: deletes from the cursor to the end of the line.
    public mutating func killToEnd() {
        killBuffer = Array(characters[cursor...])
        characters.removeSubrange(cursor...)
    }

    /// Ctrl-W: deletes the spaces before the cursor, then the word before them (a word is a run
    /// of non-whitespace, like readline's `unix-word-rubout`).
    public mutating func deleteWordBackward() {
        var start = cursor
        while start > 0 && characters[start - 1].isWhitespace { start -= 1 }
        while start > 0 && !characters[start - 1].isWhitespace { start -= 1 }
        killBuffer = Array(characters[start..<cursor])
        characters.removeSubrange(start..<cursor)
        cursor = start
    }

    /// Ctrl-Y: inserts the last killed text.
    public mutating func yank() {
        characters.insert(contentsOf: killBuffer, at: cursor)
        cursor += killBuffer.count
    }

    /// Replaces `range` (character indices) and puts the cursor after the replacement.
    public mutating func replace(_ range: Range<Int>, with text: String) {
        let clamped = min(range.lowerBound, characters.count)..<min(range.upperBound, characters.count)
        let replacement = Array(text)
        characters.replaceSubrange(clamped, with: replacement)
        cursor = clamped.lowerBound + replacement.count
    }

    /// Up: shows the previous history line, saving the draft first.
    public mutating func historyPrevious() {
        guard !history.isEmpty else { return }
        if let index = historyIndex {
            guard index > 0 else { return }
            historyIndex = index - 1
        } else {
            draft = characters
            historyIndex = history.count - 1
        }
        setText(history[historyIndex!])
    }

    /// Down: shows the next history line, or the draft after the newest one.
    public mutating func historyNext() {
        guard let index = historyIndex else { return }
        if index + 1 < history.count {
            historyIndex = index + 1
            setText(history[index + 1])
        } else {
            historyIndex = nil
            characters = draft
            cursor = characters.count
        }
    }

    /// Records `line` (unless empty or equal to the newest entry) and resets browsing.
    public mutating func addToHistory(_ line: String) {
        historyIndex = nil
        draft = []
        guard !line.isEmpty, history.last != line else { return }
        history.append(line)
        if history.count > historyLimit { history.removeFirst(history.count - historyLimit) }
    }

    /// Returns the text and clears the line, adding it to the history.
    public mutating func commit() -> String {
        let line = text
        addToHistory(line)
        setText("")
        return line
    }

    /// The part of the line that fits in `width` columns and the cursor's column in it.
    ///
    /// Scrolls in half-width jumps instead of one column per keystroke, keeping text before the
    /// cursor in view while typing at the end. Derived from the cursor alone, so rendering stays a
    /// pure function of the state. A wide character is never cut; the cursor cell is always inside.
    public func visibleSlice(width: Int) -> (text: String, cursorColumn: Int) {
        guard width > 0 else { return ("", 0) }
        var columns = [0]  // columns[i] = display column where character i starts
        columns.reserveCapacity(characters.count + 1)
        for character in characters { columns.append(columns.last! + displayWidth(of: character)) }
        let cursorColumn = columns[cursor]
        var startColumn = 0
        if columns.last! >= width {
            let step = max(1, width / 2)
            let needed = max(0, cursorColumn - (width - 1))
            startColumn = (needed + step - 1) / step * step
        }
        var start = 0
        while start < cursor && columns[start] < startColumn { start += 1 }
        var end = start
        while end < characters.count && columns[end + 1] - columns[start] <= width { end += 1 }
        return (String(characters[start..<end]), cursorColumn - columns[start])
    }
}
