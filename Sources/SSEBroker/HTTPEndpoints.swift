import HTTPTypes
import NIOCore

/// The decoded parameters of a query string, `application/x-www-form-urlencoded` style.
public struct QueryParameters: Sendable, Equatable {
    /// In the order given. A list, not a dictionary: a query has a handful of parameters, and this
    /// is parsed on every publish (the dictionary and its arrays were 5% of a one-event publish).
    private var pairs: [Pair] = []

    private struct Pair: Sendable, Equatable {
        var name: String
        var value: String
    }

    /// The parameters that may be given more than once: `topic` (a subscriber's several topics).
    public static let repeatable: Set<String> = ["topic"]

    /// The most parameters a query may have: ``Topic/maxPerConnection`` topics and then some.
    /// Beyond it the query is refused, which also bounds the duplicate check.
    public static let maxParameters = 2 * Topic.maxPerConnection

    /// Parses the query of `uri` (everything after the first `?`). `%XX` escapes and `+` are decoded;
    /// a malformed escape, a value that is not UTF-8, a repeated parameter (other than the
    /// ``repeatable`` ones) or more than ``maxParameters`` is an error — guessing which of two ids a
    /// producer meant is how events reach the wrong client.
    public init(uri: String) throws(BrokerError) {
        // On the UTF-8 view: searching and splitting by `Character` (grapheme breaking) made this
        // 4% of a one-event publish.
        let bytes = uri.utf8
        guard let questionMark = bytes.firstIndex(of: UInt8(ascii: "?")) else { return }
        var start = bytes.index(after: questionMark)
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "&")) ?? bytes.endIndex
            defer { start = end < bytes.endIndex ? bytes.index(after: end) : end }
            guard start < end else { continue }  // an empty pair (`&&`, a trailing `&`)
            guard self.pairs.count < Self.maxParameters else {
                throw .invalidParameter("the query string has more than \(Self.maxParameters) parameters")
            }
            let pair = bytes[start..<end]
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let name = try Self.decode(Substring(pair[..<(equals ?? end)]))
            let value = try equals.map { equals throws(BrokerError) in
                try Self.decode(Substring(pair[bytes.index(after: equals)...]))
            } ?? ""
            if self.pairs.contains(where: { $0.name == name }), !Self.repeatable.contains(name) {
                throw .invalidParameter("query parameter \"\(name)\" is given more than once")
            }
            self.pairs.append(Pair(name: name, value: value))
        }
    }

    /// The same parameters with the same values, whatever the order of different names.
    public static func == (lhs: QueryParameters, rhs: QueryParameters) -> Bool {
        func grouped(_ query: QueryParameters) -> [String: [String]] {
            Dictionary(grouping: query.pairs, by: \.name).mapValues { $0.map(\.value) }
        }
        return grouped(lhs) == grouped(rhs)
    }

    /// The value of `name` (the first, for a ``repeatable`` one).
    public subscript(name: String) -> String? { self.pairs.first { $0.name == name }?.value }

    /// Every value of `name`, in the order given.
    public func values(of name: String) -> [String] { self.pairs.filter { $0.name == name }.map(\.value) }

    static func decode(_ component: Substring) throws(BrokerError) -> String {
        // Most names and values need no decoding (and a Substring of a String is valid UTF-8).
        if !component.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) {
            return String(component)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(component.utf8.count)
        var iterator = component.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue)
                else {
                    throw .invalidParameter("malformed percent-escape in query string near \"\(component.prefix(40))\"")
                }
                bytes.append(high << 4 | low)
            default:
                bytes.append(byte)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw .invalidParameter("query string is not valid UTF-8 after percent-decoding")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// The paths of the two endpoints.
public struct BrokerRoutes: Sendable, Equatable {
    /// Where subscribers connect (`GET`). Default `/connect`.
    public var connect: String
    /// Where producers publish (`POST`). Default `/broadcast`.
    public var broadcast: String

    public init(connect: String = "/connect", broadcast: String = "/broadcast") {
        self.connect = connect
        self.broadcast = broadcast
    }
}

/// A validated `GET /connect[?id=X][&lastEventId=N][&topic=T…]`.
public struct ConnectRequest: Sendable, Equatable {
    /// The requested client id; `nil` lets the broker generate one.
    public var clientID: String?
    /// Where to resume: the `Last-Event-ID` header, else the `lastEventId` query parameter (a first
    /// connect from a browser cannot set headers).
    public var lastEventID: String?
    /// The topics asked for (`topic`, repeatable); empty: every event.
    public var topics: TopicFilter

    public init(clientID: String? = nil, lastEventID: String? = nil, topics: TopicFilter = .everything) {
        self.clientID = clientID
        self.lastEventID = lastEventID
        self.topics = topics
    }

    /// Parses `request` (its path with the query, and its `Last-Event-ID` field), of any HTTP version.
    public init(request: HTTPRequest) throws(BrokerError) {
        try self.init(uri: request.path ?? "", lastEventIDHeader: request.headerFields[.lastEventID])
    }

    /// Parses a request given as its target and `Last-Event-ID` header.
    /// - Parameters:
    ///   - uri: the request target, path and query (`/connect?id=alice`).
    ///   - lastEventIDHeader: the `Last-Event-ID` header, if the request has one.
    public init(uri: String, lastEventIDHeader: String?) throws(BrokerError) {
        let query = try QueryParameters(uri: uri)
        if let id = query["id"], !id.isEmpty {
            try Validation.validateClientID(id)
            self.clientID = id
        }
        // Treated as opaque: a value that is not one of ours replays nothing.
        self.lastEventID = lastEventIDHeader ?? query["lastEventId"]
        let topics = query.values(of: "topic")
        if topics.count > Topic.maxPerConnection {
            throw .invalidParameter(
                "query parameter \"topic\" is given \(topics.count) times; the limit is \(Topic.maxPerConnection)"
            )
        }
        var parsed: [Topic] = []
        for topic in topics {
            parsed.append(try Topic(topic))
        }
        self.topics = try TopicFilter(parsed)
    }

    /// The headers of an event stream's `200` response, whatever the protocol carries them:
    /// content type, no caching or proxy buffering, the extra headers, and `X-SSE-Client-ID`.
    public static func responseHeaders(clientID: String, extraHeaders: HTTPFields = [:]) -> HTTPFields {
        var fields: HTTPFields = [
            .contentType: "text/event-stream; charset=utf-8",
            .cacheControl: "no-cache",
            .xAccelBuffering: "no",
        ]
        fields.append(contentsOf: extraHeaders)
        fields.append(HTTPField(name: .xSSEClientID, value: clientID))
        return fields
    }
}

/// A validated `POST /broadcast[?type=T][&id=X]`.
public struct BroadcastRequest: Sendable, Equatable {
    /// The event type; `nil` sends a `message`.
    public var type: String?
    /// The client to send to; `nil` broadcasts.
    public var clientID: String?

    public init(type: String? = nil, clientID: String? = nil) {
        self.type = type
        self.clientID = clientID
    }

    /// Parses `request`'s path and query, of any HTTP version.
    public init(request: HTTPRequest) throws(BrokerError) {
        try self.init(uri: request.path ?? "")
    }

    /// Parses the request target (`/broadcast?type=price&id=alice`).
    public init(uri: String) throws(BrokerError) {
        let query = try QueryParameters(uri: uri)
        if let type = query["type"], !type.isEmpty {
            try Validation.validateEventType(type)
            self.type = type
        }
        if let id = query["id"] {
            try Validation.validateClientID(id)
            self.clientID = id
        }
    }

    /// Publishes `body` as the event's data.
    /// - Throws: ``BrokerError/invalidUTF8`` for a body that is not UTF-8, ``BrokerError/unknownClient(_:)``.
    public func publish(body: ByteBuffer, on broker: some EventBroker) throws(BrokerError) -> Delivery {
        let event = try self.event(body: body)
        if let clientID = self.clientID {
            return try broker.broadcast(event, to: clientID)
        }
        return try broker.broadcast(event)
    }

    /// Publishes `body` as the event's data with ``EventBroker/publish(_:to:)``: through the shared log
    /// when the broker is a cluster node.
    public func publish(body: ByteBuffer, on broker: some EventBroker) async throws(BrokerError) -> Delivery {
        try await broker.publish(self.event(body: body), to: self.clientID)
    }

    /// The event `body` makes: its data, with the request's type.
    /// - Throws: ``BrokerError/invalidUTF8`` for a body that is not UTF-8.
    public func event(body: ByteBuffer) throws(BrokerError) -> Event {
        guard Self.isValidUTF8(body) else { throw .invalidUTF8 }
        return Event(type: self.type, data: body, origin: .http)
    }

    /// Whether the readable bytes are UTF-8, checked in place (no `String` is made). Anything that
    /// cannot be checked is invalid: an event stream must never carry bytes a client cannot decode.
    static func isValidUTF8(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { bytes in
            // Most payloads are ASCII (JSON); the scalar parser is only needed past the first high byte.
            guard let start = bytes.firstIndex(where: { $0 >= 0x80 }) else { return true }
            var iterator = bytes[start...].makeIterator()
            var parser = Unicode.UTF8.ForwardParser()
            while true {
                switch parser.parseScalar(from: &iterator) {
                case .valid: continue
                case .emptyInput: return true
                case .error: return false
                }
            }
        }
    }

    /// The `202 Accepted` body: `{"id":"<event id>","delivered":N}`.
    public static func responseBody(for delivery: Delivery) -> ByteBuffer {
        // Written piece by piece: an interpolated `String` first was 1.7% of a one-event publish.
        var body = ByteBuffer()
        body.reserveCapacity(64)
        body.writeStaticString("{\"id\":\"")
        body.writeString(String(delivery.eventID))
        body.writeStaticString("\",\"delivered\":")
        body.writeString(String(delivery.recipients))
        body.writeStaticString("}\n")
        return body
    }
}

extension HTTPField.Name {
    /// `Last-Event-ID`: where a reconnecting `EventSource` resumes.
    public static let lastEventID = HTTPField.Name("Last-Event-ID")!
    /// `X-SSE-Client-ID`: the id a subscriber was given, in its stream's response.
    public static let xSSEClientID = HTTPField.Name("X-SSE-Client-ID")!
    /// `X-Accel-Buffering: no` keeps nginx from buffering an event stream.
    public static let xAccelBuffering = HTTPField.Name("X-Accel-Buffering")!
}
