/// The console's event log: a bounded ring buffer of `LogEntry` with a case-insensitive substring
/// filter and scroll-back.
///
/// Entries are addressed by a monotonically increasing sequence number; entry `n` lives in slot
/// `n % capacity`, so appending is O(1) and eviction is implicit. With a filter, the sequence
/// numbers of matching entries are kept in order and updated on append, so a frame never rescans
/// the buffer. The scroll offset counts *visible* (matching) entries from the bottom; 0 is the live
/// tail.
public struct EventLog: Sendable {
    private struct Stored: Sendable {
        var entry: LogEntry
        /// Lowercased UTF-8 of everything the filter may match, computed once on append.
        var haystack: [UInt8]
    }

    public let capacity: Int
    private var slots: [Stored] = []
    private var firstSequence = 0
    private var nextSequence = 0
    private var matches: [Int] = []
    private var matchesStart = 0
    private var needle: [UInt8] = []

    /// The active filter text, or `nil`.
    public private(set) var filter: String?
    /// Visible entries between the bottom of the view and the newest one; 0 means live.
    public private(set) var scrollOffset = 0

    public init(capacity: Int = 5_000) {
        self.capacity = max(1, capacity)
        slots.reserveCapacity(min(self.capacity, 8_192))
    }

    /// All entries held, ignoring the filter.
    public var count: Int { nextSequence - firstSequence }

    /// Entries that pass the filter (all entries when there is none).
    public var visibleCount: Int { filter == nil ? count : matches.count - matchesStart }

    /// `true` when scrolled back: new entries do not move the view.
    public var isPaused: Bool { scrollOffset > 0 }

    /// The `index`-th visible entry, oldest first.
    public func visibleEntry(at index: Int) -> LogEntry {
        let sequence = filter == nil ? firstSequence + index : matches[matchesStart + index]
        return slots[sequence % capacity].entry
    }

    /// The entries a view of `height` rows shows, oldest first, honouring the scroll offset.
    public func visibleEntries(height: Int) -> [LogEntry] {
        let total = visibleCount
        guard height > 0, total > 0 else { return [] }
        let offset = min(scrollOffset, maxOffset(viewportHeight: height))
        let bottom = total - 1 - offset
        let top = max(0, bottom - height + 1)
        return (top...bottom).map(visibleEntry(at:))
    }

    /// Appends an entry, evicting the oldest when full. O(1) amortised.
    public mutating func append(_ entry: LogEntry) {
        let stored = Stored(entry: entry, haystack: Self.haystack(of: entry))
        if count == capacity { firstSequence += 1 }
        let slot = nextSequence % capacity
        if slot < slots.count { slots[slot] = stored } else { slots.append(stored) }
        let sequence = nextSequence
        nextSequence += 1

        if filter != nil {
            while matchesStart < matches.count && matches[matchesStart] < firstSequence { matchesStart += 1 }
            if matchesStart > 4_096 && matchesStart * 2 > matches.count {
                matches.removeFirst(matchesStart)
                matchesStart = 0
            }
            guard Self.contains(stored.haystack, needle) else { return }
            matches.append(sequence)
        }
        // Keep a paused view on the same entries.
        if scrollOffset > 0 { scrollOffset = min(scrollOffset + 1, max(0, visibleCount - 1)) }
    }

    /// Appends several entries in order.
    public mutating func append(contentsOf entries: some Sequence<LogEntry>) {
        for entry in entries { append(entry) }
    }

    /// Sets (or, with `nil` or empty text, clears) the filter and returns to the live tail.
    public mutating func setFilter(_ text: String?) {
        scrollOffset = 0
        matches = []
        matchesStart = 0
        guard let text, !text.isEmpty else {
            filter = nil
            needle = []
            return
        }
        filter = text
        needle = Array(text.lowercased().utf8)
        for sequence in firstSequence..<nextSequence where Self.contains(slots[sequence % capacity].haystack, needle) {
            matches.append(sequence)
        }
    }

    /// Removes every entry (the filter stays).
    public mutating func clear() {
        slots = []
        firstSequence = 0
        nextSequence = 0
        matches = []
        matchesStart = 0
        scrollOffset = 0
    }

    /// Largest useful offset for a view of `viewportHeight` rows.
    public func maxOffset(viewportHeight: Int) -> Int {
        max(0, visibleCount - max(1, viewportHeight))
    }

    /// Scrolls towards older entries.
    public mutating func scrollUp(by lines: Int, viewportHeight: Int) {
        scrollOffset = min(scrollOffset + max(0, lines), maxOffset(viewportHeight: viewportHeight))
    }

    /// Scrolls towards newer entries; reaching the bottom resumes the live tail.
    public mutating func scrollDown(by lines: Int, viewportHeight: Int) {
        scrollOffset = max(0, min(scrollOffset, maxOffset(viewportHeight: viewportHeight)) - max(0, lines))
    }

    /// Shows the oldest page.
    public mutating func scrollToOldest(viewportHeight: Int) {
        scrollOffset = maxOffset(viewportHeight: viewportHeight)
    }

    /// Returns to the live tail.
    public mutating func scrollToLive() {
        scrollOffset = 0
    }

    /// The text the filter searches: source, kind, type, target, size and message.
    private static func haystack(of entry: LogEntry) -> [UInt8] {
        var text = "\(entry.source.rawValue) \(entry.kind.rawValue)"
        if let type = entry.type { text += " " + type }
        if let target = entry.target { text += " " + target }
        if let size = entry.size { text += " " + Format.bytes(size) }
        text += " " + Format.oneLine(entry.message, maxCharacters: 1_024)
        return Array(text.lowercased().utf8)
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard haystack.count >= needle.count else { return false }
        let first = needle[0]
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first {
                var offset = 1
                while offset < needle.count && haystack[index + offset] == needle[offset] { offset += 1 }
                if offset == needle.count { return true }
            }
            index += 1
        }
        return false
    }
}
