/// What a subscriber connection asks to receive: an event type (`price`), or a pattern in which
/// each `*` matches any run of characters, the empty one included (`orders.*`, `*.eu`, `*`).
///
/// An event's type is its ``Event/type``; an untyped event (no type, or an empty one) has the type
/// `message`, as an `EventSource` dispatches it. Topics are validated like types: non-empty, at
/// most ``Validation/maxEventTypeBytes`` bytes of UTF-8, no control characters.
///
/// An exact topic matches a type equal to it as Swift compares strings (canonically equivalent
/// forms are equal, as in the fan-out's dictionaries). A pattern's pieces compare UTF-8 bytes: `*`
/// is ASCII and UTF-8 is self-synchronising, so a match of bytes is a match of characters. `*` is
/// the only special character (no escapes, no `?`).
public struct Topic: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The topic as the subscriber wrote it.
    public let rawValue: String
    /// The pieces between the `*`s (one piece for an exact topic). Derived from `rawValue`.
    private let segments: [[UInt8]]

    /// The type an untyped event has (an `EventSource` dispatches it as `message`).
    public static let untypedEventType = "message"

    /// The most topics one connection may subscribe to. Every publish checks the patterns of the
    /// connections that have some, so the bound keeps that check short.
    public static let maxPerConnection = 64

    /// - Throws: ``BrokerError/invalidParameter(_:)`` naming the `topic` parameter and the reason:
    ///   empty, too long, or with a control character.
    public init(_ rawValue: String) throws(BrokerError) {
        if rawValue.isEmpty {
            throw .invalidParameter("invalid query parameter \"topic\": it is empty")
        }
        if let reason = Validation.problem(in: rawValue, limit: Validation.maxEventTypeBytes, allowWhitespace: true) {
            throw .invalidParameter("invalid query parameter \"topic\" (\(Self.quotedForMessage(rawValue))): \(reason)")
        }
        self.rawValue = rawValue
        self.segments = rawValue.utf8
            .split(separator: UInt8(ascii: "*"), omittingEmptySubsequences: false)
            .map(Array.init)
    }

    /// Whether the topic has a `*`.
    public var isPattern: Bool { self.segments.count > 1 }

    /// Whether an event of `type` matches (`nil` or empty: `message`).
    public func matches(_ type: String?) -> Bool {
        var type = type ?? Self.untypedEventType
        if type.isEmpty { type = Self.untypedEventType }
        guard self.isPattern else { return type == self.rawValue }
        if let result = type.utf8.withContiguousStorageIfAvailable({ self.matchesPattern($0) }) {
            return result
        }
        return Array(type.utf8).withUnsafeBufferPointer { self.matchesPattern($0) }
    }

    /// The first piece must start the type, the last must end it, and the ones between must appear
    /// in order, without overlapping: taking each at its leftmost place is enough (a later place
    /// leaves less room for the rest), so this is one pass, never backtracking.
    private func matchesPattern(_ type: UnsafeBufferPointer<UInt8>) -> Bool {
        let first = self.segments[0]
        let last = self.segments[self.segments.count - 1]
        guard type.count >= first.count + last.count else { return false }
        guard type.starts(with: first), type[(type.count - last.count)...].elementsEqual(last) else { return false }
        var position = first.count
        let end = type.count - last.count
        for segment in self.segments.dropFirst().dropLast() where !segment.isEmpty {
            guard let found = Self.find(segment, in: type, from: position, to: end) else { return false }
            position = found + segment.count
        }
        return true
    }

    private static func find(_ needle: [UInt8], in haystack: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int? {
        guard end - start >= needle.count else { return nil }
        let firstByte = needle[0]
        var index = start
        while index <= end - needle.count {
            if haystack[index] == firstByte, haystack[index..<(index + needle.count)].elementsEqual(needle) {
                return index
            }
            index += 1
        }
        return nil
    }

    /// Whether a subscriber allowed `allowed` may request this topic: an exact topic if one of the
    /// allowed matches it; a pattern only if one of them is the same pattern or `*` (whether one
    /// pattern covers another is not decided here: it would be easy to get wrong).
    public func isAllowed(by allowed: [Topic]) -> Bool {
        if self.isPattern {
            return allowed.contains { $0 == self || $0.rawValue == "*" }
        }
        return allowed.contains { $0.matches(self.rawValue) }
    }

    public var description: String { self.rawValue }

    public static func == (lhs: Topic, rhs: Topic) -> Bool { lhs.rawValue == rhs.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.rawValue) }
    public static func < (lhs: Topic, rhs: Topic) -> Bool { lhs.rawValue < rhs.rawValue }

    /// `value` in quotes for an error message: control characters shown as `U+000A`, cut at 40 characters.
    public static func quotedForMessage(_ value: String) -> String {
        let shown = value.unicodeScalars.map { $0.properties.generalCategory == .control ? $0.codePointDescription : String($0) }
        let text = shown.joined()
        return "\"" + (text.count > 40 ? text.prefix(40) + "…" : text) + "\""
    }
}

/// The topics of one connection, ready for matching: empty means every event.
///
/// Exact topics are kept apart from patterns so that a connection with only exact topics is found
/// by a dictionary lookup per event (``LoopFanout``), and only the connections with a pattern are
/// matched one by one.
public struct TopicFilter: Sendable, Hashable {
    /// Sorted, without duplicates. Empty: every event.
    public let topics: [Topic]
    /// The topics without a `*`.
    let exact: Set<String>
    /// The topics with a `*`.
    let patterns: [Topic]

    /// Every event.
    public static let everything = TopicFilter(validated: [])

    /// - Throws: ``BrokerError/invalidParameter(_:)`` for more than ``Topic/maxPerConnection`` topics
    ///   (duplicates counted once).
    public init(_ topics: some Sequence<Topic>) throws(BrokerError) {
        let unique = Array(Set(topics)).sorted()
        guard unique.count <= Topic.maxPerConnection else {
            throw .invalidParameter(
                "too many values of query parameter \"topic\": \(unique.count); the limit is \(Topic.maxPerConnection)"
            )
        }
        self.init(validated: unique)
    }

    private init(validated topics: [Topic]) {
        self.topics = topics
        self.exact = Set(topics.filter { !$0.isPattern }.map(\.rawValue))
        self.patterns = topics.filter(\.isPattern)
    }

    /// Whether every event matches (no topic was asked for).
    public var isEverything: Bool { self.topics.isEmpty }

    /// Whether some topic is a pattern (then the connection is matched one by one).
    var hasPatterns: Bool { !self.patterns.isEmpty }

    /// Whether an event of `type` is for this connection (`nil` or empty: `message`).
    public func matches(_ type: String?) -> Bool {
        if self.topics.isEmpty { return true }
        return self.matches(normalized: Self.normalize(type))
    }

    /// Matching for a type already normalised by ``normalize(_:)``.
    @inline(__always)
    func matches(normalized type: String) -> Bool {
        if self.topics.isEmpty { return true }
        if self.exact.contains(type) { return true }
        return self.patterns.contains { $0.matches(type) }
    }

    /// An event's type as topics see it: `message` for none.
    @inline(__always)
    static func normalize(_ type: String?) -> String {
        guard let type, !type.isEmpty else { return Topic.untypedEventType }
        return type
    }

    /// The topics as strings, for snapshots.
    public var names: [String] { self.topics.map(\.rawValue) }

    public static func == (lhs: TopicFilter, rhs: TopicFilter) -> Bool { lhs.topics == rhs.topics }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.topics) }
}
