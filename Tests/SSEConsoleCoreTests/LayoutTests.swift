import Testing
@testable import SSEConsoleCore

@Suite struct LayoutTests {
    private func column(of text: String, in line: String) -> Int? {
        guard let range = line.firstRange(of: text) else { return nil }
        return displayWidth(of: line[..<range.lowerBound])
    }

    @Test func colourStyles() {
        var state = Fixtures.state()
        state.mode = .navigate
        let canvas = Fixtures.render(state, cols: 80, rows: 24)
        let text = canvas.plainText
        #expect(canvas[0, 0].style.reverse)
        let errColumn = column(of: "2/3", in: text[5])!
        #expect(canvas[5, errColumn].style.foreground == .red)  // bob: 2 of 3
        #expect(canvas[7, column(of: "1/3", in: text[7])!].style.foreground == .yellow)
        #expect(canvas[3, column(of: "0/3", in: text[3])!].style.foreground == .green)
        #expect(canvas[6, 2].style.dim)  // carol departed
        #expect((0..<80).allSatisfy { canvas[3, $0].style.reverse })  // selected, focused, navigate
        let errorRow = text.firstIndex { $0.contains("write timed out") }!
        #expect(canvas[errorRow, column(of: "error", in: text[errorRow])!].style.foreground == .red)
        let connectRow = text.firstIndex { $0.contains("connect ") }!
        #expect(canvas[connectRow, 9].style.foreground == .green)
        let broadcastRow = text.firstIndex { $0.contains("broadcast   greeting") }!
        #expect(canvas[broadcastRow, 9].style.foreground == .cyan)
    }

    @Test func selectionIsNotReversedWhileTyping() {
        let canvas = Fixtures.render(Fixtures.state(), cols: 80, rows: 24)
        #expect(canvas.plainText[3].hasPrefix("> alice"))
        #expect(!canvas[3, 5].style.reverse)
    }

    @Test(arguments: [80, 100, 120, 160])
    func headerKeepsTheEssentialValues(width: Int) {
        let line = HeaderBar.text(Fixtures.header, width: width - 2)
        for value in ["127.0.0.1:8080", "4", "12.0/s", "9.9k/s", "drop", "kick", "3s", "tol 3"] {
            #expect(line.contains(value), "\(value) at \(width)")
        }
        #expect(displayWidth(of: line) <= width - 2)
    }

    @Test func headerAbbreviatesGracefully() {
        var header = Fixtures.header
        header.clientsConnected = 12_345
        #expect(HeaderBar.text(header, width: 200).hasPrefix("sse-console  http://127.0.0.1:8080  up 1h02m  clients 12,345"))
        for width in stride(from: 10, through: 200, by: 7) {
            #expect(displayWidth(of: HeaderBar.text(header, width: width)) <= width)
        }
    }

    @Test func protocolColumn_appearsOnlyWhenAClientIsNotOnHTTP11_onScreensWiderThan80() {
        let at120 = ClientsPane.columns(forWidth: 120, showsProtocol: true).map(\.title)
        #expect(at120 == ["ID", "ADDRESS", "PROTO", "AGE", "EVENTS", "ERR", "TOT.ERR", "BACKLOG", "SENT"])
        // At 80 columns the address outranks it (the client detail shows the protocol too).
        let at80 = ClientsPane.columns(forWidth: 80, showsProtocol: true).map(\.title)
        #expect(at80 == ClientsPane.columns(forWidth: 80).map(\.title), "\(at80)")

        var state = Fixtures.state()
        let http1Only = Fixtures.render(state, cols: 120, rows: 40).plainText
        #expect(!http1Only.joined().contains("PROTO"))
        var rows = Fixtures.rows
        rows[1].httpVersion = "h2"
        state.updateClients(rows, now: Fixtures.now)
        #expect(!Fixtures.render(state, cols: 80, rows: 24).plainText.joined().contains("PROTO"))
        for (cols, lines) in [(120, 40), (100, 30)] {
            let text = Fixtures.render(state, cols: cols, rows: lines).plainText
            #expect(text.joined().contains("PROTO"), "\(cols)x\(lines)")
            let bob = text.first { $0.contains("bob") && $0.contains("10.0.0.7") }
            #expect(bob?.contains(" h2 ") == true, "\(bob ?? "")")
            let carol = text.first { $0.contains("carol") && !$0.contains("over tolerance") }
            #expect(carol?.contains(" 1.1 ") == true, "\(carol ?? "")")
        }
    }

    @Test func clientColumnsAdaptToTheWidth() {
        let at80 = ClientsPane.columns(forWidth: 80).map(\.title)
        #expect(at80 == ["ID", "ADDRESS", "AGE", "EVENTS", "ERR", "BACKLOG"])
        let at120 = ClientsPane.columns(forWidth: 120).map(\.title)
        #expect(at120 == ["ID", "ADDRESS", "AGE", "EVENTS", "ERR", "TOT.ERR", "BACKLOG", "SENT"])
        let at60 = ClientsPane.columns(forWidth: 60).map(\.title)
        #expect(!at60.contains("ADDRESS") && at60.contains("ERR") && at60.contains("AGE"))
        for width in [40, 60, 80, 100, 120, 200] {
            let last = ClientsPane.columns(forWidth: width).last!
            #expect(last.x + last.width <= max(width, 40), "\(width)")
        }
    }

    @Test func geometrySplitsThePanes() {
        let small = LayoutGeometry(size: ScreenSize(cols: 80, rows: 24), clientRowCount: 2)
        #expect(small.clientsViewportHeight == 3 && small.logViewportHeight == 15)
        let many = LayoutGeometry(size: ScreenSize(cols: 80, rows: 24), clientRowCount: 1_000)
        #expect(many.clientsViewportHeight == 6 && many.logViewportHeight == 12)
        #expect(many.logBody.upperBound == many.messageRow && many.commandRow == 23)
        let tall = LayoutGeometry(size: ScreenSize(cols: 120, rows: 40), clientRowCount: 1_000)
        #expect(tall.clientsViewportHeight == 12 && tall.logViewportHeight == 22)
        for rows in 8...60 {
            let g = LayoutGeometry(size: ScreenSize(cols: 80, rows: rows), clientRowCount: 10_000)
            #expect(g.clientsViewportHeight >= 1 && g.logViewportHeight >= 1 && g.logBody.upperBound == g.messageRow)
        }
    }

    @Test func tinyTerminalsDoNotCrash() {
        for (cols, rows) in [(0, 0), (1, 1), (10, 3), (19, 30), (80, 7), (20, 8)] {
            let canvas = Fixtures.render(Fixtures.state(), cols: cols, rows: rows)
            #expect(canvas.plainText.count == max(0, rows))
        }
        let canvas = Fixtures.render(Fixtures.state(), cols: 40, rows: 6)
        #expect(canvas.plainText[1] == "terminal too small (need 20x8)")
    }

    @Test func longCommandLineKeepsTheCursorOnScreen() {
        var state = ConsoleState()
        state.editor.insert("broadcast news " + String(repeating: "日本語 ", count: 40))
        let canvas = Fixtures.render(state, cols: 80, rows: 24)
        let cursor = canvas.cursor!
        #expect(cursor.row == 23 && cursor.column < 80)
        #expect(displayWidth(of: canvas.plainText[23]) <= 80)
    }

    @Test func fullLogRendersOnlyTheVisibleEntries() {
        var state = ConsoleState()
        for n in 0..<6_000 {
            state.appendLog(LogEntry(time: Double(n), source: .broker, kind: .info, message: "entry \(n)"))
        }
        let canvas = Fixtures.render(state, cols: 80, rows: 24)
        #expect(canvas.stats.logEntriesFormatted == LayoutGeometry(size: ScreenSize(cols: 80, rows: 24), clientRowCount: 0).logViewportHeight)
        #expect(canvas.plainText[21].hasSuffix("entry 5999"))
    }

    @Test func emptyStateRendersPlaceholders() {
        let canvas = Layout.render(state: ConsoleState(), header: Fixtures.header, now: Fixtures.now,
                                   size: ScreenSize(cols: 80, rows: 24), colors: true)
        let text = canvas.plainText
        #expect(text[3] == "  no clients connected")
        #expect(text.contains("no events yet"))
        #expect(text[23] == ">")
        #expect(canvas.cursor == CursorPosition(row: 23, column: 2))
    }
}
