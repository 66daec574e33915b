/// Where a log entry came from.
public enum LogSource: String, Sendable, Hashable, CaseIterable {
    case console, http, api, broker, cluster
}

/// What happened.
public enum LogKind: String, Sendable, Hashable, CaseIterable {
    case broadcast, broadcastTo, connect, disconnect, kick, ban, error, info
    /// A cluster node reached the shared log again, or lost it.
    case online, offline
}

/// One line of the event log.
public struct LogEntry: Sendable, Hashable {
    /// Unix timestamp in seconds.
    public var time: Double
    public var source: LogSource
    public var kind: LogKind
    /// Event type, for broadcasts.
    public var type: String?
    /// Client id the entry is about, if any.
    public var target: String?
    /// Payload size in bytes, if any.
    public var size: Int?
    /// The broker-assigned id, for events: what the event detail looks the whole event up by.
    public var eventID: UInt64?
    /// For events: how many connections of this node it was handed to.
    public var recipients: Int?
    /// Free text or a data preview. May contain newlines: renderers pass it through
    /// `Format.oneLine`, so it always stays on one line.
    public var message: String

    public init(
        time: Double, source: LogSource, kind: LogKind, type: String? = nil, target: String? = nil,
        size: Int? = nil, message: String = "", eventID: UInt64? = nil, recipients: Int? = nil
    ) {
        self.eventID = eventID
        self.recipients = recipients
        self.time = time
        self.source = source
        self.kind = kind
        self.type = type
        self.target = target
        self.size = size
        self.message = message
    }

    /// A bounded one-line preview of event data, for building entries from large payloads
    /// (keeps the ring buffer's memory bounded too).
    public static func preview(of data: String, maxCharacters: Int = 200) -> String {
        Format.oneLine(data, maxCharacters: maxCharacters)
    }
}
