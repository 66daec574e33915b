import Testing
@testable import SSEConsoleCore

private let now = Fixtures.now

private func table(_ rows: [ClientRow] = Fixtures.rows) -> ClientTable {
    var table = ClientTable()
    table.update(rows, now: now)
    return table
}

private func manyRows(_ count: Int) -> [ClientRow] {
    (0..<count).map { n in
        ClientRow(connectionID: UInt64(n), id: "client-\(n)", remoteAddress: "10.0.\(n / 256).\(n % 256):5000",
                  connectedAt: now - Double(n), eventsSent: (n * 7919) % 10_007,
                  consecutiveErrors: n % 4, totalErrors: (n * 31) % 97, backlogBytes: (n * 13) % 4_096)
    }
}

@Suite struct ClientTableTests {
    @Test(arguments: ClientColumn.allCases)
    func sortsEveryColumnBothWays(column: ClientColumn) {
        var t = table(manyRows(500))
        for ascending in [true, false] {
            t.setSort(column, ascending: ascending)
            let rows = t.rows
            for (a, b) in zip(rows, rows.dropFirst()) {
                let key: (ClientRow) -> Double = switch column {
                case .id, .address: { _ in 0 }
                case .age: { now - $0.connectedAt }
                case .events: { Double($0.eventsSent) }
                case .errors: { Double($0.consecutiveErrors) }
                case .totalErrors: { Double($0.totalErrors) }
                case .backlog: { Double($0.backlogBytes) }
                }
                switch column {
                case .id: #expect(ascending ? a.id <= b.id : a.id >= b.id)
                case .address: #expect(ascending ? a.remoteAddress <= b.remoteAddress : a.remoteAddress >= b.remoteAddress)
                default: #expect(ascending ? key(a) <= key(b) : key(a) >= key(b), "\(column)")
                }
            }
        }
    }

    @Test func cycleAndReverseSort() {
        var t = table()
        #expect(t.sortColumn == .id && t.sortAscending)
        t.cycleSortColumn()
        #expect(t.sortColumn == .address)
        t.reverseSort()
        #expect(t.sortColumn == .address && !t.sortAscending)
        for _ in 0..<ClientColumn.allCases.count { t.cycleSortColumn() }
        #expect(t.sortColumn == .address && t.sortAscending)
    }

    @Test func selectionFollowsTheConnectionAcrossResorts() {
        var t = table()
        t.select(connectionID: 2)  // bob
        t.setSort(.errors, ascending: false)
        #expect(t.selectedRow?.connectionID == 2)
        t.setSort(.age)
        #expect(t.selectedRow?.connectionID == 2)
        #expect(t.rows[t.selectedIndex!].id == "bob")
    }

    @Test func selectionFollowsTheConnectionAcrossUpdates() {
        var t = table()
        t.select(connectionID: 4)
        var rows = Fixtures.rows
        rows.insert(ClientRow(connectionID: 9, id: "aaron", remoteAddress: "x", connectedAt: now), at: 0)
        t.update(rows, now: now)
        #expect(t.selectedConnectionID == 4 && t.selectedRow?.id == "alice")
    }

    @Test func selectionStaysInPlaceWhenItsRowIsRemoved() {
        var t = table()  // alice(1), alice(4), bob(2), carol(5, departed), dashboard(3)
        t.select(connectionID: 2)
        let index = t.selectedIndex
        t.update(Fixtures.rows.filter { $0.connectionID != 2 }, now: now + 10)  // bob fades as closed; carol's fade is over
        #expect(t.rows.map(\.connectionID).contains(2))
        #expect(t.rows[t.selectedIndex!].departure?.reason == .closed)
        t.update(Fixtures.rows.filter { $0.connectionID != 2 && $0.departure == nil }, now: now + 20)
        #expect(!t.rows.contains { $0.connectionID == 2 })
        #expect(t.selectedIndex == min(index!, t.count - 1))
        #expect(t.selectedRow != nil)
    }

    @Test func departedRowsFadeOut() {
        var t = table()
        #expect(t.count == 5 && t.connectedCount == 4)
        t.update(Fixtures.rows.filter { $0.departure == nil }, now: now + 2)
        #expect(t.count == 5)  // carol kept although no longer sent
        t.prune(now: now + 4.5)
        #expect(t.count == 4)
        #expect(t.clientIDs == ["alice", "bob", "dashboard-日本"])
    }

    @Test func emptyTableHasNoSelection() {
        var t = table([])
        #expect(t.selectedIndex == nil && t.visibleRange(viewportHeight: 5).isEmpty)
        t.moveSelection(by: 1, viewportHeight: 5)
        #expect(t.selectedRow == nil)
        t = table()
        t.update([], now: now + 100)  // vanished rows fade out as "closed" first
        #expect(t.rows.allSatisfy { $0.departure != nil })
        t.prune(now: now + 200)
        #expect(t.selectedIndex == nil && t.selectedConnectionID == nil)
    }

    @Test func scrollingTenThousandRowsKeepsTheSelectionVisible() {
        var t = table(manyRows(10_000))
        let height = 13
        #expect(t.visibleRange(viewportHeight: height) == 0..<13)
        t.moveSelection(by: 20, viewportHeight: height)
        #expect(t.selectedIndex == 20)
        #expect(t.visibleRange(viewportHeight: height) == 8..<21)
        t.pageDown(viewportHeight: height)
        #expect(t.selectedIndex == 32)
        #expect(t.visibleRange(viewportHeight: height).contains(32))
        t.selectLast(viewportHeight: height)
        #expect(t.selectedIndex == 9_999 && t.visibleRange(viewportHeight: height) == 9_987..<10_000)
        t.pageUp(viewportHeight: height)
        #expect(t.selectedIndex == 9_987 && t.visibleRange(viewportHeight: height) == 9_987..<10_000)
        t.moveSelection(by: -1, viewportHeight: height)
        #expect(t.visibleRange(viewportHeight: height) == 9_986..<9_999)
        t.selectFirst(viewportHeight: height)
        #expect(t.selectedIndex == 0 && t.visibleRange(viewportHeight: height) == 0..<13)
        // After a re-sort the selected connection moves far away; the view follows it.
        t.moveSelection(by: 5, viewportHeight: height)
        let id = t.selectedConnectionID
        t.reverseSort()
        #expect(t.selectedConnectionID == id)
        #expect(t.visibleRange(viewportHeight: height).contains(t.selectedIndex!))
    }

    @Test func renderingTenThousandRowsFormatsOnlyTheVisibleOnes() {
        var state = ConsoleState()
        state.updateClients(manyRows(10_000), now: now)
        let canvas = Layout.render(state: state, header: Fixtures.header, now: now,
                                   size: ScreenSize(cols: 120, rows: 40), colors: true)
        let geometry = LayoutGeometry(size: ScreenSize(cols: 120, rows: 40), clientRowCount: 10_000)
        #expect(canvas.stats.clientRowsFormatted == geometry.clientsViewportHeight)
        #expect(canvas.plainText[1].contains("1–\(geometry.clientsViewportHeight) of 10,000"))
    }
}

/// The clients pane's topics column: only where everything else fits, truncated to its width.
@Suite struct ClientTopicsColumnTests {
    func render(cols: Int) -> [String] {
        var state = ConsoleState()
        state.updateClients([
            ClientRow(connectionID: 1, id: "dash", remoteAddress: "127.0.0.1:1", connectedAt: Fixtures.now - 5,
                      topics: ["orders.*", "price"]),
            ClientRow(connectionID: 2, id: "feed", remoteAddress: "127.0.0.1:2", connectedAt: Fixtures.now - 4,
                      topics: (0..<20).map { "tenant-\($0).orders" }),
            ClientRow(connectionID: 3, id: "all", remoteAddress: "127.0.0.1:3", connectedAt: Fixtures.now - 3),
        ], now: Fixtures.now)
        return Fixtures.render(state, cols: cols, rows: 30).plainText
    }

    @Test func wideScreen_showsEachConnectionsTopics() {
        let screen = self.render(cols: 180)
        #expect(screen.contains { $0.contains("TOPICS") })
        // (The selected row is marked with `>`.)
        #expect(screen.contains { $0.hasPrefix("  dash") && $0.hasSuffix("orders.*,price") })
        #expect(screen.contains { $0.hasPrefix("> all") && $0.hasSuffix("(all)") })
        let feed = screen.first { $0.hasPrefix("  feed") } ?? ""
        #expect(feed.hasSuffix("…"))
        #expect(feed.contains("tenant-0.orders,tenant-1.orders"))
        for line in screen { #expect(displayWidth(of: line) <= 180) }
    }

    @Test func narrowScreen_hasNoTopicsColumn() {
        #expect(!self.render(cols: 100).contains { $0.contains("TOPICS") })
    }
}
