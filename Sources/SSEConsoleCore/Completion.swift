/// What a Tab press produces.
public struct CompletionResult: Sendable, Hashable {
    /// Character range of the word being completed.
    public var wordRange: Range<Int>
    /// Text to put in `wordRange`: the single match, or the longest common prefix of several.
    public var replacement: String
    /// All matches, sorted; empty when nothing matches.
    public var candidates: [String]

    /// Exactly one match: the caller adds a space after it.
    public var isUnique: Bool { candidates.count == 1 }
}

/// Tab completion of command names (first word), client ids (the id argument of `broadcastTo`,
/// `kick`, `ban`, `unban`) and known topics (the type of `broadcast` and `broadcastTo <id>`, the
/// argument of `topics`). Pure functions; cycling state lives in `ConsoleState`.
public enum Completion {
    /// Completes the word that ends at `cursor` in `text`.
    /// - Parameter topics: the exact topics subscribed to (patterns are no event type).
    public static func complete(_ text: [Character], cursor: Int, clientIDs: [String], topics: [String] = []) -> CompletionResult {
        let cursor = min(max(0, cursor), text.count)
        var wordStart = cursor
        while wordStart > 0 && text[wordStart - 1] != " " { wordStart -= 1 }
        let word = String(text[wordStart..<cursor])
        let before = String(text[..<wordStart]).split(separator: " ")
        let range = wordStart..<cursor

        let candidates: [String]
        if before.isEmpty {
            let lowered = word.lowercased()
            candidates = CommandParser.specs.map(\.name).filter { $0.lowercased().hasPrefix(lowered) }.sorted()
        } else if before.count == 1, let spec = CommandParser.spec(named: String(before[0])), spec.takesClientID {
            candidates = Set(clientIDs.filter { $0.hasPrefix(word) }).sorted()
        } else if let spec = CommandParser.spec(named: String(before[0])),
            (before.count == 1 && (spec.name == "broadcast" || spec.name == "topics"))
                || (before.count == 2 && spec.name == "broadcastTo")
        {
            candidates = Set(topics.filter { $0.hasPrefix(word) }).sorted()
        } else {
            candidates = []
        }
        switch candidates.count {
        case 0: return CompletionResult(wordRange: range, replacement: word, candidates: [])
        case 1: return CompletionResult(wordRange: range, replacement: candidates[0], candidates: candidates)
        default:
            let prefix = longestCommonPrefix(candidates)
            // Command names match case-insensitively, so the prefix may be shorter than the word.
            return CompletionResult(
                wordRange: range, replacement: prefix.count >= word.count ? prefix : word, candidates: candidates)
        }
    }

    /// Longest common prefix, compared by `Character`.
    public static func longestCommonPrefix(_ strings: [String]) -> String {
        guard var prefix = strings.first.map(Array.init) else { return "" }
        for string in strings.dropFirst() {
            let count = zip(prefix, string).prefix { $0 == $1 }.count
            prefix = Array(prefix.prefix(count))
        }
        return String(prefix)
    }
}
