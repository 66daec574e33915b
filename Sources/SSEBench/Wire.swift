#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A minimal HTTP/1.1 response reader over raw bytes: the status and the framing headers of each
/// response, then its body as Content-Length, chunked or close-delimited (nginx answers an event
/// stream chunked; this broker's stream is close-delimited). Keep-alive: after a response ends, the
/// next bytes start the next response.
struct ResponseReader {
    private enum Phase {
        case head
        case length(Int)
        case chunkSize(Int)
        case chunkExtension(Int)
        case chunkData(Int)
        case chunkDataEnd
        case trailer(lineLength: Int)
        case untilClose
    }

    enum Failure: Error { case headTooLarge, malformedHead }

    private var phase = Phase.head
    private var head: [UInt8] = []
    /// The status of the response being read (or last read).
    private(set) var status = 0
    /// Whether the server said it will close the connection after this response.
    private(set) var closesAfter = false

    /// Feeds bytes; calls `onHead` with each status, `onBody` with body bytes (de-chunked) and
    /// `onEnd` when a response is complete.
    mutating func feed(
        _ bytes: UnsafeRawBufferPointer,
        onHead: (Int) -> Void,
        onBody: (UnsafeRawBufferPointer) -> Void,
        onEnd: () -> Void
    ) throws(Failure) {
        var index = 0
        let count = bytes.count
        while index < count {
            switch self.phase {
            case .head:
                let byte = bytes[index]
                index += 1
                self.head.append(byte)
                guard byte == 0x0A else {
                    if self.head.count > 16 << 10 { throw .headTooLarge }
                    continue
                }
                // The blank line that ends the head: CRLF CRLF, or a bare LF LF.
                let n = self.head.count
                let lfLF = n >= 2 && self.head[n - 2] == 0x0A
                let crlfCRLF = n >= 4 && self.head[n - 2] == 0x0D && self.head[n - 3] == 0x0A && self.head[n - 4] == 0x0D
                guard lfLF || crlfCRLF else { continue }
                try self.parseHead()
                onHead(self.status)
                if case .head = self.phase { onEnd() }  // no body
            case .length(let remaining):
                let take = min(remaining, count - index)
                onBody(UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
                index += take
                if take == remaining {
                    self.phase = .head
                    onEnd()
                } else {
                    self.phase = .length(remaining - take)
                }
            case .chunkSize(let size):
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): self.phase = .chunkSize(size << 4 | Int(byte - 48))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): self.phase = .chunkSize(size << 4 | Int(byte - 87))
                case UInt8(ascii: "A")...UInt8(ascii: "F"): self.phase = .chunkSize(size << 4 | Int(byte - 55))
                case UInt8(ascii: ";"): self.phase = .chunkExtension(size)
                case 0x0A: self.phase = size == 0 ? .trailer(lineLength: 0) : .chunkData(size)
                default: break  // CR, spaces
                }
            case .chunkExtension(let size):
                if bytes[index] == 0x0A { self.phase = size == 0 ? .trailer(lineLength: 0) : .chunkData(size) }
                index += 1
            case .chunkData(let remaining):
                let take = min(remaining, count - index)
                onBody(UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
                index += take
                self.phase = take == remaining ? .chunkDataEnd : .chunkData(remaining - take)
            case .chunkDataEnd:
                if bytes[index] == 0x0A { self.phase = .chunkSize(0) }
                index += 1
            case .trailer(let lineLength):
                let byte = bytes[index]
                index += 1
                if byte == 0x0A {
                    if lineLength == 0 {
                        self.phase = .head
                        onEnd()
                    } else {
                        self.phase = .trailer(lineLength: 0)
                    }
                } else if byte != 0x0D {
                    self.phase = .trailer(lineLength: lineLength + 1)
                }
            case .untilClose:
                onBody(UnsafeRawBufferPointer(rebasing: bytes[index..<count]))
                index = count
            }
        }
    }

    private mutating func parseHead() throws(Failure) {
        let text = String(decoding: self.head, as: UTF8.self)
        self.head.removeAll(keepingCapacity: true)
        let lines = text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\r\n" || $0 == "\n" })
        guard let statusLine = lines.first else { throw .malformedHead }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else { throw .malformedHead }
        self.status = status
        self.closesAfter = parts[0] == "HTTP/1.0"
        var length: Int?
        var chunked = false
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces).lowercased()
            switch name {
            case "content-length": length = Int(value)
            case "transfer-encoding": chunked = value.contains("chunked")
            case "connection":
                if value.contains("close") { self.closesAfter = true }
                if value.contains("keep-alive") { self.closesAfter = false }
            default: break
            }
        }
        if (100..<200).contains(status) || status == 204 || status == 304 {
            self.phase = .head
        } else if chunked {
            self.phase = .chunkSize(0)
        } else if let length {
            self.phase = length == 0 ? .head : .length(length)
        } else {
            self.phase = .untilClose
        }
    }
}

/// What the scanner read from one event. Publishers write `<send time> <seq> <publisher> <padding>`
/// as the data; the broker adds `id:`.
struct ScannedEvent {
    /// The publisher's send time (monotonic ns); 0 if the first data line has no number.
    var stamp: UInt64 = 0
    /// The publish sequence number (unique across publishers); -1 if absent.
    var seq: Int = -1
    /// The index of the publisher connection that sent it; -1 if absent.
    var publisher: Int = -1
    /// The event's `id:` when it is a decimal number (this broker's ids; nchan's are not).
    var id: UInt64?
}

/// Finds events in a `text/event-stream` body without buffering: counts every event (a block ended
/// by a blank line) that has a `data:` field, reads the up to three decimal numbers its first data
/// line starts with (send time, sequence, publisher) and a decimal `id:`. Comments (`: …`),
/// `event:` and `retry:` lines and the padding are skipped.
struct EventScanner {
    private enum Line: UInt8 {
        case start, dataName, dataValueStart, digits, idName, idValueStart, idDigits, skip
    }

    private var line = Line.start
    private var eventHasData = false
    private var value: UInt64 = 0
    private var sawDigit = false
    /// Which number of the data line is being read (0 send time, 1 sequence, 2 publisher).
    private var field = 0
    private var numbers: (UInt64, Int, Int) = (0, -1, -1)
    private var event = ScannedEvent()

    /// Scans `bytes`; calls `onEvent` with each complete event.
    @inline(__always)
    mutating func scan(_ bytes: UnsafeRawBufferPointer, onEvent: (ScannedEvent) -> Void) {
        guard let base = bytes.baseAddress else { return }
        let count = bytes.count
        var index = 0
        while index < count {
            if self.line == .skip {
                // Padding and other fields: jump to the end of the line.
                guard let found = memchr(base + index, 0x0A, count - index) else { return }
                index = base.distance(to: UnsafeRawPointer(found)) + 1
                self.line = .start
                continue
            }
            let byte = bytes[index]
            index += 1
            switch self.line {
            case .start:
                if byte == 0x0A {
                    if self.eventHasData { onEvent(self.event) }
                    self.eventHasData = false
                    self.event = ScannedEvent()
                } else if byte == UInt8(ascii: "d") {
                    self.line = .dataName
                } else if byte == UInt8(ascii: "i") {
                    self.line = .idName
                } else if byte != 0x0D {
                    self.line = .skip
                }
            case .dataName:
                if byte == UInt8(ascii: ":") {
                    self.line = .dataValueStart
                } else if byte == 0x0A {
                    self.field = 0
                    self.numbers = (0, -1, -1)
                    self.endDataLine()
                    self.line = .start
                }
            case .dataValueStart:
                self.value = 0
                self.sawDigit = false
                self.field = 0
                self.numbers = (0, -1, -1)
                self.line = .digits
                if byte == UInt8(ascii: " ") { continue }
                index -= 1  // not a space: read it as the value's first byte
            case .digits:
                if byte &- 48 < 10 {
                    self.value = self.value &* 10 &+ UInt64(byte &- 48)
                    self.sawDigit = true
                } else {
                    self.endNumber()
                    if byte == UInt8(ascii: " ") && self.field < 3 {
                        continue  // the next number
                    }
                    self.endDataLine()
                    self.line = byte == 0x0A ? .start : .skip
                }
            case .idName:
                if byte == UInt8(ascii: ":") {
                    self.line = .idValueStart
                } else if byte == 0x0A {
                    self.line = .start
                }
            case .idValueStart:
                self.value = 0
                self.sawDigit = false
                self.line = .idDigits
                if byte == UInt8(ascii: " ") { continue }
                index -= 1
            case .idDigits:
                if byte &- 48 < 10 {
                    self.value = self.value &* 10 &+ UInt64(byte &- 48)
                    self.sawDigit = true
                } else if byte == 0x0A || byte == 0x0D {
                    self.event.id = self.sawDigit ? self.value : nil
                    self.line = byte == 0x0A ? .start : .skip
                } else {
                    self.event.id = nil  // not a decimal id (nchan's are `time:tag`)
                    self.line = .skip
                }
            case .skip:
                break
            }
        }
    }

    /// A number of the data line ended (or a non-digit ended the numbers).
    private mutating func endNumber() {
        if self.sawDigit {
            switch self.field {
            case 0: self.numbers.0 = self.value
            case 1: self.numbers.1 = self.value <= UInt64(Int.max) ? Int(self.value) : -1
            case 2: self.numbers.2 = self.value <= 1 << 20 ? Int(self.value) : -1
            default: break
            }
            self.field += 1
        } else {
            self.field = 3  // not a number: no further ones are read
        }
        self.value = 0
        self.sawDigit = false
    }

    private mutating func endDataLine() {
        if !self.eventHasData {
            self.eventHasData = true
            self.event.stamp = self.numbers.0
            self.event.seq = self.numbers.1
            self.event.publisher = self.numbers.2
        }
        self.sawDigit = false
        self.value = 0
    }
}
