import Testing

@testable import SSEConsoleCore

/// The topics view: the rows from connections, sorting, scrolling, keys and rendering.
@Suite struct TopicsViewTests {
    static let rows = TopicTable.rows([
        (clientID: "a", topics: ["price"]),
        (clientID: "b", topics: ["price", "orders.*"]),
        (clientID: "b", topics: ["price"]),
        (clientID: "c", topics: []),
    ])

    @Test func table_countsConnectionsPerTopic_withTheUnfilteredLast() {
        #expect(Self.rows == [
            TopicRow(topic: "price", kind: .exact, subscribers: 3, clientIDs: ["a", "b"]),
            TopicRow(topic: "orders.*", kind: .pattern, subscribers: 1, clientIDs: ["b"]),
            TopicRow(topic: "(all)", kind: .all, subscribers: 1, clientIDs: ["c"]),
        ])
        #expect(TopicTable.tsv(Self.rows, maxClientIDs: 1) == "TOPIC\tSUBSCRIBERS\tKIND\tCLIENTS\nprice\t3\texact\ta,…\norders.*\t1\tpattern\tb\n(all)\t1\tall\tc")
    }

    @Test func sorting_cyclesColumns_andReverses() {
        var view = TopicsView()
        var rows = Self.rows
        rows[0].events = 5
        rows[1].events = 9
        rows[1].eventsPerSecond = 2
        rows[2].lastEventAt = 100
        view.update(rows)
        #expect(view.rows.map(\.topic) == ["price", "(all)", "orders.*"])  // subscribers, ties by topic
        view.cycleSortColumn()
        #expect(view.sortColumn == .topic)
        #expect(view.rows.map(\.topic) == ["(all)", "orders.*", "price"])
        view.cycleSortColumn()
        #expect(view.rows.map(\.topic) == ["orders.*", "(all)", "price"])  // events/s
        view.cycleSortColumn()
        #expect(view.rows.map(\.topic) == ["orders.*", "price", "(all)"])  // events
        view.reverseSort()
        #expect(view.rows.map(\.topic) == ["(all)", "price", "orders.*"])
        view.cycleSortColumn()
        #expect(view.rows.first?.topic == "(all)")  // last event
    }

    @Test func scrolling_staysInsideTheRows() {
        var view = TopicsView()
        view.update((0..<100).map { TopicRow(topic: "t\($0)", kind: .exact, subscribers: 1, clientIDs: []) })
        view.scroll(by: 1000, viewportHeight: 10)
        #expect(view.visibleRange(viewportHeight: 10) == 90..<100)
        view.scroll(by: -5, viewportHeight: 10)
        #expect(view.visibleRange(viewportHeight: 10) == 85..<95)
        view.scrollToTop()
        #expect(view.visibleRange(viewportHeight: 10) == 0..<10)
    }

    @Test func keysAndCommand_switchBetweenClientsAndTopics() {
        var state = Fixtures.state()
        let context = KeyContext(screen: ScreenSize(cols: 100, rows: 30))
        let shown = state.applyLocal(.topics(nil))
        #expect(shown && state.isTopicsViewVisible)
        _ = state.handle(.escape, context: context)
        _ = state.handle(.character("t"), context: context)
        #expect(!state.isTopicsViewVisible)
        _ = state.handle(.character("t"), context: context)
        #expect(state.isTopicsViewVisible)
        // No client to kick in the topics view.
        let actions = state.handle(.character("k"), context: context)
        #expect(actions.isEmpty)
        #expect(state.message?.severity == .error)
        let clients = state.applyLocal(.clients)
        #expect(clients && !state.isTopicsViewVisible)
        let one = state.applyLocal(.topics("price"))
        #expect(!one)  // one topic's subscribers: the app lists them
    }

    @Test func render_showsOnlyTheVisibleRows_withTheirNumbers() {
        var state = Fixtures.state()
        state.isTopicsViewVisible = true
        var rows = (0..<5000).map { TopicRow(topic: "topic-\($0)", kind: .exact, subscribers: 5000 - $0, clientIDs: []) }
        rows[0].events = 12_345
        rows[0].eventsPerSecond = 2.5
        rows[0].lastEventAt = Fixtures.now - 3
        state.updateTopics(rows)
        let screen = Fixtures.render(state, cols: 100, rows: 30).plainText
        #expect(screen.contains { $0.contains("Topics 5,000") && $0.contains("sort: subscribers ▼") })
        let first = screen.first { $0.hasPrefix("  topic-0 ") } ?? ""
        #expect(first.split(separator: " ") == ["topic-0", "5,000", "exact", "2.5", "12,345", "3s"])
        #expect(!screen.contains { $0.contains("topic-4999") })
        for line in screen { #expect(displayWidth(of: line) <= 100) }
    }
}
