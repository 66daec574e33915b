/// Number, size, rate, duration and clock formatting shared by the header, the panes and the
/// headless mode. All functions are pure and locale-independent (the console must render the same
/// everywhere, and golden tests depend on it).
public enum Format {
    /// `1234567` → `"1,234,567"`.
    public static func thousands(_ value: Int) -> String {
        let digits = Array(String(value.magnitude))
        var out = value < 0 ? "-" : ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return out
    }

    /// Compact byte count with binary units: `"512B"`, `"12.3K"`, `"5.1M"`, `"1.0G"`.
    public static func bytes(_ value: Int) -> String {
        let (number, unit) = scaled(Double(max(0, value)), base: 1024, units: ["B", "K", "M", "G", "T", "P"])
        return unit == "B" ? "\(max(0, value))B" : number + unit
    }

    /// Byte rate for the header: `"512 B/s"`, `"5.1 MB/s"`.
    public static func byteRate(_ bytesPerSecond: Double) -> String {
        let value = bytesPerSecond.isFinite ? max(0, bytesPerSecond) : 0
        if value < 1024 { return "\(Int(value.rounded())) B/s" }
        let (number, unit) = scaled(value, base: 1024, units: ["B", "KB", "MB", "GB", "TB"])
        return "\(number) \(unit)/s"
    }

    /// Short byte rate without the space: `"5.1MB/s"`.
    public static func byteRateShort(_ bytesPerSecond: Double) -> String {
        byteRate(bytesPerSecond).replacingSpaces()
    }

    /// Event rate: `"0.5/s"`, `"12.0/s"`, `"9.9k/s"`, `"1.2M/s"`.
    public static func rate(_ perSecond: Double) -> String {
        let value = perSecond.isFinite ? max(0, perSecond) : 0
        let (number, unit) = scaled(value, base: 1000, units: ["", "k", "M", "G"])
        return "\(number)\(unit)/s"
    }

    /// Elapsed time, two units at most: `"12s"`, `"4m03s"`, `"2h01m"`, `"3d04h"`.
    public static func duration(_ seconds: Double) -> String {
        let total = seconds.isFinite ? Int(max(0, seconds).rounded(.down)) : 0
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(pad2(total % 60))s" }
        if total < 86_400 { return "\(total / 3600)h\(pad2(total % 3600 / 60))m" }
        return "\(total / 86_400)d\(pad2(total % 86_400 / 3600))h"
    }

    /// A configured timeout: `"3s"`, `"2.5s"`, `"250ms"`.
    public static func seconds(_ value: Double) -> String {
        guard value.isFinite, value >= 0 else { return "–" }
        if value < 1 && value > 0 { return "\(Int((value * 1000).rounded()))ms" }
        let tenths = Int((value * 10).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10)s" : oneDecimal(value) + "s"
    }

    /// Time of day `"HH:MM:SS"` for a Unix timestamp, shifted by `utcOffset` seconds.
    public static func clock(_ time: Double, utcOffset: Int = 0) -> String {
        let whole = time.isFinite ? Int(time.rounded(.down)) : 0
        let secondOfDay = ((whole + utcOffset) % 86_400 + 86_400) % 86_400
        return "\(pad2(secondOfDay / 3600)):\(pad2(secondOfDay % 3600 / 60)):\(pad2(secondOfDay % 60))"
    }

    /// A ban duration as the parser accepts it: `"30s"`, `"5m"`, `"2h"`, `"1d"`.
    public static func durationToken(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        if seconds > 0 && seconds % 86_400 == 0 { return "\(seconds / 86_400)d" }
        if seconds > 0 && seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds > 0 && seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    /// Makes arbitrary text safe for a single terminal line: line breaks become `⏎`, other C0
    /// controls their Unicode control pictures (`␉`, `␀`, …), DEL `␡` and C1 controls `�`.
    /// Only the first `maxCharacters` characters are looked at, so huge payloads stay cheap.
    public static func oneLine(_ text: String, maxCharacters: Int = 512) -> String {
        var out = ""
        var taken = 0
        for character in text {
            if taken >= maxCharacters {
                out.append("…")
                break
            }
            taken += 1
            guard let first = character.unicodeScalars.first else { continue }
            switch first.value {
            case 0x0A, 0x0D: out.append("⏎")
            case 0x00..<0x20: out.unicodeScalars.append(Unicode.Scalar(0x2400 + first.value)!)
            case 0x7F: out.append("␡")
            case 0x80..<0xA0: out.append("\u{FFFD}")
            default: out.append(character)
            }
        }
        return out
    }

    static func pad2(_ value: Int) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }

    /// One decimal place, rounded half away from zero, without Foundation.
    public static func oneDecimal(_ value: Double) -> String {
        guard value.isFinite else { return "–" }
        let tenths = Int((value * 10).rounded())
        let magnitude = tenths.magnitude
        return (tenths < 0 ? "-" : "") + "\(magnitude / 10).\(magnitude % 10)"
    }

    /// Scales `value` into the largest unit below `base`, so rounding never shows `1024.0K`.
    private static func scaled(_ value: Double, base: Double, units: [String]) -> (String, String) {
        var scaled = value
        var index = 0
        while index < units.count - 1 && (scaled * 10).rounded() >= base * 10 {
            scaled /= base
            index += 1
        }
        return (oneDecimal(scaled), units[index])
    }
}

extension String {
    fileprivate func replacingSpaces() -> String {
        String(filter { $0 != " " })
    }
}
