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
        #expect(executor.execute(.ban(clientID: "mallory", duration: .seconds(300))) == .ok("banned mallory for 5m (0 connections closed); it gets 204 No Content"))
        #expect(self.broker.bannedClientIDs == ["mallory"])
        #expect(executor.execute(.unban(clientID: "mallory")) == .ok("unbanned mallory"))
        #expect(executor.execute(.unban(clientID: "mallory")) == .error("unban: mallory is not banned"))
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
