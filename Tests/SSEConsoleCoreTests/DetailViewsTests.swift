import Foundation
import Testing

@testable import SSEConsoleCore

private let small = KeyContext(screen: ScreenSize(cols: 80, rows: 24))
private let large = KeyContext(screen: ScreenSize(cols: 120, rows: 40))

/// The drill-down views (client detail, event detail), the rates pane and `save`'s export, rendered
/// without a terminal at 80x24 and 120x40.
@Suite struct DetailViewsTests {
    /// Alice's first connection, as the app fills it in: resumed, with a token, two misses and 25
    /// deliveries (the view lists 20).
    static func aliceDetail() -> ClientDetail {
        let now = Fixtures.now
        return ClientDetail(
            connectionID: 1, id: "alice", node: "node-a", remoteAddress: "192.168.1.20:51234",
            userAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", httpVersion: "h2",
            topics: ["orders.*", "price"], tokenSubject: "alice", tokenExpiresAt: now + 3_600,
            connectedAt: now - 7_260, resumedFrom: "41", replayedEvents: 3, eventsSent: 12_345, bytesSent: 1_234_567,
            backlogBytes: 2_048, consecutiveErrors: 1, totalErrors: 2,
            errors: [
                .init(time: now - 30, text: "socket not writable for 3200 ms, 65536 bytes queued; 300-byte event dropped (1 in a row)"),
                .init(time: now - 10, text: "socket not writable for 3100 ms, 70000 bytes queued; 42-byte event dropped (1 in a row)"),
            ],
            deliveries: (0..<20).map { index in
                .init(time: now - Double(index), eventID: UInt64(100 - index), type: index % 2 == 0 ? "price" : "orders.eu",
                      size: 40 + index, replayed: index >= 17)
            })
    }

    static func openAlice(context: KeyContext) -> ConsoleState {
        var state = Fixtures.state()
        state.editor.setText("")
        state.press(.escape, context: context)
        #expect(state.clients.selectedRow?.connectionID == 1)
        state.press(.enter, context: context)
        state.updateClientDetail(aliceDetail())
        return state
    }

    private func rows(_ canvas: Canvas) -> [String] { canvas.plainText }

    // MARK: Client detail

    @Test func clientDetail_layout80x24_listsTheFactsAndScrollsToTheDeliveries() throws {
        var state = Self.openAlice(context: small)
        var canvas = Fixtures.render(state, cols: 80, rows: 24)
        var text = rows(canvas)
        #expect(text.allSatisfy { displayWidth(of: $0) <= 80 })
        #expect(text[1].contains("Client alice") && text[1].contains("connection 1") && text[1].contains("Esc: back"))
        let joined = text.joined(separator: "\n")
        for fact in ["node-a", "192.168.1.20:51234", "h2", "Mozilla/5.0", "orders.*, price", "alice · expires in 1h00m",
                     "Last-Event-ID 41 · 3 replayed", "12,345 events · 1.2M", "1/3 in a row · 2 in all"] {
            #expect(joined.contains(fact), "\(fact)")
        }
        // Too long for 22 rows: the title says which lines show, the hints say how to leave.
        #expect(text[1].contains("1–20 of"))
        #expect(text[23].hasPrefix("Esc back") && text[23].contains("m send to it"))

        state.press(.end, context: small)
        canvas = Fixtures.render(state, cols: 80, rows: 24)
        text = rows(canvas)
        #expect(text.contains { $0.contains("81") && $0.contains("orders.eu") && $0.contains("replay") })
        state.press(.home, context: small)
        #expect(rows(Fixtures.render(state, cols: 80, rows: 24))[2].contains("id"))
    }

    @Test func clientDetail_layout120x40_showsEverythingInTwoColumns() {
        let state = Self.openAlice(context: large)
        let text = rows(Fixtures.render(state, cols: 120, rows: 40))
        #expect(text.allSatisfy { displayWidth(of: $0) <= 120 })
        // Identity on the left, traffic on the right of the same line.
        #expect(text[2].contains("id") && text[2].contains("alice") && text[2].contains("connected"))
        #expect(!text[1].contains(" of "))  // no scrolling needed
        #expect(text.contains { $0.contains("Recent errors") })
        #expect(text.contains { $0.contains("70000 bytes queued") })
        let deliveries = text.filter { $0.contains("price") || $0.contains("orders.eu") }.filter { $0.contains("B") && !$0.contains("topics") }
        #expect(deliveries.count == 20)
        #expect(text.contains { $0.contains("Last 20 deliveries") })
        #expect(text.contains { $0.contains("EVENT ID") && $0.contains("TYPE") && $0.contains("SIZE") })
    }

    @Test func clientDetail_actions_kickBanSendAndEscBackAtTheSameRow() {
        var state = Fixtures.state()
        state.editor.setText("")
        state.press(.escape, .down, .down, context: small)
        let selected = state.clients.selectedIndex
        #expect(state.clients.selectedRow?.id == "bob")
        state.press(.enter, context: small)
        #expect(state.inspectedConnectionID == 2)
        #expect(state.type("k", context: small) == [.execute(.kick(clientID: "bob"))])
        #expect(state.type("B", context: small) == [.execute(.ban(clientID: "bob", duration: nil))])
        state.type("m", context: small)
        #expect(state.mode == .command && state.editor.text == "broadcastTo bob ")
        state.type("ping hi", context: small)
        #expect(state.press(.enter, context: small) == [.execute(.broadcastTo(clientID: "bob", type: "ping", data: "hi"))])
        #expect(state.inspectedConnectionID == 2)  // still inspecting: the delivery shows up there
        state.press(.escape, context: small)  // leave the command line
        #expect(state.detail != nil)
        state.press(.escape, context: small)  // leave the detail
        #expect(state.detail == nil && state.clients.selectedIndex == selected && state.focus == .clients)
    }

    @Test func clientDetail_bDoesNotSend_mPrefills_andEscBeforeTypingTakesItOffAgain() {
        var state = Self.openAlice(context: small)
        // `b` is the bans view everywhere else: here it does nothing rather than prefill a send.
        #expect(state.type("b", context: small).isEmpty)
        #expect(state.mode == .navigate && state.editor.isEmpty && state.opsPanel == nil && state.inspectedConnectionID == 1)
        state.type("m", context: small)
        #expect(state.mode == .command && state.editor.text == "broadcastTo alice ")
        #expect(state.message?.text.hasSuffix("Esc cancels") == true)
        // Esc cancels: the line is gone, and does not come back at the next `:`.
        state.press(.escape, context: small)
        #expect(state.mode == .navigate && state.editor.isEmpty && state.message == nil && state.detail != nil)
        state.type(":", context: small)
        #expect(state.mode == .command && state.editor.isEmpty)
        state.press(.escape, context: small)
        // Typed work is never dropped: with an event type typed, Esc leaves the line as it is.
        state.type("m", context: small)
        state.type("ping", context: small)
        state.press(.escape, context: small)
        #expect(state.mode == .navigate && state.editor.text == "broadcastTo alice ping")
        state.type(":", context: small)
        #expect(state.editor.text == "broadcastTo alice ping")
    }

    @Test func slashFilter_escBeforeTypingTakesThePrefillOff_aTypedFilterStays() {
        var state = Fixtures.state()
        state.editor.setText("")
        state.press(.escape, context: small)
        state.type("/", context: small)
        #expect(state.mode == .command && state.editor.text == "filter ")
        state.press(.escape, context: small)
        #expect(state.editor.isEmpty)
        state.type("/", context: small)
        state.type("bob", context: small)
        state.press(.escape, context: small)
        #expect(state.editor.text == "filter bob")
        // A line typed by hand that happens to read the same is not a prefill: it stays.
        state.type(":", context: small)
        state.press(.backspace, .backspace, .backspace, context: small)
        state.press(.escape, context: small)
        #expect(state.editor.text == "filter ")
    }

    /// Alice's deliveries are events 100 down to 81; the broker recorded misses of some of them.
    @Test func clientDetail_marksTheRecordedMissesAmongTheDeliveries_andSaysWhenOlderOnesMayBeListed() {
        var state = Self.openAlice(context: large)
        var detail = Self.aliceDetail()
        detail.errors = [
            .init(time: Fixtures.now - 5, text: "socket not writable for 3200 ms", eventID: 95),
            .init(time: Fixtures.now - 1, text: "socket not writable for 3300 ms", eventID: 99),
        ]
        detail.totalErrors = 2
        state.updateClientDetail(detail)
        var text = rows(Fixtures.render(state, cols: 120, rows: 40))
        let missed = text.filter { $0.hasSuffix("missed") }
        #expect(missed.count == 2)
        #expect(missed.allSatisfy { $0.contains(" 95 ") || $0.contains(" 99 ") })
        #expect(text.filter { $0.contains(" 96 ") }.allSatisfy { !$0.contains("missed") })
        #expect(!text.contains { $0.contains("not recorded") })

        // Five misses, two recorded: the three older ones may be among the 20 listed (down to 81).
        detail.totalErrors = 5
        #expect(detail.unrecordedMissesInList == 3)
        state.updateClientDetail(detail)
        text = rows(Fixtures.render(state, cols: 120, rows: 40))
        #expect(text.contains { $0.contains("3 misses earlier not recorded: some listed may not have reached it") })
        // The oldest recorded miss is older than the list: the unrecorded ones are older still.
        detail.errors[0].eventID = 70
        #expect(detail.unrecordedMissesInList == 0)
        // A replay's miss has no event id: its time says it.
        detail.errors[0] = .init(time: Fixtures.now - 30, text: "replay", eventID: nil)
        #expect(detail.unrecordedMissesInList == 0)
        detail.errors[0].time = Fixtures.now - 10
        #expect(detail.unrecordedMissesInList == 3)
        // None recorded: every miss may be listed; no deliveries: nothing to say.
        detail.errors = []
        #expect(detail.unrecordedMissesInList == 5)
        detail.deliveries = []
        #expect(detail.unrecordedMissesInList == 0)
    }

    @Test func clientDetail_departedConnectionStaysMarked_andRowOnlyDetailSaysDeliveriesAreComing() {
        var state = Fixtures.state()
        state.press(.escape, .enter, context: small)
        var text = rows(Fixtures.render(state, cols: 120, rows: 40)).joined(separator: "\n")
        #expect(text.contains("Last 20 deliveries") && text.contains("…"))
        // Missed by a snapshot first (closed), then the broker's reason arrives; a later guess does not undo it.
        state.markInspectedClientDeparted(Departure(reason: .closed, at: Fixtures.now))
        state.markInspectedClientDeparted(Departure(reason: .kicked, at: Fixtures.now))
        state.markInspectedClientDeparted(Departure(reason: .closed, at: Fixtures.now + 1))
        text = rows(Fixtures.render(state, cols: 120, rows: 40, colors: false)).joined(separator: "\n")
        #expect(text.contains("! gone: kicked"))
    }

    @Test func clientDetail_noColor_usesNoColours() {
        let state = Self.openAlice(context: small)
        let canvas = Fixtures.render(state, cols: 80, rows: 24, colors: false)
        #expect(canvas.cells.allSatisfy { $0.style.foreground == .default && $0.style.background == .default })
        #expect(canvas.plainText.joined().contains("! socket not writable"))
    }

    @Test func detail_afterResize_staysWithinTheScreen() {
        var state = Self.openAlice(context: large)
        state.press(.end, context: large)
        for size in [ScreenSize(cols: 80, rows: 24), ScreenSize(cols: 120, rows: 40), ScreenSize(cols: 40, rows: 10)] {
            state.press(.resize, context: KeyContext(screen: size))
            let canvas = Fixtures.render(state, cols: size.cols, rows: size.rows)
            #expect(canvas.plainText.allSatisfy { displayWidth(of: $0) <= size.cols })
            #expect(canvas.plainText[1].contains("Client alice"))
        }
    }

    // MARK: Event detail

    static func stateWithJSONEvent() -> ConsoleState {
        var state = Fixtures.state()
        state.editor.setText("")
        let json = #"{"symbol":"ACME","price":101.25,"tags":["a","b"],"nested":{"z":1,"a":[1,2,3]}}"#
        state.appendLog(LogEntry(time: Fixtures.now, source: .http, kind: .broadcast, type: "price", size: json.utf8.count,
                                 message: "→ 4 · " + json, eventID: 120, recipients: 4))
        return state
    }

    @Test func eventDetail_opensOnTheSelectedEntry_andPrettyPrintsJSON() {
        var state = Self.stateWithJSONEvent()
        state.press(.escape, .tab, context: small)
        #expect(state.focus == .log)
        #expect(state.press(.enter, context: small) == [.inspectEvent(eventID: 120)])
        state.setEventData(#"{"symbol":"ACME","price":101.25,"tags":["a","b"],"nested":{"z":1,"a":[1,2,3]}}"#)
        let text = rows(Fixtures.render(state, cols: 80, rows: 24))
        #expect(text.allSatisfy { displayWidth(of: $0) <= 80 })
        #expect(text[1].contains("Event #120") && text[1].contains("price"))
        let joined = text.joined(separator: "\n")
        #expect(joined.contains("recipients 4 connections on this node"))
        #expect(joined.contains("origin     http"))
        #expect(joined.contains("Data (JSON, pretty-printed)"))
        // Sorted keys, one per line, indented.
        let nested = text.firstIndex { $0.contains("\"nested\"") }
        let symbol = text.firstIndex { $0.contains("\"symbol\"") && $0.contains("ACME") }
        #expect(nested != nil && symbol != nil && nested! < symbol!)
        #expect(text.contains { $0.contains("  1 {") })
    }

    @Test func eventDetail_scrollsLineByLine_andByPage_atBothSizes() {
        for context in [small, large] {
            var state = Self.stateWithJSONEvent()
            state.press(.escape, .tab, .enter, context: context)
            let data = (1...200).map { "line \($0)" }.joined(separator: "\n")
            state.setEventData(data)
            let size = context.screen
            var text = rows(Fixtures.render(state, cols: size.cols, rows: size.rows))
            #expect(text.contains { $0.hasSuffix(" 1 line 1") })
            #expect(!text.contains { $0.hasSuffix("line 200") })
            state.press(.end, context: context)
            text = rows(Fixtures.render(state, cols: size.cols, rows: size.rows))
            #expect(text[size.rows - 3].hasSuffix("200 line 200"))
            state.press(.pageUp, context: context)
            text = rows(Fixtures.render(state, cols: size.cols, rows: size.rows))
            #expect(!text.contains { $0.hasSuffix("line 200") })
            state.press(.up, .home, context: context)
            text = rows(Fixtures.render(state, cols: size.cols, rows: size.rows))
            #expect(text[2].contains("id") && text[2].contains("120"))
            state.press(.escape, context: context)
            #expect(state.detail == nil && state.focus == .log)
        }
    }

    @Test func eventDetail_longLinesWrap_andMissingDataFallsBackToThePreview() {
        var state = Self.stateWithJSONEvent()
        state.press(.escape, .tab, .enter, context: small)
        state.setEventData(String(repeating: "x", count: 300))
        var text = rows(Fixtures.render(state, cols: 80, rows: 24))
        #expect(text.filter { $0.contains("xxxx") }.count == 5)
        #expect(text.contains { $0.contains("↪ xxx") })
        state.setEventData(nil)
        text = rows(Fixtures.render(state, cols: 80, rows: 24))
        #expect(text.contains { $0.contains("no longer kept") })
        #expect(text.contains { $0.contains("\"symbol\"") })
    }

    @Test func logSelection_movesWithArrows_andPausesTheLog() {
        var state = ConsoleState()
        for n in 0..<50 { state.appendLog(LogEntry(time: Double(n), source: .broker, kind: .info, message: "entry \(n)")) }
        state.press(.escape, .tab, context: small)
        #expect(state.selectedLogEntry?.message == "entry 49")
        state.press(.up, .up, context: small)
        #expect(state.selectedLogEntry?.message == "entry 47")
        // New entries do not move the selection, and the selected row stays highlighted.
        state.appendLog(LogEntry(time: 50, source: .broker, kind: .info, message: "entry 50"))
        #expect(state.selectedLogEntry?.message == "entry 47")
        #expect(state.log.isPaused)
        let canvas = Fixtures.render(state, cols: 80, rows: 24)
        let highlighted = (1..<22).filter { canvas[$0, 20].style.reverse }
        #expect(highlighted.count == 1)
        #expect(canvas.plainText[highlighted[0]].contains("entry 47"))
        state.press(.end, context: small)
        #expect(state.selectedLogEntry?.message == "entry 50" && !state.log.isPaused)
    }

    @Test func tenThousandClients_aDetailFormatsNoTableRow_andTheRatesPaneOnlyTheVisibleOnes() {
        var state = ConsoleState()
        let rows = (0..<10_000).map { n in
            ClientRow(connectionID: UInt64(n), id: "client-\(n)", remoteAddress: "10.0.\(n / 256).\(n % 256):5000",
                      connectedAt: Fixtures.now - Double(n), eventsSent: n)
        }
        state.updateClients(rows, now: Fixtures.now)
        for second in 0..<60 { state.recordRates(eventsIn: 10, eventsOut: 100_000, at: Fixtures.now - 60 + Double(second)) }
        let size = ScreenSize(cols: 120, rows: 40)
        var canvas = Layout.render(state: state, header: Fixtures.header, now: Fixtures.now, size: size, colors: true)
        #expect(canvas.stats.clientRowsFormatted == state.geometry(for: size).clientsViewportHeight)
        state.press(.escape, .enter, context: large)
        state.updateClientDetail(Self.aliceDetail())  // another connection: ignored
        #expect(state.inspectedConnectionID == 0)
        let clock = ContinuousClock()
        let started = clock.now
        for _ in 0..<20 {
            canvas = Layout.render(state: state, header: Fixtures.header, now: Fixtures.now, size: size, colors: true)
        }
        let perFrame = (clock.now - started) / 20
        #expect(canvas.stats.clientRowsFormatted == 0 && canvas.stats.logEntriesFormatted == 0)
        #expect(canvas.plainText[2].contains("Client client-0"))
        print("render with 10,000 clients and the client detail open: \(perFrame) per frame (debug build)")
    }

    // MARK: Rates

    @Test func sparkline_scalesToItsPeak_withAnASCIIFallback() {
        #expect(Sparkline.render([0, 1, 2, 4, 8], width: 5) == " ▁▂▄█")
        #expect(Sparkline.render([0, 1, 2, 4, 8], width: 5, unicode: false) == " .,~#")
        #expect(Sparkline.render([8], width: 3) == "  █")
        // 60 seconds in 20 columns: 3 s each, the peak of them.
        let minute = (0..<60).map { $0 == 31 ? 10.0 : 1.0 }
        let drawn = Array(Sparkline.render(minute, width: 20))
        #expect(drawn.count == 20 && drawn.filter { $0 == "█" }.count == 1 && drawn.filter { $0 == "▁" }.count == 19)
    }

    @Test func rateHistory_keepsTheMinute_peakPerSecond_andRepeatsOverAStall() {
        var history = RateHistory()
        history.record(eventsIn: 5, eventsOut: 50, at: 100.1)
        history.record(eventsIn: 9, eventsOut: 10, at: 100.6)
        history.record(eventsIn: 1, eventsOut: 1, at: 103.0)
        #expect(history.eventsIn == [9, 9, 9, 1])
        #expect(history.eventsOut == [50, 50, 50, 1])
        for second in 104..<200 { history.record(eventsIn: Double(second), eventsOut: 0, at: Double(second)) }
        #expect(history.eventsIn.count == 60 && history.eventsIn.last == 199)
    }

    @Test func ratesPane_drawsUnderTheHeader_atBothSizes_andGivesItsRowBack() {
        var state = Fixtures.state()
        for second in 0..<60 {
            state.recordRates(eventsIn: Double(second % 10), eventsOut: Double(second * 10), at: Fixtures.now - 60 + Double(second))
        }
        for (cols, rows) in [(80, 24), (120, 40)] {
            let canvas = Fixtures.render(state, cols: cols, rows: rows)
            let line = canvas.plainText[1]
            #expect(line.hasPrefix(" in ") && line.contains(" out ") && line.contains("█"), "\(line)")
            #expect(displayWidth(of: line) <= cols)
            #expect(canvas.plainText[2].contains("Clients 4"))
        }
        #expect(Fixtures.render(state, cols: 120, rows: 40).plainText[1].contains("last 60s"))
        let ascii = Layout.render(state: state, header: Fixtures.header, now: Fixtures.now,
                                  size: ScreenSize(cols: 80, rows: 24), colors: false, unicode: false)
        #expect(ascii.plainText[1].contains("#") && !ascii.plainText[1].contains("█"))
        state.type("r", context: small)  // still in command mode: typed into the line
        state.editor.setText("")
        state.press(.escape, context: small)
        state.type("r", context: small)
        #expect(Fixtures.render(state, cols: 80, rows: 24).plainText[1].contains("Clients 4"))
        // Too short a terminal keeps every row for the panes.
        state.type("r", context: small)
        #expect(!Fixtures.render(state, cols: 80, rows: 12).plainText[1].contains(" in "))
    }

    // MARK: save

    @Test func save_parses_andRejectsBadInput() {
        #expect(CommandParser.parseResult("save /tmp/log.jsonl") == .success(.save(path: "/tmp/log.jsonl")))
        #expect(CommandParser.parseResult(#"save "/tmp/my log.jsonl""#) == .success(.save(path: "/tmp/my log.jsonl")))
        #expect(CommandParser.parseResult("save") == .failure(CommandError("save: missing <file> — usage: save <file>")))
        #expect(CommandParser.parseResult("save a b") == .failure(CommandError(#"save: unexpected extra argument "b""#)))
        #expect(Command.save(path: "/tmp/my log").description == #"save "/tmp/my log""#)
    }

    @Test func logExport_writesTheFilteredEntriesAsJSONLines() throws {
        var state = Self.stateWithJSONEvent()
        state.log.setFilter("price")
        let data = LogExport.jsonLines(LogExport.visibleEntries(of: state.log))
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2)
        let last = try #require(JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
        #expect(last["eventId"] as? Int == 120 && last["recipients"] as? Int == 4 && last["type"] as? String == "price")
        #expect(last["source"] as? String == "http" && last["kind"] as? String == "broadcast")
        #expect(last["time"] as? String == "2024-05-01T12:00:00.000Z")
        let first = try #require(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(first["target"] as? String == "bob" && first["eventId"] == nil)
    }
}
