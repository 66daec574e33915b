/// One event as a browser's `EventSource` would dispatch it.
public struct ServerSentEvent: Sendable, Hashable {
    /// The type; `message` when the stream named none.
    public var type: String
    /// The data, lines joined with LF.
    public var data: String
    /// The last event id in force when it was dispatched.
    public var lastEventID: String

    public init(type: String = "message", data: String, lastEventID: String = "") {
        self.type = type
        self.data = data
        self.lastEventID = lastEventID
    }
}

/// What a stream carries, in order: events, comments (heartbeats) and `retry:` hints.
public enum SSEMessage: Sendable, Hashable {
    case event(ServerSentEvent)
    case comment(String)
    case retry(Int)
}

/// The WHATWG "event stream interpretation" algorithm, fed with bytes as they arrive.
///
/// CRLF, LF and lone CR end lines (a CR at the end of one chunk and an LF at the start of the next
/// are one line end); one leading BOM is skipped; `name: value` loses exactly one space; a blank line
/// dispatches; an event with an empty data buffer is not dispatched; an unterminated event at the end
/// is discarded.
public struct SSEParser: Sendable {
    private var line: [UInt8] = []
    private var lastWasCR = false
    private var atStart = true
    private var dataBuffer = ""
    private var hasData = false
    private var eventType = ""
    private var lastEventID = ""

    public init() {}

    /// Parses `bytes`, returning the messages completed by them.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [SSEMessage] {
        var messages: [SSEMessage] = []
        for byte in bytes {
            if self.lastWasCR {
                self.lastWasCR = false
                if byte == UInt8(ascii: "\n") { continue }
            }
            switch byte {
            case UInt8(ascii: "\r"):
                self.lastWasCR = true
                self.endLine(into: &messages)
            case UInt8(ascii: "\n"):
                self.endLine(into: &messages)
            default:
                self.line.append(byte)
            }
        }
        return messages
    }

    private mutating func endLine(into messages: inout [SSEMessage]) {
        var line = self.line
        self.line.removeAll(keepingCapacity: true)
        if self.atStart {
            self.atStart = false
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
        }
        if line.isEmpty {
            self.dispatch(into: &messages)
            return
        }
        if line[0] == UInt8(ascii: ":") {
            var comment = line.dropFirst()
            if comment.first == UInt8(ascii: " ") { comment = comment.dropFirst() }
            messages.append(.comment(String(decoding: comment, as: UTF8.self)))
            return
        }
        let name: String
        var value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            name = String(decoding: line[..<colon], as: UTF8.self)
            value = line[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        } else {
            name = String(decoding: line, as: UTF8.self)
            value = []
        }
        let text = String(decoding: value, as: UTF8.self)
        switch name {
        case "event":
            self.eventType = text
        case "data":
            self.dataBuffer += text
            self.dataBuffer += "\n"
            self.hasData = true
        case "id":
            if !value.contains(0) { self.lastEventID = text }
        case "retry":
            if !value.isEmpty, value.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }), let ms = Int(text) {
                messages.append(.retry(ms))
            }
        default:
            break
        }
    }

    private mutating func dispatch(into messages: inout [SSEMessage]) {
        defer {
            self.dataBuffer = ""
            self.hasData = false
            self.eventType = ""
        }
        guard self.hasData else { return }
        var data = self.dataBuffer
        if data.hasSuffix("\n") { data.removeLast() }
        messages.append(
            .event(ServerSentEvent(type: self.eventType.isEmpty ? "message" : self.eventType, data: data, lastEventID: self.lastEventID))
        )
    }
}
