import NIOCore
import Testing

@testable import SSEBroker

@Suite struct EventEncoderTests {
    private func encoded(_ data: String, type: String? = nil, id: UInt64 = 7) -> String {
        String(buffer: EventEncoder.encode(Event(type: type, data: data), id: id))
    }

    @Test func singleLine_withType() {
        #expect(self.encoded("hello", type: "greeting") == "event: greeting\ndata: hello\nid: 7\n\n")
    }

    @Test func noType_writesNoEventField() {
        #expect(self.encoded("hello") == "data: hello\nid: 7\n\n")
        #expect(self.encoded("hello", type: "") == "data: hello\nid: 7\n\n")
    }

    @Test(arguments: ["a\nb", "a\r\nb", "a\rb"])
    func lineBreaks_eachBecomeOneDataLine(_ data: String) {
        #expect(self.encoded(data) == "data: a\ndata: b\nid: 7\n\n")
    }

    @Test func mixedAndRepeatedLineBreaks() {
        #expect(self.encoded("a\r\n\r\nb\r\rc\n") == "data: a\ndata: \ndata: b\ndata: \ndata: c\ndata: \nid: 7\n\n")
    }

    @Test func emptyData_isOneEmptyDataLine() {
        // A single empty `data:` line is dispatched by clients with empty data.
        #expect(self.encoded("") == "data: \nid: 7\n\n")
    }

    @Test func leadingSpace_survives() {
        // Clients strip exactly one space after the colon; we always write one.
        #expect(self.encoded(" indented") == "data:  indented\nid: 7\n\n")
    }

    @Test func unicode_isWrittenAsUTF8() {
        let data = "héllo 日本 🎉"
        let buffer = EventEncoder.encode(Event(type: "ünï", data: data), id: 1)
        #expect(String(buffer: buffer) == "event: ünï\ndata: héllo 日本 🎉\nid: 1\n\n")
    }

    @Test func dataThatLooksLikeFields_staysData() {
        #expect(self.encoded("id: 99\nevent: evil\n\ndata: x") == "data: id: 99\ndata: event: evil\ndata: \ndata: data: x\nid: 7\n\n")
    }

    @Test func largeIDs() {
        #expect(self.encoded("x", id: UInt64.max) == "data: x\nid: \(UInt64.max)\n\n")
    }

    @Test func comment_isOneLine() {
        #expect(String(buffer: EventEncoder.comment("a\nb\rc")) == ": a b c\n\n")
    }

    @Test func preamble_hasCommentAndRetry() {
        #expect(String(buffer: EventEncoder.preamble(clientID: "c1", retry: .milliseconds(2500))) == ": connected c1\nretry: 2500\n\n")
        #expect(String(buffer: EventEncoder.preamble(clientID: "c1", retry: nil)) == ": connected c1\n\n")
    }
}

@Suite struct ValidationTests {
    @Test(arguments: ["a\nb", "a\rb", "a\u{0}b", "\u{7F}", "tab\there", "\u{85}"])
    func eventType_withControlCharacter_isRefused(_ type: String) {
        #expect(throws: BrokerError.self) { try Validation.validateEventType(type) }
    }

    @Test func eventType_messageNamesTheCharacter() {
        #expect(throws: BrokerError.invalidEventType("it contains the control character U+000A at position 2 (a line break would inject SSE fields)")) {
            try Validation.validateEventType("a\nb")
        }
    }

    @Test func eventType_spacesAndUnicode_areAllowed() throws {
        try Validation.validateEventType("user joined")
        try Validation.validateEventType("日本")
    }

    @Test func eventType_tooLong_isRefused() {
        #expect(throws: BrokerError.invalidEventType("it is 129 bytes long; the limit is 128")) {
            try Validation.validateEventType(String(repeating: "x", count: 129))
        }
    }

    @Test(arguments: ["", "a b", "a\tb", "a\nb", String(repeating: "i", count: 129)])
    func clientID_invalid(_ id: String) {
        #expect(throws: BrokerError.self) { try Validation.validateClientID(id) }
    }

    @Test func clientID_valid() throws {
        try Validation.validateClientID("user-42@example.com")
        try Validation.validateClientID("ünï")
    }
}

@Suite struct QueryParametersTests {
    @Test func decodesPercentAndPlus() throws {
        let query = try QueryParameters(uri: "/broadcast?type=a%20b+c&id=x%2Fy&empty=&flag")
        #expect(query["type"] == "a b c")
        #expect(query["id"] == "x/y")
        #expect(query["empty"] == "")
        #expect(query["flag"] == "")
        #expect(query["missing"] == nil)
    }

    @Test func noQuery() throws {
        #expect(try QueryParameters(uri: "/connect")["id"] == nil)
    }

    @Test func encodedNewline_isDecoded_soValidationSeesIt() throws {
        #expect(try QueryParameters(uri: "/b?type=a%0Aid:%205")["type"] == "a\nid: 5")
    }

    @Test(arguments: ["/b?type=%", "/b?type=%4", "/b?type=%zz", "/b?type=%FF"])
    func malformedEscapes_areRefused(_ uri: String) {
        #expect(throws: BrokerError.self) { try QueryParameters(uri: uri) }
    }

    @Test func repeatedParameter_isRefused() {
        #expect(throws: BrokerError.invalidParameter("query parameter \"id\" is given more than once")) {
            try QueryParameters(uri: "/b?id=a&id=b")
        }
    }

    @Test func repeatableTopics_keepTheirOrder_andTooManyParameters_areRefused() throws {
        let query = try QueryParameters(uri: "/c?topic=b&id=x&topic=a")
        #expect(query.values(of: "topic") == ["b", "a"] && query["topic"] == "b" && query["id"] == "x")
        #expect(query == (try QueryParameters(uri: "/c?id=x&topic=b&topic=a")))
        #expect(query != (try QueryParameters(uri: "/c?id=x&topic=a&topic=b")))
        let many = (0...QueryParameters.maxParameters).map { "p\($0)=1" }.joined(separator: "&")
        #expect(throws: BrokerError.invalidParameter("the query string has more than 128 parameters")) {
            try QueryParameters(uri: "/c?" + many)
        }
    }
}

@Suite struct BrokerConfigurationTests {
    @Test func defaults_areValid() throws {
        try BrokerConfiguration().validate()
    }

    @Test func negativeTimeout_isRefused() {
        #expect(throws: BrokerError.invalidConfiguration("writeTimeout must not be negative (got -1.0 seconds)")) {
            try BrokerConfiguration(writeTimeout: .seconds(-1)).validate()
        }
    }

    @Test func brokerInit_validates() {
        #expect(throws: BrokerError.self) { try Broker(configuration: BrokerConfiguration(tolerance: 0)) }
        #expect(throws: BrokerError.self) { try Broker(configuration: BrokerConfiguration(heartbeatInterval: .zero)) }
        #expect(throws: BrokerError.self) { try Broker(configuration: BrokerConfiguration(maxClientBacklogBytes: 0)) }
    }
}

@Suite struct ReplayHistoryTests {
    private func history(_ ids: ClosedRange<UInt64>, maxCount: Int = 100, maxBytes: Int = 1 << 20, target: (UInt64) -> String? = { _ in nil })
        -> ReplayHistory
    {
        var history = ReplayHistory(maxCount: maxCount, maxBytes: maxBytes, horizon: 0)
        for id in ids {
            history.append(id: id, target: target(id), encoded: ByteBuffer(string: "e\(id)"))
        }
        return history
    }

    private func strings(_ buffers: [ByteBuffer]) -> [String] { buffers.map { String(buffer: $0) } }

    @Test func eventsAfter_returnsTheMissedOnesInOrder() {
        #expect(self.strings(self.history(1...5).events(after: 2, for: "c")) == ["e3", "e4", "e5"])
        #expect(self.strings(self.history(1...5).events(after: 5, for: "c")) == [])
    }

    @Test func idNewerThanAnything_replaysNothing() {
        #expect(self.history(1...5).events(after: 500, for: "c").isEmpty)
    }

    @Test func idOlderThanOldestKept_replaysAllKept() {
        let history = self.history(1...10, maxCount: 3)
        #expect(history.count == 3)
        #expect(self.strings(history.events(after: 1, for: "c")) == ["e8", "e9", "e10"])
    }

    @Test func targetedEvents_onlyForTheirClient() {
        let history = self.history(1...4) { $0 == 2 ? "alice" : $0 == 3 ? "bob" : nil }
        #expect(self.strings(history.events(after: 0, for: "alice")) == ["e1", "e2", "e4"])
        #expect(self.strings(history.events(after: 0, for: "bob")) == ["e1", "e3", "e4"])
    }

    @Test func byteLimit_evictsOldest() {
        let history = self.history(1...10, maxBytes: 6)  // "e1".."e9" are 2 bytes, "e10" 3
        #expect(self.strings(history.events(after: 0, for: "c")) == ["e9", "e10"])
        #expect(history.count == 2)
    }

    @Test func sizeZero_keepsNothing() {
        #expect(self.history(1...3, maxCount: 0).count == 0)
    }
}

@Suite struct TolerancePolicyTests {
    let policy = TolerancePolicy(writeTimeout: .seconds(3), tolerance: 3, maxBacklogBytes: 1000)

    @Test func mayQueue_untilTimeoutOrBacklogFull() {
        #expect(self.policy.mayQueue(unwritableFor: .seconds(1), backlogBytes: 0, size: 100))
        #expect(!self.policy.mayQueue(unwritableFor: .seconds(3), backlogBytes: 0, size: 100))
        #expect(!self.policy.mayQueue(unwritableFor: .zero, backlogBytes: 950, size: 100))
        #expect(self.policy.mayQueue(unwritableFor: .zero, backlogBytes: 900, size: 100))
    }

    @Test func mustDisconnect_atTolerance() {
        #expect(!self.policy.mustDisconnect(consecutiveErrors: 2))
        #expect(self.policy.mustDisconnect(consecutiveErrors: 3))
    }
}
