/// Number of terminal columns a grapheme occupies: 2 for East Asian wide and fullwidth characters
/// and emoji, 0 for lone combining marks and zero-width format characters, 1 otherwise.
///
/// This is a deliberately small table (the main CJK, Hangul, fullwidth and emoji ranges), not a
/// full `wcwidth`: what matters is that the `Canvas` and the terminal agree for common text.
/// Control characters count as 1 because the canvas draws them as `�`.
public func displayWidth(of character: Character) -> Int {
    let scalars = character.unicodeScalars
    guard let first = scalars.first else { return 0 }
    let value = first.value
    if value < 0x300 && scalars.count == 1 { return 1 }  // fast path (controls included, see above)
    if isZeroWidth(first) { return 0 }
    if isWide(value) || first.properties.isEmojiPresentation { return 2 }
    // A text-default symbol followed by VS16 (e.g. "❤️") is drawn as emoji.
    if scalars.contains("\u{FE0F}") && first.properties.isEmoji { return 2 }
    return 1
}

/// Total terminal columns of a string (sum of its graphemes' widths).
public func displayWidth(of text: some StringProtocol) -> Int {
    var total = 0
    for character in text { total += displayWidth(of: character) }
    return total
}

private func isZeroWidth(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.properties.generalCategory {
    case .nonspacingMark, .enclosingMark, .format: return true
    default: return (0x1160...0x11FF).contains(scalar.value)  // Hangul medial/final jamo
    }
}

private func isWide(_ value: UInt32) -> Bool {
    switch value {
    case 0x1100...0x115F,  // Hangul Jamo initials
         0x231A...0x231B, 0x2329...0x232A,
         0x2E80...0x303E,  // CJK radicals, Kangxi, CJK symbols and punctuation
         0x3041...0x33FF,  // Hiragana, Katakana, Bopomofo, Hangul compatibility, CJK compatibility
         0x3400...0x4DBF,  // CJK extension A
         0x4E00...0x9FFF,  // CJK unified ideographs
         0xA000...0xA4CF,  // Yi
         0xA960...0xA97F,  // Hangul Jamo extended A
         0xAC00...0xD7A3,  // Hangul syllables
         0xF900...0xFAFF,  // CJK compatibility ideographs
         0xFE10...0xFE19, 0xFE30...0xFE6F,  // vertical and small forms
         0xFF00...0xFF60, 0xFFE0...0xFFE6,  // fullwidth forms
         0x1F300...0x1F64F,  // symbols, pictographs, emoticons
         0x1F900...0x1F9FF,  // supplemental symbols and pictographs
         0x1FA70...0x1FAFF,
         0x20000...0x2FFFD, 0x30000...0x3FFFD:  // CJK extensions B…
        return true
    default:
        return false
    }
}

/// Text fitting helpers used by the renderers.
public enum TextFit {
    /// Cuts `text` to at most `width` columns, ending with `…` when something was cut.
    /// A wide character is never split.
    public static func truncate(_ text: String, toWidth width: Int) -> String {
        guard width > 0 else { return "" }
        if displayWidth(of: text) <= width { return text }
        var out = ""
        var used = 0
        for character in text {
            let w = displayWidth(of: character)
            if used + w > width - 1 { break }
            out.append(character)
            used += w
        }
        return out + "…"
    }

    /// Truncates and pads with spaces to exactly `width` columns.
    public static func pad(_ text: String, toWidth width: Int, alignRight: Bool = false) -> String {
        let fitted = truncate(text, toWidth: width)
        let gap = String(repeating: " ", count: max(0, width - displayWidth(of: fitted)))
        return alignRight ? gap + fitted : fitted + gap
    }
}
