/// A key press (or terminal event) as the ncurses layer decodes it.
public enum Key: Sendable, Hashable {
    /// A printable grapheme, already decoded from UTF-8.
    case character(Character)
    case enter, backspace, delete, left, right, up, down, home, end, pageUp, pageDown
    case tab, backTab, escape
    /// F1…F12.
    case function(Int)
    /// Ctrl plus a letter, e.g. `.ctrl("a")` (case-insensitive).
    case ctrl(Character)
    /// The terminal was resized.
    case resize
}
