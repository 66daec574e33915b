import NIOCore
import SSEBroker
import SSEClient

/// Fuzzes the wire encoder against the WHATWG parser of `SSEClient`: whatever the payload, an
/// encoded event must come back as exactly one event with the same type, the same data (line ends
/// normalised to LF, as every client does) and the same id — nothing a producer sends can inject a
/// field, split an event or vanish. Comments likewise stay one comment.
///
/// Input: byte 0 is the type length (mod 64), then the type, 8 bytes of id, then the data.
func fuzzOne(_ input: [UInt8]) {
    guard let first = input.first else { return }
    var rest = input.dropFirst()
    let typeBytes = rest.prefix(Int(first % 64))
    rest = rest.dropFirst(typeBytes.count)
    let idBytes = rest.prefix(8)
    rest = rest.dropFirst(idBytes.count)
    let id = idBytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    let data = Array(rest)

    guard let type = String(validating: typeBytes, as: UTF8.self) else { return }
    // The broker only encodes types that pass validation (publish checks them first).
    let validType: String?
    do {
        try Validation.validateEventType(type)
        validType = type.isEmpty ? nil : type
    } catch {
        validType = nil
    }
    let encoded = EventEncoder.encode(Event(type: validType, bytes: data), id: id)
    var parser = SSEParser()
    let messages = parser.feed(encoded.readableBytesView)
    let events = messages.compactMap { message -> ServerSentEvent? in
        if case .event(let event) = message { return event }
        return nil
    }
    precondition(events.count == 1 && messages.count == 1, "one event must parse as one event: \(messages)")
    let event = events[0]
    precondition(event.type == (validType ?? "message"), "type changed: \(event.type)")
    precondition(event.lastEventID == String(id), "id changed: \(event.lastEventID)")
    // The stream is UTF-8; the broker refuses other bodies, so only compare what a client can decode.
    if String(validating: data, as: UTF8.self) != nil {
        precondition(event.data == normalisedLineEnds(data), "data changed")
    }

    let comment = String(decoding: data.prefix(200), as: UTF8.self)
    var commentParser = SSEParser()
    let parsed = commentParser.feed(EventEncoder.comment(comment).readableBytesView)
    precondition(parsed.count == 1, "a comment must stay one comment: \(parsed)")
    if case .comment = parsed[0] {} else { preconditionFailure("a comment became \(parsed[0])") }
}

/// CRLF and lone CR become LF, as a client reads them.
func normalisedLineEnds(_ bytes: [UInt8]) -> String {
    var out: [UInt8] = []
    var index = 0
    while index < bytes.count {
        if bytes[index] == UInt8(ascii: "\r") {
            out.append(UInt8(ascii: "\n"))
            if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") { index += 1 }
        } else {
            out.append(bytes[index])
        }
        index += 1
    }
    return String(decoding: out, as: UTF8.self)
}

/// Nothing to prepare before the first input.
func fuzzSetUp() {}
