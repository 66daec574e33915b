import Testing
@testable import SSEConsoleCore

private func parse(_ line: String) throws(CommandError) -> Command {
    try CommandParser.parse(line)
}

private func error(_ line: String) -> String? {
    do {
        _ = try CommandParser.parse(line)
        return nil
    } catch {
        return error.message
    }
}

@Suite struct CommandParserTests {
    @Test(arguments: [
        ("broadcast greeting hello", Command.broadcast(type: "greeting", data: "hello")),
        ("b greeting hello", .broadcast(type: "greeting", data: "hello")),
        ("BROADCAST greeting hello", .broadcast(type: "greeting", data: "hello")),
        ("broadcastTo alice greeting hi there", .broadcastTo(clientID: "alice", type: "greeting", data: "hi there")),
        ("to alice greeting hi", .broadcastTo(clientID: "alice", type: "greeting", data: "hi")),
        ("broadcastto alice t x", .broadcastTo(clientID: "alice", type: "t", data: "x")),
        ("kick alice", .kick(clientID: "alice")),
        ("topics", .topics(nil)),
        ("topics orders.*", .topics("orders.*")),
        ("topics \"a b\"", .topics("a b")),
        ("ban alice", .ban(clientID: "alice", duration: nil)),
        ("ban alice 30s", .ban(clientID: "alice", duration: .seconds(30))),
        ("ban alice 5m", .ban(clientID: "alice", duration: .seconds(300))),
        ("ban alice 2h", .ban(clientID: "alice", duration: .seconds(7_200))),
        ("ban alice 1d", .ban(clientID: "alice", duration: .seconds(86_400))),
        ("ban alice 45", .ban(clientID: "alice", duration: .seconds(45))),
        ("unban alice", .unban(clientID: "alice")),
        ("clients", .clients),
        ("filter", .filter(nil)),
        ("filter   ", .filter(nil)),
        ("filter alice bob ", .filter("alice bob")),
        ("clear", .clear),
        ("help", .help),
        ("?", .help),
        ("quit", .quit),
        ("exit", .quit),
        ("q", .quit),
        ("  kick   alice  ", .kick(clientID: "alice")),
    ])
    func parsesEveryCommandAndAlias(line: String, expected: Command) throws {
        #expect(try parse(line) == expected)
    }

    @Test func dataIsTheRestOfTheLineAfterOneSpace() throws {
        #expect(try parse("broadcast ping") == .broadcast(type: "ping", data: ""))
        #expect(try parse("broadcast ping ") == .broadcast(type: "ping", data: ""))
        #expect(try parse("broadcast ping   two  spaces ") == .broadcast(type: "ping", data: "  two  spaces "))
        #expect(try parse("broadcast   ping x") == .broadcast(type: "ping", data: "x"))
        #expect(try parse("to alice ping") == .broadcastTo(clientID: "alice", type: "ping", data: ""))
    }

    @Test func dataEscapes() throws {
        #expect(try parse(#"b t line1\nline2\r\tend"#) == .broadcast(type: "t", data: "line1\nline2\r\tend"))
        #expect(try parse(#"b t back\\slash \"q\""#) == .broadcast(type: "t", data: #"back\slash "q""#))
        #expect(try parse(#"b t \u{1F600} \u{e9}"#) == .broadcast(type: "t", data: "😀 é"))
    }

    @Test func dataKeepsQuotesAndUnicodeVerbatim() throws {
        #expect(try parse(#"b json {"a":1,"b":"x y"}"#) == .broadcast(type: "json", data: #"{"a":1,"b":"x y"}"#))
        #expect(try parse("b t 日本語 é 👍🏽") == .broadcast(type: "t", data: "日本語 é 👍🏽"))
        #expect(try parse("b 日本 x") == .broadcast(type: "日本", data: "x"))
    }

    @Test func quotedTokens() throws {
        #expect(try parse(#"b "my type" data"#) == .broadcast(type: "my type", data: "data"))
        #expect(try parse(#"b "a \"b\" \\c" d"#) == .broadcast(type: #"a "b" \c"#, data: "d"))
        #expect(try parse(#"to "alice" "t""#) == .broadcastTo(clientID: "alice", type: "t", data: ""))
        #expect(try parse(#"kick "alice""#) == .kick(clientID: "alice"))
    }

    @Test func longInput() throws {
        let data = String(repeating: "abc ", count: 25_000)
        #expect(try parse("b t " + data) == .broadcast(type: "t", data: data))
        let type = String(repeating: "x", count: 128)
        #expect(try parse("b \(type) d") == .broadcast(type: type, data: "d"))
    }

    @Test(arguments: [
        ("brodcast x", #"unknown command "brodcast" (did you mean "broadcast"?)"#),
        ("kik alice", #"unknown command "kik" (did you mean "kick"?)"#),
        ("broad x", #"unknown command "broad" (did you mean "broadcast"?)"#),
        ("xyzzy", #"unknown command "xyzzy" (type help for the list)"#),
        ("broadcast", "broadcast: missing <type> — usage: broadcast <type> <data...>"),
        ("b   ", "broadcast: missing <type> — usage: broadcast <type> <data...>"),
        ("broadcastTo", "broadcastTo: missing <id> — usage: broadcastTo <id> <type> <data...>"),
        ("to alice", "broadcastTo: missing <type> — usage: broadcastTo <id> <type> <data...>"),
        ("kick", "kick: missing <id> — usage: kick <id>"),
        ("ban", "ban: missing <id> — usage: ban <id> [30s|5m|2h|1d]"),
        ("unban", "unban: missing <id> — usage: unban <id>"),
        ("b \"a\nb\" x", "event type contains a control character (U+000A) — newlines would inject SSE fields"),
        ("b a\u{7F}b x", "event type contains a control character (U+007F) — newlines would inject SSE fields"),
        ("b a\u{85}b x", "event type contains a control character (U+0085) — newlines would inject SSE fields"),
        ("b \"\" x", "event type must not be empty"),
        ("kick \"a b\"", "client id must not contain whitespace or control characters"),
        ("kick a\u{1}b", "client id must not contain whitespace or control characters"),
        ("kick a\u{A0}b", "client id must not contain whitespace or control characters"),
        ("b \(String(repeating: "x", count: 129)) d", "type longer than 128 bytes"),
        ("b \(String(repeating: "é", count: 65)) d", "type longer than 128 bytes"),
        ("kick \(String(repeating: "x", count: 129))", "client id longer than 128 bytes"),
        ("b \"my type data", "unterminated quote"),
        ("b \"my type\\", "unterminated quote"),
        (#"b t a\qb"#, #"unknown escape \q in data"#),
        (#"b t end\"#, #"unfinished escape at end of data (use \\ for a backslash)"#),
        (#"b t \u{110000}"#, #"invalid \u{...} escape in data (1–6 hex digits of a Unicode scalar)"#),
        (#"b t \u41"#, #"invalid \u{...} escape in data (1–6 hex digits of a Unicode scalar)"#),
        (#"b "a\qb" x"#, #"unknown escape \q in <type> (only \" and \\ inside quotes)"#),
        (#"b "ab"c x"#, "<type>: expected a space after the closing quote"),
        ("ban alice 5x", #"ban: invalid duration "5x" (use 30s, 5m, 2h, 1d)"#),
        ("ban alice m", #"ban: invalid duration "m" (use 30s, 5m, 2h, 1d)"#),
        ("ban alice -5s", #"ban: invalid duration "-5s" (use 30s, 5m, 2h, 1d)"#),
        ("ban alice 0s", "ban: duration must be greater than zero"),
        ("ban alice 5m now", #"ban: unexpected extra argument "now""#),
        ("kick alice foo", #"kick: unexpected extra argument "foo""#),
        ("topics a b", #"topics: unexpected extra argument "b""#),
        ("unban alice foo", #"unban: unexpected extra argument "foo""#),
        ("clear all", #"clear: unexpected extra argument "all""#),
        ("quit now", #"quit: unexpected extra argument "now""#),
        ("", "empty command — type help for the list"),
    ])
    func errorMessages(line: String, message: String) {
        #expect(error(line) == message)
    }

    @Test(arguments: [
        Command.broadcast(type: "greeting", data: "hello world"),
        .broadcast(type: "ping", data: ""),
        .broadcast(type: "my type", data: " leading space\nsecond line\t\\ \"q\" \u{1}"),
        .broadcast(type: #""quoted\"#, data: "x"),
        .broadcastTo(clientID: "alice", type: "t", data: "日本"),
        .kick(clientID: "bob"),
        .ban(clientID: "bob", duration: nil),
        .ban(clientID: "bob", duration: .seconds(90)),
        .ban(clientID: "bob", duration: .seconds(7_200)),
        .unban(clientID: "bob"),
        .clients, .filter("error bob"), .filter(nil), .clear, .help, .quit,
    ])
    func descriptionReadsBackToTheSameCommand(command: Command) throws {
        #expect(try parse(command.description) == command)
    }

    @Test func canonicalDescriptions() {
        #expect(Command.broadcast(type: "greeting", data: "a\nb").description == #"broadcast greeting a\nb"#)
        #expect(Command.broadcastTo(clientID: "alice", type: "my type", data: "").description == #"broadcastTo alice "my type""#)
        #expect(Command.ban(clientID: "alice", duration: .seconds(300)).description == "ban alice 5m")
        #expect(Command.ban(clientID: "alice", duration: .seconds(86_400)).description == "ban alice 1d")
        #expect(Command.filter("x").description == "filter x")
    }

    @Test func specsCoverEveryNameAndAlias() {
        for name in ["broadcast", "b", "broadcastTo", "to", "kick", "ban", "unban", "clients", "filter", "clear", "help", "?", "quit", "exit", "q"] {
            #expect(CommandParser.spec(named: name) != nil, "\(name)")
        }
        #expect(CommandParser.spec(named: "nope") == nil)
    }
}
