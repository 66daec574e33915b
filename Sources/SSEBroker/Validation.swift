/// The rules for the two strings a producer controls that end up in the stream or in URLs.
public enum Validation {
    /// Longest event type accepted, in UTF-8 bytes.
    public static let maxEventTypeBytes = 128
    /// Longest client id accepted, in UTF-8 bytes.
    public static let maxClientIDBytes = 128

    /// Checks an event type. Control characters are refused because CR, LF (and NUL in ids) would
    /// end the `event:` line and let a producer inject fields; the rest have no business in a type.
    public static func validateEventType(_ type: String) throws(BrokerError) {
        if let reason = self.problem(in: type, limit: self.maxEventTypeBytes, allowWhitespace: true) {
            throw .invalidEventType(reason)
        }
    }

    /// Checks a client id: no control characters and no whitespace (ids are typed on the console's
    /// command line and appear in logs), at most ``maxClientIDBytes``.
    public static func validateClientID(_ id: String) throws(BrokerError) {
        if id.isEmpty { throw .invalidClientID("it is empty") }
        if let reason = self.problem(in: id, limit: self.maxClientIDBytes, allowWhitespace: false) {
            throw .invalidClientID(reason)
        }
    }

    static func problem(in value: String, limit: Int, allowWhitespace: Bool) -> String? {
        let length = value.utf8.count
        if length > limit {
            return "it is \(length) bytes long; the limit is \(limit)"
        }
        // Fast path for the usual printable-ASCII value: Unicode property lookups per scalar cost
        // ~3% of a targeted publish (measured with perf), and every producer request has one or two.
        let lowest: UInt8 = allowWhitespace ? 0x20 : 0x21
        if value.utf8.allSatisfy({ $0 >= lowest && $0 <= 0x7E }) {
            return nil
        }
        for (offset, scalar) in value.unicodeScalars.enumerated() {
            if scalar.properties.generalCategory == .control {
                return "it contains the control character \(scalar.codePointDescription) at position \(offset + 1)"
                    + (scalar == "\n" || scalar == "\r" ? " (a line break would inject SSE fields)" : "")
            }
            if !allowWhitespace && scalar.properties.isWhitespace {
                return "it contains whitespace (\(scalar.codePointDescription)) at position \(offset + 1)"
            }
        }
        return nil
    }
}

extension Unicode.Scalar {
    /// `U+000A`-style name of the scalar.
    var codePointDescription: String {
        let hex = String(self.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
