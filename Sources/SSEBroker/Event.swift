import NIOCore

/// One server-sent event: an optional type and a payload of UTF-8 bytes.
///
/// The broker assigns ``id`` (monotonic, so a reconnecting `EventSource` can resume with
/// `Last-Event-ID`) and ``target`` when the event is published; events you create have neither.
public struct Event: Sendable, Hashable {
    /// The SSE event type (`event:` field). `nil` or empty dispatches as `message` in browsers.
    public var type: String?
    /// The payload. Line breaks (CRLF, LF or CR) become separate `data:` lines on the wire.
    public var data: ByteBuffer
    /// Where the event came from (shown by the console's log).
    public var origin: EventOrigin
    /// The broker-assigned event id, set once the event has been published.
    public internal(set) var id: UInt64?
    /// The client id the event was sent to with `broadcast(_:to:)`; `nil` for a broadcast.
    public internal(set) var target: String?
    /// In what ``Broker/listen()`` yields: how many of this broker's connections the event was
    /// handed to (those whose topics match); `nil` for events you create.
    public internal(set) var recipients: Int?
    /// The peer that published it over HTTP, for the audit trail (``AuditRecord/remoteAddress``).
    /// Not part of the event's identity: two events differing only here are equal.
    public var publisherAddress: String?

    /// Creates an event whose payload is `data`.
    public init(type: String? = nil, data: ByteBuffer, origin: EventOrigin = .api) {
        self.type = type
        self.data = data
        self.origin = origin
    }

    /// Creates an event whose payload is the UTF-8 encoding of `data`.
    public init(type: String? = nil, data: String, origin: EventOrigin = .api) {
        self.init(type: type, data: ByteBuffer(string: data), origin: origin)
    }

    /// Creates an event whose payload is `bytes`.
    public init(type: String? = nil, bytes: some Sequence<UInt8>, origin: EventOrigin = .api) {
        self.init(type: type, data: ByteBuffer(bytes: bytes), origin: origin)
    }

    /// The payload decoded as UTF-8 (invalid sequences repaired).
    public var dataString: String { String(buffer: self.data) }

    /// This event with ``publisherAddress`` set: what a server calls on the event a request made.
    public func from(_ publisherAddress: String?) -> Event {
        var event = self
        event.publisherAddress = publisherAddress
        return event
    }

    public static func == (lhs: Event, rhs: Event) -> Bool {
        lhs.type == rhs.type && lhs.data == rhs.data && lhs.origin == rhs.origin && lhs.id == rhs.id
            && lhs.target == rhs.target && lhs.recipients == rhs.recipients
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.type)
        hasher.combine(self.data)
        hasher.combine(self.origin)
        hasher.combine(self.id)
        hasher.combine(self.target)
        hasher.combine(self.recipients)
    }
}

/// The producer of an event: the broker API, an HTTP producer, the console, or anything you name.
public struct EventOrigin: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Published through the Swift API.
    public static let api = EventOrigin(rawValue: "api")
    /// Published by `POST /broadcast`.
    public static let http = EventOrigin(rawValue: "http")
    /// Typed into the console.
    public static let console = EventOrigin(rawValue: "console")

    public var description: String { self.rawValue }
}
