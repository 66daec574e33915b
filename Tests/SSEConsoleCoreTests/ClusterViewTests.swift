import Testing
@testable import SSEConsoleCore

/// The cluster in the console: the header segment, the cluster pane at 80x24 and wide, online and
/// offline, many nodes, the `nodes` command and the `n` key.
@Suite struct ClusterViewTests {
    static func node(_ name: String, clients: Int, last: UInt64, head: UInt64 = 120, silent: Double = 0.4,
                     alive: Bool = true, me: Bool = false) -> ClusterView.Node {
        ClusterView.Node(
            name: name, url: "http://127.0.0.1:\(8080 + (Int(name.dropFirst()) ?? 0))", clients: clients,
            lastEventID: last, lag: head > last ? head - last : 0, silentFor: silent, isAlive: alive, isSelf: me)
    }

    static let threeNodes = ClusterView(
        state: .online, nodeName: "n1",
        nodes: [
            node("n1", clients: 4, last: 120, me: true),
            node("n2", clients: 12, last: 118, silent: 0.9),
            node("n3", clients: 0, last: 120, silent: 3.2),
        ],
        head: 120, lastDelivered: 120)

    static let offline = ClusterView(
        state: .offline(reason: "connect failed: Connection refused (errno: 111)", retryIn: 2),
        nodeName: "n1",
        nodes: [
            node("n1", clients: 4, last: 120, silent: 14, alive: false, me: true),
            node("n2", clients: 12, last: 118, silent: 14.5, alive: false),
        ],
        head: 120, lastDelivered: 120)

    static func state(_ view: ClusterView?) -> ConsoleState {
        var state = Fixtures.state()
        state.updateCluster(view)
        return state
    }

    static func render(_ state: ConsoleState, cols: Int, rows: Int, colors: Bool = true) -> Canvas {
        var header = Fixtures.header
        header.cluster = state.cluster
        return Layout.render(state: state, header: header, now: Fixtures.now, size: ScreenSize(cols: cols, rows: rows), colors: colors)
    }

    private func expectScreen(_ canvas: Canvas, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let actual = canvas.plainText
        let lines = expected.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(actual.count == lines.count, sourceLocation: sourceLocation)
        for (row, (got, want)) in zip(actual, lines).enumerated() {
            #expect(got == want, "row \(row)", sourceLocation: sourceLocation)
        }
        for line in actual {
            #expect(displayWidth(of: line) <= canvas.width, "overflow: \(line)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Header

    @Test func headerSegment_wide() {
        var header = Fixtures.header
        header.cluster = Self.threeNodes
        let fitted = HeaderBar.fit(header, cluster: Self.threeNodes, width: 198)
        #expect(fitted.cluster == "cluster n1 online · 3 nodes · lag 0")
        #expect(fitted.main.hasPrefix("sse-console  http://127.0.0.1:8080"))
    }

    @Test(arguments: [80, 100, 120, 160, 200])
    func headerSegment_fitsAndKeepsTheEssentials(width: Int) {
        for view in [Self.threeNodes, Self.offline] {
            var header = Fixtures.header
            header.cluster = view
            let canvas = Layout.render(state: Self.state(view), header: header, now: Fixtures.now,
                                       size: ScreenSize(cols: width, rows: 24), colors: true)
            let line = canvas.plainText[0]
            #expect(displayWidth(of: line) <= width)
            #expect(line.contains("n1 " + view.stateName), "\(line)")
            for value in ["127.0.0.1:8080", "12.0/s", "9.9k/s", "3s"] {
                #expect(line.contains(value), "\(value) at \(width): \(line)")
            }
        }
    }

    @Test func headerSegment_at80x24() {
        let canvas = Self.render(Self.state(Self.threeNodes), cols: 80, rows: 24)
        #expect(canvas.plainText[0] == " 127.0.0.1:8080 4cl in12.0/s out9.9k/s d3 k1 r2 3s/3    n1 online 3 nodes lag 0")
        let segment = canvas.plainText[0].firstRange(of: "n1 online")!
        let column = displayWidth(of: canvas.plainText[0][..<segment.lowerBound])
        #expect(canvas[0, column].style.foreground == .green && canvas[0, column].style.reverse)
        #expect(canvas[0, 1].style.foreground == .default)
    }

    @Test func headerSegment_offlineIsRedWithShortReasonAndRetry() {
        var header = Fixtures.header
        header.cluster = Self.offline
        let wide = HeaderBar.fit(header, cluster: Self.offline, width: 198)
        #expect(wide.cluster == "cluster n1 offline: Connection refused · retry in 2s")
        let canvas = Self.render(Self.state(Self.offline), cols: 80, rows: 24)
        let line = canvas.plainText[0]
        #expect(line.hasSuffix("n1 offline retry 2s"), "\(line)")
        let column = displayWidth(of: line[..<line.firstRange(of: "n1 offline")!.lowerBound])
        #expect(canvas[0, column].style.foreground == .red)
        // Without colours the state carries a marker.
        let mono = Self.render(Self.state(Self.offline), cols: 80, rows: 24, colors: false)
        #expect(mono.plainText[0].contains("n1 !offline"))
    }

    @Test func headerSegment_connectingAndLag() {
        var view = Self.threeNodes
        view.head = 130
        #expect(HeaderBar.clusterText(view, level: 0) == "cluster n1 online · 3 nodes · lag 10")
        view.nodes[2].isAlive = false
        #expect(HeaderBar.clusterText(view, level: 0) == "cluster n1 online · 2/3 nodes · lag 10")
        view.state = .connecting
        #expect(HeaderBar.clusterText(view, level: 0) == "cluster n1 connecting…")
    }

    @Test func headerSegment_standAloneIsUnchanged() {
        let canvas = Fixtures.render(Fixtures.state(), cols: 80, rows: 24)
        #expect(canvas.plainText[0] == " 127.0.0.1:8080 cl 4 in 12.0/s out 9.9k/s drop 3 kick 1 ref 2 to 3s tol 3")
        #expect(!canvas.plainText.joined().contains("Cluster"))
    }

    @Test func shortReason() {
        #expect(ClusterView.shortReason("connect failed: Connection refused (errno: 111)", width: 40) == "Connection refused")
        #expect(ClusterView.shortReason("the database closed the connection", width: 12) == "the databas…")
        #expect(ClusterView.shortReason("connectionError", width: 40) == "connectionError")
    }

    // MARK: The pane

    @Test func pane_at80x24() {
        let canvas = Self.render(Self.state(Self.threeNodes), cols: 80, rows: 24)
        expectScreen(canvas, #"""
 127.0.0.1:8080 4cl in12.0/s out9.9k/s d3 k1 r2 3s/3    n1 online 3 nodes lag 0
── Cluster n1 ─ online ─ 3 nodes ─ 16 clients ─ head 120 ───────────────────────
  NODE              URL                CLIENTS    LAST ID     LAG   HEARD  STATE
* n1                127.0.0.1:8081           4        120       0    0.4s  alive
  n2                127.0.0.1:8082          12        118       2    0.9s  alive
  n3                127.0.0.1:8083           0        120       0    3.2s  alive
── Clients 4 (1 leaving) ─ sort: id ▲ ───────────────────────────── [focused] ──
  ID▲               ADDRESS                     AGE     EVENTS     ERR   BACKLOG
> alice             192.168.1.20:51234        2h01m     12,345     0/3        0B
  alice             192.168.1.21:51300        1m05s        120     0/3        0B
  bob               10.0.0.7:40001            4m03s        873     2/3     12.3K
  carol             172.16.0.3:33000       over-tol         50     3/3        0B
  dashboard-日本    [::1]:60000                 12s          4     1/3      300B
── Log 7 ───────────────────────────────────────────────────────────────────────
11:58:55 connect                  alice             192.168.1.21:51300
11:59:30 broadcast   greeting                   11B hello⏎world
11:59:40 broadcastTo price        bob           42B {"symbol":"ACME","price":10…
11:59:48 connect                  dashboard…        [::1]:60000
11:59:55 error                    bob               write timed out after 3s (2…
11:59:59 disconnect               carol             over tolerance (3/3)
12:00:00 kick                     mallory           kicked 1 connection

broadcast greeting → 4 clients
> broadcast greeting hello wor
"""#)
        // The clients pane keeps every row it had without the cluster pane.
        let without = Fixtures.state().geometry(for: ScreenSize(cols: 80, rows: 24))
        let with = Self.state(Self.threeNodes).geometry(for: ScreenSize(cols: 80, rows: 24))
        #expect(with.clientsViewportHeight == without.clientsViewportHeight)
        #expect(with.logViewportHeight >= 3)
    }

    @Test func pane_styles() {
        var view = Self.threeNodes
        view.nodes[1].lag = 250
        view.nodes[2].isAlive = false
        view.nodes[2].silentFor = 7
        let canvas = Self.render(Self.state(view), cols: 80, rows: 24)
        let text = canvas.plainText
        func column(_ needle: String, _ row: Int) -> Int {
            displayWidth(of: text[row][..<text[row].firstRange(of: needle)!.lowerBound])
        }
        #expect(canvas[3, 0].style.foreground == .cyan)  // `*` this node
        #expect(canvas[3, 2].style.bold)
        #expect(canvas[3, column("alive", 3)].style.foreground == .green)
        #expect(canvas[4, column("250", 4)].style.foreground == .red)
        #expect(canvas[5, column("dead", 5)].style.foreground == .red)
        #expect(canvas[5, 2].style.dim)
        #expect(canvas[1, column("online", 1)].style.foreground == .green)
    }

    @Test func pane_wide() {
        let canvas = Self.render(Self.state(Self.threeNodes), cols: 140, rows: 40)
        let text = canvas.plainText
        #expect(text[0].hasSuffix("cluster n1 online · 3 nodes · lag 0"))
        #expect(text[2] == "  NODE                      URL                                       CLIENTS    LAST ID     LAG   HEARD  STATE")
        #expect(text[3] == "* n1                        http://127.0.0.1:8081                           4        120       0    0.4s  alive")
        #expect(text[6].hasPrefix("── Clients 4"))
    }

    @Test func pane_offline() {
        let canvas = Self.render(Self.state(Self.offline), cols: 100, rows: 30)
        let text = canvas.plainText
        #expect(text[1].hasPrefix("── Cluster n1 ─ offline: Connection refused · retry in 2s ─ 0/2 nodes ─ 0 clients ─ head 120 ─"))
        let column = displayWidth(of: text[1][..<text[1].firstRange(of: "offline")!.lowerBound])
        #expect(canvas[1, column].style.foreground == .red)
        #expect(text[3].contains("14s") && text[3].hasSuffix("dead"))
    }

    @Test func pane_manyNodesScroll() {
        let nodes = (1...12).map { Self.node("n\($0)", clients: $0, last: 120, me: $0 == 1) }
        var state = Self.state(ClusterView(state: .online, nodeName: "n1", nodes: nodes, head: 120, lastDelivered: 120))
        let size = ScreenSize(cols: 80, rows: 24)
        var geometry = state.geometry(for: size)
        #expect(geometry.clusterViewportHeight == 4)
        var text = Self.render(state, cols: 80, rows: 24).plainText
        #expect(text[1].contains("1–4 of 12 nodes"))
        #expect(text[0].contains("n1 online"))
        #expect(text[3].hasPrefix("* n1 ") && text[6].hasPrefix("  n4 "))
        #expect(text[7].hasPrefix("── Clients"))

        let context = KeyContext(screen: size)
        _ = state.handle(.escape, context: context)
        _ = state.handle(.tab, context: context)  // clients → log
        _ = state.handle(.tab, context: context)  // log → cluster
        #expect(state.focus == .cluster)
        _ = state.handle(.pageDown, context: context)
        text = Self.render(state, cols: 80, rows: 24).plainText
        #expect(text[1].contains("5–8 of 12 nodes") && text[1].contains("[focused]"))
        _ = state.handle(.end, context: context)
        text = Self.render(state, cols: 80, rows: 24).plainText
        #expect(text[6].hasPrefix("  n12 ") && text[1].contains("9–12 of 12 nodes"))
        _ = state.handle(.home, context: context)
        #expect(state.clusterScroll == 0)

        // A taller terminal shows more nodes; a short one leaves the pane out rather than squeeze the clients.
        geometry = state.geometry(for: ScreenSize(cols: 80, rows: 50))
        #expect(geometry.clusterViewportHeight == 9)
        let short = state.geometry(for: ScreenSize(cols: 80, rows: 14))
        #expect(!short.showsCluster)
        #expect(short.clientsViewportHeight == LayoutGeometry(size: ScreenSize(cols: 80, rows: 14), clientRowCount: 5).clientsViewportHeight)
    }

    @Test(arguments: [(80, 24), (60, 20), (100, 30), (200, 60), (20, 8)])
    func pane_neverOverflows(cols: Int, rows: Int) {
        for view in [Self.threeNodes, Self.offline] {
            let canvas = Self.render(Self.state(view), cols: cols, rows: rows)
            for line in canvas.plainText { #expect(displayWidth(of: line) <= cols, "\(line)") }
        }
    }

    @Test func columnsAdaptToTheWidth() {
        #expect(ClusterPane.columns(forWidth: 80).map(\.title) == ["NODE", "URL", "CLIENTS", "LAST ID", "LAG", "HEARD", "STATE"])
        #expect(ClusterPane.columns(forWidth: 60).map(\.title) == ["NODE", "URL", "CLIENTS", "LAG", "STATE"])
        #expect(ClusterPane.columns(forWidth: 40).map(\.title) == ["NODE", "CLIENTS", "LAG", "STATE"])
    }

    // MARK: Keys and commands

    @Test func nodesCommandParses() throws {
        #expect(try CommandParser.parse("nodes") == .nodes)
        #expect(try CommandParser.parse("  CLUSTER") == .nodes)
        #expect(Command.nodes.description == "nodes")
        #expect(CommandParser.parseResult("nodes n1") == .failure(CommandError(#"nodes: unexpected extra argument "n1""#)))
        #expect(CommandParser.parseResult("node") == .failure(CommandError(#"unknown command "node" (did you mean "nodes"?)"#)))
        #expect(Completion.complete(Array("no"), cursor: 2, clientIDs: []).candidates == ["nodes"])
        #expect(HelpOverlay.lines().contains { $0.text.contains("nodes") && $0.text.contains("cluster") })
    }

    @Test func nodesCommandShowsAndFocusesThePane() {
        var state = Self.state(Self.threeNodes)
        state.isClusterPaneVisible = false
        let handled = state.applyLocal(.nodes)
        #expect(handled)
        #expect(state.isClusterPaneVisible && state.focus == .cluster)
        #expect(state.message == ResultMessage("cluster n1 online · 3 nodes · 16 clients · head 120 · lag 0", severity: .info))

        var alone = Fixtures.state()
        let handledAlone = alone.applyLocal(.nodes)
        #expect(handledAlone)
        #expect(alone.message == ResultMessage("nodes: not a cluster node (start with --cluster URL)", severity: .error))
    }

    @Test func nKeyTogglesThePane() {
        var state = Self.state(Self.threeNodes)
        let context = KeyContext(screen: ScreenSize(cols: 80, rows: 24))
        _ = state.handle(.escape, context: context)
        #expect(Self.render(state, cols: 80, rows: 24).plainText[23].contains("n nodes"))
        _ = state.handle(.character("n"), context: context)
        #expect(!state.isClusterPaneVisible && state.focus == .clients)
        var text = Self.render(state, cols: 80, rows: 24).plainText
        #expect(text[1].hasPrefix("── Clients") && text[0].contains("n1 online"))
        _ = state.handle(.character("n"), context: context)
        #expect(state.isClusterPaneVisible && state.focus == .cluster)
        text = Self.render(state, cols: 80, rows: 24).plainText
        #expect(text[1].hasPrefix("── Cluster n1"))

        var alone = Fixtures.state()
        _ = alone.handle(.escape, context: context)
        _ = alone.handle(.character("n"), context: context)
        #expect(alone.message?.severity == .error)
        #expect(!Self.render(alone, cols: 80, rows: 24).plainText[23].contains("n nodes"))
    }

    @Test func headlessTable() {
        let table = Self.threeNodes.table.split(separator: "\n").map(String.init)
        #expect(table[0] == "cluster n1 online · 3 nodes · 16 clients · head 120 · lag 0")
        #expect(table[1] == "NODE\tURL\tCLIENTS\tLAST_EVENT_ID\tLAG\tLAST_HEARD\tSTATE\tSELF")
        #expect(table[2] == "n1\thttp://127.0.0.1:8081\t4\t120\t0\t0.4s\talive\tyes")
        #expect(table[3] == "n2\thttp://127.0.0.1:8082\t12\t118\t2\t0.9s\talive\tno")
        #expect(Self.offline.summary.hasPrefix("cluster n1 offline: connect failed: Connection refused (errno: 111) · retry in 2s · 0/2 nodes"))
    }
}

