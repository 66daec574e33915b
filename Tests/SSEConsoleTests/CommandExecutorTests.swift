import Logging
import NIOCore
import NIOEmbedded
import SSEBroker
import SSEConsoleCore
import SSETestSupport
import Testing

@testable import SSEConsole

@Suite struct CommandExecutorTests {
    let broker = try! Broker(configuration: .predictable, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))

    @Test func broadcast_reportsIDAndRecipients() {
        let executor = CommandExecutor(broker: self.broker)
        #expect(executor.execute(.broadcast(type: "greeting", data: "hi")) == .ok("broadcast greeting #1 → 0 clients"))
    }

    @Test func unknownClient_isAnErrorNamingTheCommand() {
        let executor = CommandExecutor(broker: self.broker)
        #expect(executor.execute(.broadcastTo(clientID: "ghost", type: "t", data: "d")) == .error("broadcastTo: no client is connected with id \"ghost\""))
        #expect(executor.execute(.kick(clientID: "ghost")) == .error("kick: no client is connected with id \"ghost\""))
        #expect(self.broker.lastEventID == 0)
    }

    @Test func ban_andUnban() {
        let executor = CommandExecutor(broker: self.broker)
        #expect(executor.execute(.ban(clientID: "mallory", duration: .seconds(300))) == .ok("banned mallory for 5m (0 connections on 0 nodes closed); it gets 204 No Content"))
        #expect(self.broker.bannedClientIDs == ["mallory"])
        #expect(executor.execute(.unban(clientID: "mallory")) == .ok("unbanned mallory"))
        #expect(executor.execute(.unban(clientID: "mallory")) == .error("unban: mallory is not banned"))
    }

    /// Headless has no log pane: the terminal's log commands say so instead of doing nothing.
    @Test func logPaneCommands_headless_sayOnlyTheTerminalHasALogPane() {
        let executor = CommandExecutor(broker: self.broker)
        #expect(executor.execute(.save(path: "/tmp/log.jsonl")) == .error("save: only the terminal console has a log pane"))
        #expect(executor.execute(.clear) == .error("clear: only the terminal console has a log pane"))
    }

    @Test func quit() {
        #expect(CommandExecutor(broker: self.broker).execute(.quit) == .quit)
    }

    @Test func eventsBecomeLogEntries_withABoundedPreview() {
        var event = Event(type: "price", data: String(repeating: "x", count: 100_000) + "\n", origin: .http)
        event.type = "price"
        let entry = ConsoleFeed.entry(for: event)
        #expect(entry.kind == .broadcast)
        #expect(entry.source == .http)
        #expect(entry.size == 100_001)
        #expect(entry.message.count <= 201)
    }

    @Test func eventLogLines_showHowManyConnectionsReceivedTheEvent() async throws {
        let transports = try (0..<3).map { index in
            try RecordingTransportForConsole.subscribed(to: self.broker, "c\(index)", topics: index == 0 ? [] : ["price"])
        }
        let events = self.broker.listen()
        _ = CommandExecutor(broker: self.broker).execute(.broadcast(type: "price", data: "1"))
        _ = CommandExecutor(broker: self.broker).execute(.broadcast(type: "chat", data: "2"))
        var iterator = events.makeAsyncIterator()
        #expect(try #require(await iterator.next()).recipients == 3)
        let chat = try #require(await iterator.next())
        #expect(chat.recipients == 1)
        #expect(ConsoleFeed.entry(for: chat).message == "→ 1 · 2")
        _ = transports
    }

    @Test func topicActivity_countsEventsPerTopic_patternsAndAllIncluded() {
        let activity = TopicActivity()
        for (type, time) in [("price", 10.0), ("price", 11.0), ("orders.eu", 12.0), (nil, 13.0)] as [(String?, Double)] {
            activity.record(type: type, at: time)
        }
        let rows = TopicTable.rows([
            (clientID: "a", topics: ["price", "orders.*", "message", "none"]),
            (clientID: "b", topics: []),
        ])
        let first = activity.enrich(rows, now: 20)
        let byTopic = Dictionary(uniqueKeysWithValues: first.map { ($0.topic, $0) })
        #expect(byTopic["price"]?.events == 2 && byTopic["price"]?.lastEventAt == 11)
        #expect(byTopic["orders.*"]?.events == 1 && byTopic["orders.*"]?.lastEventAt == 12)
        #expect(byTopic["message"]?.events == 1)
        #expect(byTopic["none"]?.events == 0 && byTopic["none"]?.lastEventAt == nil)
        #expect(byTopic["(all)"]?.events == 4)
        // The rate: events since the sample a second or more before.
        activity.record(type: "price", at: 20.5)
        activity.record(type: "price", at: 20.6)
        let later = activity.enrich(rows, now: 22)
        #expect(later.first { $0.topic == "price" }?.eventsPerSecond == 1)
    }

    @Test func topicsCommand_listsEveryTopicWithItsSubscribers_andTheSubscribersOfOne() throws {
        let executor = CommandExecutor(broker: self.broker)
        _ = try RecordingTransportForConsole.subscribed(to: self.broker, "a", topics: ["price", "orders.*"])
        _ = try RecordingTransportForConsole.subscribed(to: self.broker, "b", topics: ["price"])
        _ = try RecordingTransportForConsole.subscribed(to: self.broker, "c", topics: [])
        _ = executor.execute(.broadcast(type: "price", data: "1"))
        guard case .ok(let table) = executor.execute(.topics(nil)) else {
            Issue.record("topics failed")
            return
        }
        let lines = table.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        #expect(lines == [
            ["TOPIC", "SUBSCRIBERS", "KIND", "CLIENTS"],
            ["price", "2", "exact", "a,b"],
            ["orders.*", "1", "pattern", "a"],
            ["(all)", "1", "all", "c"],
        ])
        guard case .ok(let one) = executor.execute(.topics("price")) else {
            Issue.record("topics price failed")
            return
        }
        let rows = one.split(separator: "\n").map(String.init)
        #expect(rows.first == "ID\tCONNECTION\tADDRESS\tTOPICS")
        #expect(rows.dropFirst().map { $0.split(separator: "\t").first.map(String.init) } == ["a", "b"])
        #expect(executor.execute(.topics("nothing")) == .error("topics: no connection subscribed to \"nothing\""))
    }

    @Test func feed_keepsTheNewestEntriesUnderAFlood() {
        let feed = ConsoleFeed(capacity: 3)
        for index in 0..<10 {
            feed.post(LogEntry(time: 0, source: .api, kind: .info, message: "\(index)"))
        }
        let drained = feed.drain()
        #expect(drained.entries.map(\.message) == ["7", "8", "9"])
        #expect(drained.skipped == 7)
        #expect(feed.drain().entries.isEmpty)
    }

    @Test func rateMeter_measuresOverTheLastSecond() {
        var meter = RateMeter()
        func stats(_ published: Int) -> BrokerStatistics {
            BrokerStatistics(published: published, delivered: published * 10, bytesDelivered: published * 100)
        }
        _ = meter.add(stats(0), at: 100)
        let rates = meter.add(stats(50), at: 100.5)
        #expect(rates.eventsIn == 100)
        #expect(rates.eventsOut == 1000)
        #expect(rates.bytesOut == 10_000)
    }
}

/// A subscriber on an embedded loop, for commands that need connections with topics.
final class RecordingTransportForConsole: SubscriberTransport {
    let loop = EmbeddedEventLoop()
    var eventLoop: any EventLoop { self.loop }
    var bufferedBytes: Int { 0 }
    var subscription: Subscription?

    func write(_ buffer: ByteBuffer) {}
    func flush() {}
    func close() { self.subscription?.transportClosed() }

    static func subscribed(to broker: Broker, _ id: String, topics: [String]) throws -> RecordingTransportForConsole {
        let transport = RecordingTransportForConsole()
        transport.subscription = try broker.subscribe(
            clientID: id,
            lastEventID: nil,
            topics: TopicFilter(topics.map { name throws(BrokerError) in try Topic(name) }),
            remoteAddress: "127.0.0.1:1",
            userAgent: nil,
            transport: transport
        )
        return transport
    }
}
