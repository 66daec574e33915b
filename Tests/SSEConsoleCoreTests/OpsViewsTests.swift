import Testing

@testable import SSEConsoleCore

/// The operator's views — bans, audit, every node's clients — as pure renderings at 80x24 and
/// 120x40, with and without colours and after a resize; their commands, keys and bad input.
@Suite struct OpsViewsTests {
    static let now = Fixtures.now

    static let bans: [BanRow] = [
        BanRow(clientID: "mallory", until: now + 3_600, setAt: now - 60, setBy: "console", node: "node-a"),
        BanRow(clientID: "eve", until: nil, setAt: now - 86_400, setBy: "http 10.0.0.7:53012", node: nil),
    ]

    static let audit: [AuditRow] = [
        AuditRow(time: now, action: "ban", origin: "console", node: "node-a", arguments: "client=mallory duration=3600s closed=2 nodes=2"),
        AuditRow(time: now - 5, action: "broadcast", origin: "http 10.0.0.7:53012", node: "node-b",
                 arguments: "type=price bytes=42 eventId=7 recipients=9"),
        AuditRow(time: now - 9, action: "kick", origin: "api", node: nil, arguments: "client=bob closed=1 nodes=1"),
    ]

    func lines(_ canvas: Canvas) -> [String] {
        for line in canvas.plainText { #expect(displayWidth(of: line) <= canvas.width, "overflow: \(line)") }
        return canvas.plainText
    }

    func state(_ panel: OpsPanel) -> ConsoleState {
        var state = Fixtures.state()
        let applied = state.applyLocal(panel == .bans ? .bans : .audit)
        #expect(applied)
        state.updateBans(Self.bans)
        state.updateAudit(Self.audit)
        return state
    }

    @Test func bansView_80x24_showsWhoSetThemToo() {
        let lines = self.lines(Fixtures.render(self.state(.bans), cols: 80, rows: 24))
        #expect(lines[1].hasPrefix("── Bans 2 ─ u: unban · b: clients "))
        // Times without the year and a shorter id: who set each ban (BY) still fits.
        #expect(lines[2] == "  ID              UNTIL           SET             NODE       BY")
        #expect(lines[3] == "> eve             until unban     04-30 12:00:00  -          http 10.0.0.7:53012")
        #expect(lines[4] == "  mallory         05-01 13:00:00  05-01 11:59:00  node-a     console")
    }

    @Test func bansView_80x24_cutsALongIdWithAnEllipsis_andSaysWhenABanEnded() {
        var state = self.state(.bans)
        state.updateBans(Self.bans + [
            BanRow(clientID: "a-very-long-client-id-0123456789", until: Self.now - 5, setAt: Self.now - 65, setBy: "api"),
        ])
        let lines = self.lines(Fixtures.render(state, cols: 80, rows: 24))
        #expect(lines[3] == "  a-very-long-c…  ended 11:59:55  05-01 11:58:55  -          api")
        let wide = self.lines(Fixtures.render(state, cols: 120, rows: 40))
        #expect(wide[3].hasPrefix("  a-very-long-client-id-0…  ended 11:59:55       2024-05-01 11:58:55"))
    }

    @Test func bansView_120x40_showsWhoSetThem() {
        let lines = self.lines(Fixtures.render(self.state(.bans), cols: 120, rows: 40))
        #expect(lines[2].hasSuffix("NODE          BY"))
        #expect(lines[3].hasSuffix("-             http 10.0.0.7:53012"))
        #expect(lines[4].hasSuffix("node-a        console"))
    }

    @Test func auditView_bothSizes_newestFirst() {
        for (cols, rows) in [(80, 24), (120, 40)] {
            let lines = self.lines(Fixtures.render(self.state(.audit), cols: cols, rows: rows))
            #expect(lines[1].hasPrefix("── Audit 3 ─ newest first · A: clients "))
            #expect(lines[2].hasPrefix("  TIME      ACTION       ORIGIN                 NODE        ARGUMENTS"))
            #expect(lines[3].hasPrefix("> 12:00:00  ban          console                node-a      client=mallory"))
            #expect(lines[4].hasPrefix("  11:59:55  broadcast    http 10.0.0.7:53012    node-b      type=price"))
            #expect(lines[5].hasPrefix("  11:59:51  kick         api                    -           client=bob"))
        }
        // At 120 columns the arguments fit whole.
        let wide = self.lines(Fixtures.render(self.state(.audit), cols: 120, rows: 40))
        #expect(wide[3].hasSuffix("client=mallory duration=3600s closed=2 nodes=2"))
    }

    @Test func emptyViews_sayWhy() {
        var state = Fixtures.state()
        _ = state.applyLocal(.bans)
        #expect(self.lines(Fixtures.render(state, cols: 80, rows: 24))[3] == "  no client is banned")
        _ = state.applyLocal(.audit)
        #expect(self.lines(Fixtures.render(state, cols: 80, rows: 24))[3] == "  no action recorded yet")
    }

    @Test func onlyVisibleRowsAreFormatted_andTheSelectionStaysVisibleAfterAResize() {
        var state = Fixtures.state()
        _ = state.applyLocal(.bans)
        state.updateBans((0..<5_000).map { BanRow(clientID: "id\(100_000 + $0)", until: nil, setAt: Self.now, setBy: "api") })
        state.mode = .navigate
        let context = KeyContext(screen: ScreenSize(cols: 120, rows: 40))
        _ = state.handle(.end, context: context)
        // Sized by its 5,000 bans (not by the 5 clients): about 40% of the screen.
        let tall = Fixtures.render(state, cols: 120, rows: 40)
        #expect(tall.stats.clientRowsFormatted == 12)
        #expect(self.lines(tall).contains { $0.hasPrefix("> id104999") })
        // Smaller: the selected (last) row is still drawn, marked, and reversed in navigate mode.
        let small = Fixtures.render(state, cols: 80, rows: 24)
        let height = 6
        #expect(small.stats.clientRowsFormatted == height)
        let lines = self.lines(small)
        let row = try! #require(lines.firstIndex { $0.hasPrefix("> id104999") })
        #expect(small[row, 2].style.reverse)
        #expect(lines[1].contains("\(Format.thousands(5_000 - height + 1))–5,000 of 5,000"))
    }

    /// Two clients, thirty bans, audit records and topics: each view gets the rows it has, up to
    /// about 40% of the screen, whatever the number of clients (three rows with none at all).
    @Test func opsAndTopicsViews_areSizedByTheirOwnRows_notByTheClients() {
        var state = ConsoleState()
        state.updateClients(Array(Fixtures.rows.prefix(2)), now: Self.now)
        state.updateBans((0..<30).map { BanRow(clientID: "id\(100 + $0)", until: nil, setAt: Self.now, setBy: "api") })
        state.updateAudit((0..<30).map { AuditRow(time: Self.now - Double($0), action: "kick", origin: "api", node: nil, arguments: "client=c\($0)") })
        state.updateTopics((0..<30).map {
            TopicRow(topic: "topic\(100 + $0)", kind: .exact, subscribers: 1, clientIDs: ["alice"], events: 0, eventsPerSecond: 0)
        })
        func shown(_ state: ConsoleState, cols: Int, rows: Int, prefix: String) -> Int {
            self.lines(Fixtures.render(state, cols: cols, rows: rows)).filter { $0.dropFirst(2).hasPrefix(prefix) }.count
        }
        _ = state.applyLocal(.bans)
        #expect(shown(state, cols: 120, rows: 40, prefix: "id1") == 12)
        #expect(shown(state, cols: 80, rows: 24, prefix: "id1") == 6)
        #expect(self.lines(Fixtures.render(state, cols: 120, rows: 40))[1].contains("1–12 of 30"))
        _ = state.applyLocal(.audit)
        #expect(shown(state, cols: 120, rows: 40, prefix: "1") == 12)  // `11:59:59  kick …`
        #expect(shown(state, cols: 80, rows: 24, prefix: "1") == 6)
        _ = state.applyLocal(.topics(nil))
        #expect(state.isTopicsViewVisible && state.opsPanel == nil)
        #expect(self.lines(Fixtures.render(state, cols: 120, rows: 40)).filter { $0.contains("topic1") }.count == 12)
        // Back to the two clients: three rows, the log gets the rest.
        _ = state.applyLocal(.clients)
        #expect(state.geometry(for: ScreenSize(cols: 120, rows: 40)).clientsViewportHeight == 3)
        // An empty view keeps three rows (room for "no client is banned").
        state.updateBans([])
        _ = state.applyLocal(.bans)
        #expect(state.geometry(for: ScreenSize(cols: 120, rows: 40)).clientsViewportHeight == 3)
    }

    @Test func monochrome_keepsTheMarkerAndNoColours() {
        var state = self.state(.bans)
        state.mode = .navigate
        let canvas = Fixtures.render(state, cols: 80, rows: 24, colors: false)
        #expect(canvas.plainText[3].hasPrefix("> eve"))
        #expect(canvas.cells.allSatisfy { $0.style.foreground == .default && $0.style.background == .default })
    }

    @Test func allNodesTable_hasANodeColumn_atBothSizes() {
        var state = Fixtures.state()
        state.updateCluster(ClusterView(state: .online, nodeName: "node-a", nodes: [], head: 0, lastDelivered: 0))
        state.isClusterPaneVisible = false  // the clients pane right under the header, as in the other goldens
        _ = state.applyLocal(.clientScope(.allNodes))
        #expect(state.clientScope == .allNodes)
        state.updateClients(
            Fixtures.rows.enumerated().map { index, row in
                var row = row
                row.node = index % 2 == 0 ? "node-a" : "node-b"
                return row
            },
            now: Self.now
        )
        let narrow = self.lines(Fixtures.render(state, cols: 80, rows: 24))
        #expect(narrow[1].hasPrefix("── Clients 4 · all nodes (1 leaving) ─"))
        // 80 columns: id, node, address, age, events, error counter and topics, one space apart.
        #expect(narrow[2] == "  ID▲        NODE       ADDRESS                    AGE    EVENTS    ERR TOPICS")
        #expect(narrow[3] == "> alice      node-a     192.168.1.20:51234       2h01m    12,345    0/3 (all)")
        #expect(ClientsPane.columns(forWidth: 80, showsNode: true).map(\.title)
            == ["ID", "NODE", "ADDRESS", "AGE", "EVENTS", "ERR", "TOPICS"])
        // Narrower still, the topics go last (after the events and the address).
        #expect(ClientsPane.columns(forWidth: 60, showsNode: true).map(\.title) == ["ID", "NODE", "AGE", "ERR", "TOPICS"])
        #expect(ClientsPane.columns(forWidth: 120, showsNode: true).map(\.title)
            == ["ID", "NODE", "ADDRESS", "AGE", "EVENTS", "ERR", "TOT.ERR", "BACKLOG", "TOPICS"])
        let wide = self.lines(Fixtures.render(state, cols: 120, rows: 40))
        #expect(wide[2].contains("NODE") && wide[2].contains("TOPICS") && wide[2].contains("EVENTS"))
        #expect(wide.contains { $0.contains("bob") && $0.contains("node-b") })
        // `a` goes back to this node's, where there is no NODE column.
        state.mode = .navigate
        _ = state.handle(.character("a"), context: KeyContext(screen: ScreenSize(cols: 80, rows: 24)))
        #expect(state.clientScope == .thisNode)
        #expect(!self.lines(Fixtures.render(state, cols: 80, rows: 24))[2].contains("NODE"))
    }

    @Test func allNodes_onAStandAloneBroker_isAClearError() {
        var state = Fixtures.state()
        _ = state.applyLocal(.clientScope(.allNodes))
        #expect(state.clientScope == .thisNode)
        #expect(state.message?.text == "clients all: not a cluster node (start with --cluster URL)")
    }

    @Test func keys_switchViews_unbanTheSelection_andRefuseClientActions() {
        var state = Fixtures.state()
        state.mode = .navigate
        let context = KeyContext(screen: ScreenSize(cols: 80, rows: 24))
        #expect(state.handle(.character("b"), context: context).isEmpty)
        #expect(state.opsPanel == .bans)
        state.updateBans(Self.bans)
        _ = state.handle(.down, context: context)
        #expect(state.handle(.character("u"), context: context) == [.execute(.unban(clientID: "mallory"))])
        #expect(state.handle(.character("k"), context: context).isEmpty)
        #expect(state.message?.text == "the bans view has no client selected (b: back to the clients)")
        _ = state.handle(.character("A"), context: context)
        #expect(state.opsPanel == .audit)
        #expect(state.handle(.character("u"), context: context).isEmpty)  // only the bans view unbans
        _ = state.handle(.character("A"), context: context)
        #expect(state.opsPanel == nil)
        // `t` and `clients` leave the operator's views too.
        _ = state.handle(.character("b"), context: context)
        _ = state.handle(.character("t"), context: context)
        #expect(state.opsPanel == nil && state.isTopicsViewVisible)
        _ = state.applyLocal(.audit)
        _ = state.applyLocal(.clients)
        #expect(state.opsPanel == nil && !state.isTopicsViewVisible)
    }

    @Test func parser_newCommands_andPreciseErrors() {
        #expect(CommandParser.parseResult("bans") == .success(.bans))
        #expect(CommandParser.parseResult("AUDIT") == .success(.audit))
        #expect(CommandParser.parseResult("clients all") == .success(.clientScope(.allNodes)))
        #expect(CommandParser.parseResult("clients HERE") == .success(.clientScope(.thisNode)))
        #expect(CommandParser.parseResult("clients") == .success(.clients))
        #expect(CommandParser.parseResult("bans x") == .failure(CommandError("bans: unexpected extra argument \"x\"")))
        #expect(CommandParser.parseResult("audit 5") == .failure(CommandError("audit: unexpected extra argument \"5\"")))
        #expect(CommandParser.parseResult("clients some") == .failure(CommandError("clients: unknown scope \"some\" (use all or here)")))
        #expect(CommandParser.parseResult("clients all now") == .failure(CommandError("clients: unexpected extra argument \"now\"")))
        #expect(CommandParser.parseResult("ban x 0") == .failure(CommandError("ban: duration must be greater than zero")))
        #expect(CommandParser.parseResult("ban x 5w") == .failure(CommandError("ban: invalid duration \"5w\" (use 30s, 5m, 2h, 1d)")))
        for command in [Command.bans, .audit, .clientScope(.allNodes), .clientScope(.thisNode)] {
            #expect(CommandParser.parseResult(command.description) == .success(command))
        }
    }

    @Test func helpOverlay_listsTheNewCommandsAndKeys_andFits80x24() {
        var state = Fixtures.state()
        state.isHelpVisible = true
        let lines = self.lines(Fixtures.render(state, cols: 80, rows: 24))
        #expect(lines.contains { $0.contains("bans") && $0.contains("list the bans (u unbans)") })
        #expect(lines.contains { $0.contains("audit") && $0.contains("show the audit trail") })
        #expect(lines.contains { $0.contains("clients [all|here]") })
        #expect(lines.contains { $0.contains("a all nodes") && $0.contains("b bans") && $0.contains("A audit") })
        // Every line of the overlay is on screen: the last key line and the footer too.
        #expect(lines.contains { $0.contains("k kick  B ban") })
        #expect(lines.contains { $0.contains("press any key to close") })
    }
}
