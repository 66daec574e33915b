import NIOCore

/// Writes events in the `text/event-stream` format of the WHATWG server-sent events spec.
///
/// Every field is written as `name: value` (clients strip exactly one leading space, so a value that
/// starts with a space survives), lines end with LF, and every event ends with a blank line so the
/// client dispatches it at once. A payload is split on CRLF, LF and lone CR — the three line ends a
/// client accepts — into one `data:` line each, so no payload can inject a field.
public enum EventEncoder {
    /// Encodes a published event. The `id:` line comes last: field order inside an event does not
    /// matter to clients, and it lets the broker encode the payload before it takes its lock to
    /// assign the id (see ``appendID(_:to:)``).
    public static func encode(_ event: Event, id: UInt64) -> ByteBuffer {
        var buffer = self.encodeFields(type: event.type, data: event.data)
        self.appendID(id, to: &buffer)
        return buffer
    }

    /// Encodes the `event:` and `data:` lines of an event, leaving room for the id line.
    static func encodeFields(type: String?, data: ByteBuffer) -> ByteBuffer {
        let typeBytes = type?.utf8.count ?? 0
        // 6 bytes of "data: " per line plus LF; most payloads are one line. 32 bytes cover the id line.
        var out = ByteBufferAllocator().buffer(capacity: data.readableBytes + typeBytes + 48)
        if let type, !type.isEmpty {
            out.writeStaticString("event: ")
            out.writeString(type)
            out.writeInteger(UInt8(ascii: "\n"))
        }
        self.writeDataLines(data, to: &out)
        return out
    }

    /// Appends `id: <id>` and the blank line that ends the event.
    static func appendID(_ id: UInt64, to buffer: inout ByteBuffer) {
        buffer.writeStaticString("id: ")
        buffer.writeString(String(id))
        buffer.writeStaticString("\n\n")
    }

    /// A comment line (ignored by clients; keeps proxies and idle timers from closing the stream).
    public static func comment(_ text: String) -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: text.utf8.count + 4)
        out.writeStaticString(": ")
        // A comment is one line: a line break would end it and start a field.
        let oneLine = text.unicodeScalars.map { $0 == "\n" || $0 == "\r" ? " " : $0 }
        out.writeString(String(String.UnicodeScalarView(oneLine)))
        out.writeStaticString("\n\n")
        return out
    }

    /// The preamble written right after the response head: a comment, so `open` fires in browsers
    /// at once, and the `retry:` reconnection hint.
    static func preamble(clientID: String, retry: Duration?) -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: 64 + clientID.utf8.count)
        out.writeStaticString(": connected ")
        out.writeString(clientID)
        out.writeInteger(UInt8(ascii: "\n"))
        if let retry {
            out.writeStaticString("retry: ")
            out.writeString(String(TimeAmount(retry).nanoseconds / 1_000_000))
            out.writeInteger(UInt8(ascii: "\n"))
        }
        out.writeInteger(UInt8(ascii: "\n"))
        return out
    }

    private static func writeDataLines(_ data: ByteBuffer, to out: inout ByteBuffer) {
        data.withUnsafeReadableBytes { bytes in
            var lineStart = 0
            var index = 0
            let count = bytes.count
            while index < count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                    Self.writeDataLine(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<index]), to: &out)
                    // CRLF is one line end, not two.
                    if byte == UInt8(ascii: "\r"), index + 1 < count, bytes[index + 1] == UInt8(ascii: "\n") {
                        index += 1
                    }
                    lineStart = index + 1
                }
                index += 1
            }
            // The last line; empty data (or data ending in a line break) gives an empty `data:` line,
            // which the client dispatches with empty (or trailing-newline) data.
            Self.writeDataLine(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<count]), to: &out)
        }
    }

    @inline(__always)
    private static func writeDataLine(_ line: UnsafeRawBufferPointer, to out: inout ByteBuffer) {
        out.writeStaticString("data: ")
        out.writeBytes(line)
        out.writeInteger(UInt8(ascii: "\n"))
    }
}
