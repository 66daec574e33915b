/// Name, aliases and help text of one command; the help overlay and completion use this table,
/// so they cannot drift from the parser.
public struct CommandSpec: Sendable, Hashable {
    public let name: String
    public let aliases: [String]
    /// Arguments after the name, e.g. `"<id> <type> [data...]"`.
    public let arguments: String
    public let summary: String
    /// The first argument is a client id (for tab completion).
    public let takesClientID: Bool

    /// `name arguments`.
    public var usage: String { arguments.isEmpty ? name : "\(name) \(arguments)" }
}

/// Parses one console line into a `Command`. The same parser serves the TUI and the headless
/// stdin mode.
///
/// Syntax rules:
/// - A line is a command word followed by arguments. Command names and aliases are
///   case-insensitive: `broadcast`/`b`, `broadcastTo`/`to`, `kick`, `ban`, `unban`, `clients`,
///   `topics`, `nodes`/`cluster`, `filter`, `clear`, `save`, `help`/`?`, `quit`/`exit`/`q`. Leading spaces are ignored.
/// - Argument tokens (`<id>`, `<type>`, a ban duration) are separated by one or more spaces.
///   A token may be double-quoted (`"my type"`); inside quotes `\"` is a quote and `\\` a
///   backslash, any other escape is an error. An unquoted token is taken verbatim.
/// - For `broadcast <type> [data...]` and `broadcastTo <id> <type> [data...]` the data is the
///   rest of the line after exactly one space following the last token — further spaces belong
///   to the data. It is verbatim except for escapes: `\n` newline, `\r` carriage return, `\t`
///   tab, `\\` backslash, `\"` quote, `\u{1F600}` any Unicode scalar (1–6 hex digits). Any other
///   escape is an error. Data may be empty: `broadcast ping` sends an event with empty data.
/// - An event type must be 1–128 UTF-8 bytes without control characters (U+0000–U+001F,
///   U+007F–U+009F): a newline would inject SSE fields. A client id must be 1–128 UTF-8 bytes
///   without whitespace or control characters. Whether the id is connected is checked by the app.
/// - `ban <id> [duration]` takes `30s`, `5m`, `2h`, `1d` or a bare number of seconds; without a
///   duration the ban lasts until `unban`.
/// - `filter [text]` takes the rest of the line, trimmed, verbatim; without text it clears the
///   filter.
/// - `topics [topic]` takes one optional token, a topic or pattern (the rules of a type).
/// - `save <file>` takes one token, a path (quote it if it has spaces).
/// - `clients [all|here]`: with `all`, the clients table shows every node's connections.
/// - `kick`, `unban`, `nodes`, `bans`, `audit`, `clear`, `help`, `quit` accept no extra arguments.
public enum CommandParser {
    /// Maximum UTF-8 length of an event type or a client id.
    public static let maxTokenBytes = 128

    /// Every command, in help order.
    public static let specs: [CommandSpec] = [
        CommandSpec(name: "broadcast", aliases: ["b"], arguments: "<type> [data...]",
                    summary: "send an event to all clients", takesClientID: false),
        CommandSpec(name: "broadcastTo", aliases: ["to"], arguments: "<id> <type> [data...]",
                    summary: "send an event to one id", takesClientID: true),
        CommandSpec(name: "kick", aliases: [], arguments: "<id>",
                    summary: "disconnect a client", takesClientID: true),
        CommandSpec(name: "ban", aliases: [], arguments: "<id> [30s|5m|2h|1d]",
                    summary: "kick and refuse reconnects", takesClientID: true),
        CommandSpec(name: "unban", aliases: [], arguments: "<id>",
                    summary: "lift a ban", takesClientID: true),
        CommandSpec(name: "clients", aliases: [], arguments: "[all|here]",
                    summary: "list the clients (all nodes)", takesClientID: false),
        CommandSpec(name: "topics", aliases: [], arguments: "[topic]",
                    summary: "list the subscribed topics", takesClientID: false),
        CommandSpec(name: "nodes", aliases: ["cluster"], arguments: "",
                    summary: "list the cluster's nodes", takesClientID: false),
        CommandSpec(name: "bans", aliases: [], arguments: "",
                    summary: "list the bans (u unbans)", takesClientID: false),
        CommandSpec(name: "audit", aliases: [], arguments: "",
                    summary: "show the audit trail", takesClientID: false),
        CommandSpec(name: "filter", aliases: [], arguments: "[text]",
                    summary: "filter the log (empty: all)", takesClientID: false),
        CommandSpec(name: "clear", aliases: [], arguments: "",
                    summary: "clear the log", takesClientID: false),
        CommandSpec(name: "save", aliases: [], arguments: "<file>",
                    summary: "save the log as JSON lines", takesClientID: false),
        CommandSpec(name: "help", aliases: ["?"], arguments: "",
                    summary: "show this help", takesClientID: false),
        CommandSpec(name: "quit", aliases: ["exit", "q"], arguments: "",
                    summary: "stop the broker and exit", takesClientID: false),
    ]

    /// The spec whose name or alias matches `word`, case-insensitively.
    public static func spec(named word: String) -> CommandSpec? {
        let lowered = word.lowercased()
        return specs.first { $0.name.lowercased() == lowered || $0.aliases.contains(lowered) }
    }

    /// Parses `line`; the error message is meant for the user.
    public static func parse(_ line: String) throws(CommandError) -> Command {
        var scanner = Scanner(line)
        scanner.skipSpaces()
        let word = scanner.word()
        guard !word.isEmpty else { throw CommandError("empty command — type help for the list") }
        guard let spec = spec(named: word) else { throw unknownCommand(word) }
        let name = spec.name

        func missing(_ argument: String) -> CommandError {
            CommandError("\(name): missing \(argument) — usage: \(spec.usage.replacing("[data...]", with: "<data...>"))")
        }
        func end() throws(CommandError) {
            if let extra = try scanner.token(argument: "argument") {
                throw CommandError("\(name): unexpected extra argument \"\(extra)\"")
            }
        }

        switch name {
        case "broadcast":
            guard let type = try scanner.token(argument: "<type>") else { throw missing("<type>") }
            try validateType(type)
            return .broadcast(type: type, data: try scanner.data())
        case "broadcastTo":
            guard let id = try scanner.token(argument: "<id>") else { throw missing("<id>") }
            try validateClientID(id)
            guard let type = try scanner.token(argument: "<type>") else { throw missing("<type>") }
            try validateType(type)
            return .broadcastTo(clientID: id, type: type, data: try scanner.data())
        case "kick", "unban":
            guard let id = try scanner.token(argument: "<id>") else { throw missing("<id>") }
            try validateClientID(id)
            try end()
            return name == "kick" ? .kick(clientID: id) : .unban(clientID: id)
        case "ban":
            guard let id = try scanner.token(argument: "<id>") else { throw missing("<id>") }
            try validateClientID(id)
            var duration: Duration?
            if let text = try scanner.token(argument: "[duration]") {
                duration = try parseDuration(text)
            }
            try end()
            return .ban(clientID: id, duration: duration)
        case "filter":
            let text = scanner.rest().trimmingSpaces()
            return .filter(text.isEmpty ? nil : text)
        case "clients":
            guard let scope = try scanner.token(argument: "[all|here]") else { return .clients }
            guard let parsed = ClientScope(rawValue: scope.lowercased()) else {
                throw CommandError("clients: unknown scope \"\(scope)\" (use all or here)")
            }
            try end()
            return .clientScope(parsed)
        case "bans":
            try end()
            return .bans
        case "audit":
            try end()
            return .audit
        case "topics":
            let topic = try scanner.token(argument: "[topic]")
            if let topic { try validateType(topic) }
            try end()
            return .topics(topic)
        case "nodes":
            try end()
            return .nodes
        case "clear":
            try end()
            return .clear
        case "save":
            guard let path = try scanner.token(argument: "<file>") else { throw missing("<file>") }
            if path.unicodeScalars.contains(where: isControl) {
                throw CommandError("save: the file name contains a control character")
            }
            try end()
            return .save(path: path)
        case "help":
            try end()
            return .help
        default:
            try end()
            return .quit
        }
    }

    /// `parse` as a `Result`, convenient for callers that do not use typed throws.
    public static func parseResult(_ line: String) -> Result<Command, CommandError> {
        do { return .success(try parse(line)) } catch { return .failure(error) }
    }

    /// Checks an event type against the rules above.
    public static func validateType(_ type: String) throws(CommandError) {
        if type.isEmpty { throw CommandError("event type must not be empty") }
        if let control = type.unicodeScalars.first(where: isControl) {
            throw CommandError(
                "event type contains a control character (\(codePoint(control))) — newlines would inject SSE fields")
        }
        if type.utf8.count > maxTokenBytes { throw CommandError("type longer than \(maxTokenBytes) bytes") }
    }

    /// Checks a client id against the rules above.
    public static func validateClientID(_ id: String) throws(CommandError) {
        if id.isEmpty { throw CommandError("client id must not be empty") }
        if id.unicodeScalars.contains(where: { isControl($0) || $0.properties.isWhitespace }) {
            throw CommandError("client id must not contain whitespace or control characters")
        }
        if id.utf8.count > maxTokenBytes { throw CommandError("client id longer than \(maxTokenBytes) bytes") }
    }

    /// `30s`, `5m`, `2h`, `1d` or a bare number of seconds.
    static func parseDuration(_ text: String) throws(CommandError) -> Duration {
        let invalid = CommandError("ban: invalid duration \"\(text)\" (use 30s, 5m, 2h, 1d)")
        var digits = Substring(text)
        var multiplier: Int64 = 1
        switch text.last?.lowercased() {
        case "s": multiplier = 1
        case "m": multiplier = 60
        case "h": multiplier = 3_600
        case "d": multiplier = 86_400
        default: multiplier = 0
        }
        if multiplier != 0 { digits = digits.dropLast() } else { multiplier = 1 }
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let value = Int64(digits)
        else { throw invalid }
        if value == 0 { throw CommandError("ban: duration must be greater than zero") }
        return .seconds(value * multiplier)
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    static func codePoint(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    private static func unknownCommand(_ word: String) -> CommandError {
        let lowered = word.lowercased()
        let names = specs.flatMap { [$0.name] + $0.aliases.filter { $0.count > 1 } }
        let threshold = lowered.count <= 2 ? 0 : (lowered.count <= 4 ? 1 : 2)
        var best: (name: String, distance: Int)?
        for name in names {
            let distance = editDistance(lowered, name.lowercased())
            if distance <= threshold && distance < (best?.distance ?? .max) { best = (name, distance) }
        }
        if best == nil && lowered.count >= 3, let prefixed = names.first(where: { $0.lowercased().hasPrefix(lowered) }) {
            best = (prefixed, 0)
        }
        if let best {
            return CommandError("unknown command \"\(word)\" (did you mean \"\(best.name)\"?)")
        }
        return CommandError("unknown command \"\(word)\" (type help for the list)")
    }

    /// Levenshtein distance; names are short, so the quadratic table is fine.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// Reads a command line scalar by scalar (so an escape backslash never fuses with a following
/// combining mark into one `Character`).
private struct Scanner {
    let scalars: [Unicode.Scalar]
    var index = 0

    init(_ line: String) {
        scalars = Array(line.unicodeScalars)
    }

    var atEnd: Bool { index >= scalars.count }

    mutating func skipSpaces() {
        while !atEnd && (scalars[index] == " " || scalars[index] == "\t") { index += 1 }
    }

    /// The command word: everything up to the next space.
    mutating func word() -> String {
        var out = String.UnicodeScalarView()
        while !atEnd && scalars[index] != " " {
            out.append(scalars[index])
            index += 1
        }
        return String(out)
    }

    /// The next token, or `nil` at the end of the line.
    mutating func token(argument: String) throws(CommandError) -> String? {
        while !atEnd && scalars[index] == " " { index += 1 }
        guard !atEnd else { return nil }
        guard scalars[index] == "\"" else { return word() }
        index += 1
        var out = String.UnicodeScalarView()
        while true {
            guard !atEnd else { throw CommandError("unterminated quote") }
            let scalar = scalars[index]
            index += 1
            if scalar == "\"" { break }
            if scalar == "\\" {
                guard !atEnd else { throw CommandError("unterminated quote") }
                let escaped = scalars[index]
                guard escaped == "\"" || escaped == "\\" else {
                    throw CommandError("unknown escape \\\(escaped) in \(argument) (only \\\" and \\\\ inside quotes)")
                }
                out.append(escaped)
                index += 1
            } else {
                out.append(scalar)
            }
        }
        if !atEnd && scalars[index] != " " {
            throw CommandError("\(argument): expected a space after the closing quote")
        }
        return String(out)
    }

    /// The rest of the line after exactly one separating space, unescaped.
    mutating func data() throws(CommandError) -> String {
        if !atEnd { index += 1 }  // the one separator; a token always ends at a space or the end
        var out = String.UnicodeScalarView()
        while !atEnd {
            let scalar = scalars[index]
            index += 1
            guard scalar == "\\" else {
                out.append(scalar)
                continue
            }
            guard !atEnd else { throw CommandError("unfinished escape at end of data (use \\\\ for a backslash)") }
            let escaped = scalars[index]
            index += 1
            switch escaped {
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "\\": out.append("\\")
            case "\"": out.append("\"")
            case "u": out.append(try unicodeEscape())
            default: throw CommandError("unknown escape \\\(escaped) in data")
            }
        }
        return String(out)
    }

    /// Everything after the current position, verbatim.
    mutating func rest() -> String {
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars[min(index, scalars.count)...])
        index = scalars.count
        return String(out)
    }

    /// The `{XXXX}` part of `\u{XXXX}`.
    private mutating func unicodeEscape() throws(CommandError) -> Unicode.Scalar {
        let invalid = CommandError("invalid \\u{...} escape in data (1–6 hex digits of a Unicode scalar)")
        guard !atEnd, scalars[index] == "{" else { throw invalid }
        index += 1
        var hex = ""
        while !atEnd && scalars[index] != "}" && hex.count <= 6 {
            hex.unicodeScalars.append(scalars[index])
            index += 1
        }
        guard !atEnd, scalars[index] == "}", (1...6).contains(hex.count),
              let value = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(value)
        else { throw invalid }
        index += 1
        return scalar
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
