import Logging
import SSEBroker
import SSEConsoleCore
import Testing

@testable import SSEConsole

/// The console's side of cluster mode without a database: `nodes` and the backplane's log lines.
@Suite struct ClusterConsoleTests {
    let broker = try! Broker(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))

    @Test func nodes_onAStandAloneBroker_isAClearError() {
        let executor = CommandExecutor(broker: self.broker)
        #expect(executor.execute(.nodes) == .error("nodes: not a cluster node (start with --cluster URL)"))
    }

    @Test func nodes_onAClusterNode_printsTheTable() {
        let view = ClusterView(
            state: .online, nodeName: "n1",
            nodes: [ClusterView.Node(name: "n1", url: "http://127.0.0.1:8080", clients: 2, lastEventID: 7, lag: 0,
                                     silentFor: 0.25, isAlive: true, isSelf: true)],
            head: 7, lastDelivered: 7)
        let executor = CommandExecutor(broker: self.broker, cluster: { view })
        #expect(executor.execute(.nodes) == .ok("""
            cluster n1 online · 1 node · 2 clients · head 7 · lag 0
            NODE\tURL\tCLIENTS\tLAST_EVENT_ID\tLAG\tLAST_HEARD\tSTATE\tSELF
            n1\thttp://127.0.0.1:8080\t2\t7\t0\t0.3s\talive\tyes
            """))
    }

    @Test func clusterLogLines_readAsSentences_andARetryIsNotRedAgain() {
        let feed = ConsoleFeed()
        let logger = Logger(label: "sse.cluster", factory: { ConsoleLogHandler(label: $0, feed: feed) })
        logger.info("replay history restored from the shared log", metadata: ["events": "12", "lastEventId": "40"])
        logger.notice("cluster online", metadata: ["node": "n1", "lastEventId": "40"])
        logger.warning("cluster offline", metadata: ["reason": "the database closed the connection", "retryIn": "0.5 seconds"])
        logger.warning("cluster offline", metadata: ["reason": "connection refused", "retryIn": "1.0 seconds"])
        logger.notice("caught up from the shared log", metadata: ["events": "37", "lastEventId": "77"])
        logger.notice("cluster online", metadata: ["node": "n1", "lastEventId": "77"])
        let entries = feed.drain().entries
        #expect(entries.map(\.message) == [
            "replay history restored: 12 events from the shared log · last id 40",
            "online as n1 · last id 40",
            "lost the shared log: the database closed the connection · retry in 500ms",
            "still offline: connection refused · retry in 1s",
            "caught up 37 events missed while offline · last id 77",
            "back online as n1 · last id 77",
        ])
        #expect(entries.map(\.kind) == [.info, .online, .offline, .info, .info, .online])
        #expect(entries.allSatisfy { $0.source == .cluster })
    }
}
