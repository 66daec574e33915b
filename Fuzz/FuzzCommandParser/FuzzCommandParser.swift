import SSEConsoleCore

/// Fuzzes the console's command language: any line parses to a command or a precise error, never a
/// crash; parsing is deterministic; and an id or type that parses passes the broker's rules.
func fuzzOne(_ input: [UInt8]) {
    let line = String(decoding: input, as: UTF8.self)
    let first = CommandParser.parseResult(line)
    let second = CommandParser.parseResult(line)
    switch (first, second) {
    case (.success(let a), .success(let b)):
        precondition(a == b, "parsing is not deterministic")
        switch a {
        case .broadcast(let type, _):
            precondition(!type.unicodeScalars.contains { $0 == "\n" || $0 == "\r" }, "a type with a line break parsed")
        case .broadcastTo(let id, let type, _):
            precondition(!type.unicodeScalars.contains { $0 == "\n" || $0 == "\r" }, "a type with a line break parsed")
            precondition(!id.unicodeScalars.contains { $0.properties.isWhitespace }, "an id with whitespace parsed")
        default:
            break
        }
    case (.failure(let a), .failure(let b)):
        precondition(a == b && !a.message.isEmpty, "errors must be precise and deterministic")
    default:
        preconditionFailure("parsing is not deterministic")
    }
}

/// Nothing to prepare before the first input.
func fuzzSetUp() {}
