import CoreMetrics
import Logging
import MetricsTestKit
import NIOCore
import NIOEmbedded
import Testing

@testable import SSEBroker

/// The broker's swift-metrics, through an injected `TestMetrics` factory (nothing is bootstrapped).
@Suite struct MetricsTests {
    let loop = EmbeddedEventLoop()
    let metrics = TestMetrics()

    func broker(_ configuration: BrokerConfiguration = BrokerConfiguration()) throws -> Broker {
        try Broker(configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metricsFactory: self.metrics)
    }

    func subscribe(_ broker: Broker, _ id: String, on loop: EmbeddedEventLoop? = nil) throws -> RecordingTransport {
        let transport = RecordingTransport(loop: loop ?? self.loop)
        transport.subscription = try broker.subscribe(
            clientID: id,
            lastEventID: nil,
            remoteAddress: nil,
            userAgent: nil,
            transport: transport
        )
        return transport
    }

    @Test func updateMetrics_mirrorsStatisticsDeltas_intoCountersAndAGauge() throws {
        let broker = try self.broker()
        _ = try self.subscribe(broker, "alice")
        _ = try self.subscribe(broker, "bob")
        for index in 1...3 {
            try broker.broadcast(Event(type: "t", data: "e\(index)"))
        }
        self.loop.run()
        broker.updateMetrics()
        #expect(try self.metrics.expectCounter("sse_events_published_total").totalValue == 3)
        #expect(try self.metrics.expectCounter("sse_events_delivered_total").totalValue == 6)
        #expect(try self.metrics.expectCounter("sse_connections_accepted_total").totalValue == 2)
        #expect(try self.metrics.expectCounter("sse_event_bytes_delivered_total").totalValue == Int64(broker.statistics.bytesDelivered))
        #expect(try self.metrics.expectGauge("sse_clients_connected").lastValue == 2)

        try broker.broadcast(Event(data: "e4"))
        self.loop.run()
        broker.updateMetrics()
        broker.updateMetrics()  // nothing new: no increment
        let published = try self.metrics.expectCounter("sse_events_published_total")
        #expect(published.values == [3, 1])
        #expect(published.totalValue == 4)
    }

    @Test func topicSeries_onlyForTheConfiguredTopics() throws {
        let broker = try self.broker(BrokerConfiguration(metricsTopics: ["price", "orders.*"]))
        for (id, topics) in [("a", ["price"]), ("b", ["price", "chat"]), ("c", ["orders.*"]), ("d", ["chat"]), ("e", [])] {
            _ = try RecordingTransport.subscribed(to: broker, id, topics: topics, on: self.loop)
        }
        try broker.broadcast(Event(type: "price", data: "1"))  // a, b, e
        try broker.broadcast(Event(type: "orders.eu", data: "2"))  // c, e
        try broker.broadcast(Event(type: "orders.us", data: "3"))  // c, e
        try broker.broadcast(Event(type: "chat", data: "4"))  // b, d, e: no series
        self.loop.run()
        broker.updateMetrics()
        let dimensions: (String) -> [(String, String)] = { [("topic", $0)] }
        #expect(try self.metrics.expectGauge("sse_topic_subscriptions", dimensions("price")).lastValue == 2)
        #expect(try self.metrics.expectGauge("sse_topic_subscriptions", dimensions("orders.*")).lastValue == 1)
        #expect(try self.metrics.expectCounter("sse_topic_deliveries_total", dimensions("price")).totalValue == 3)
        #expect(try self.metrics.expectCounter("sse_topic_deliveries_total", dimensions("orders.*")).totalValue == 4)
        #expect(throws: (any Error).self) { try self.metrics.expectGauge("sse_topic_subscriptions", dimensions("chat")) }
        #expect(broker.topicStatistics == [
            TopicStatistics(topic: "price", subscriptions: 2, deliveries: 3),
            TopicStatistics(topic: "orders.*", subscriptions: 1, deliveries: 4),
        ])
        #expect(throws: BrokerError.self) { try BrokerConfiguration(metricsTopics: ["ok", ""]).validate() }
        #expect(throws: BrokerError.self) { try BrokerConfiguration(metricsTopics: (0...32).map { "t\($0)" }).validate() }
    }

    @Test func kicksAreCountedByReason_andRefusalsByStatus() throws {
        let broker = try self.broker(BrokerConfiguration(writeTimeout: .zero, tolerance: 1))
        _ = try self.subscribe(broker, "alice")
        _ = try self.subscribe(broker, "bob")
        let slow = try self.subscribe(broker, "slow")
        try broker.kick("alice")
        try broker.ban("bob")
        slow.subscription?.writabilityChanged(isWritable: false)
        try broker.broadcast(Event(data: "missed by slow"))
        self.loop.run()
        broker.recordRefusal(.unknownClient("x"))
        broker.recordRefusal(.notFound(path: "/nope"))
        broker.recordRefusal(.invalidEventType("bad"))
        broker.updateMetrics()

        #expect(try self.metrics.expectCounter("sse_clients_kicked_total", [("reason", "kick")]).totalValue == 1)
        #expect(try self.metrics.expectCounter("sse_clients_kicked_total", [("reason", "ban")]).totalValue == 1)
        #expect(try self.metrics.expectCounter("sse_clients_kicked_total", [("reason", "over_tolerance")]).totalValue == 1)
        #expect(try self.metrics.expectCounter("sse_requests_refused_total", [("status", "404")]).totalValue == 2)
        #expect(try self.metrics.expectCounter("sse_requests_refused_total", [("status", "400")]).totalValue == 1)
        #expect(try self.metrics.expectCounter("sse_events_dropped_total").totalValue == 1)
        #expect(try self.metrics.expectGauge("sse_clients_connected").lastValue == 0)
        #expect(broker.statistics.refusals == [404: 2, 400: 1])
        #expect(broker.statistics.kicked == 2)
        #expect(broker.statistics.banned == 1)
    }

    @Test func fanoutLatency_isRecordedOncePerLoopPerEvent_neverPerClient() throws {
        let broker = try self.broker()
        let otherLoop = EmbeddedEventLoop()
        for index in 0..<5 {
            _ = try self.subscribe(broker, "a\(index)")
        }
        for index in 0..<3 {
            _ = try self.subscribe(broker, "b\(index)", on: otherLoop)
        }
        for index in 1...4 {
            try broker.broadcast(Event(data: "e\(index)"))
        }
        self.loop.run()
        otherLoop.run()
        let timer = try self.metrics.expectTimer("sse_fanout_duration_seconds")
        #expect(timer.values.count == 4 * 2)  // 4 events × 2 loops, not × 8 clients
        #expect(timer.values.allSatisfy { $0 >= 0 })
        // Heartbeats are neither counted nor timed.
        self.loop.advanceTime(by: .seconds(15))
        #expect(timer.values.count == 8)
    }

}

/// No `EmbeddedEventLoop` here: an async test may hop threads, and that loop must stay on one.
@Suite struct MetricsReporterTests {
    let metrics = TestMetrics()

    @Test func reportMetrics_mirrorsUntilCancelled_andOnceMoreThen() async throws {
        let broker = try Broker(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metricsFactory: self.metrics)
        let reporter = Task { await broker.reportMetrics(every: .seconds(3600)) }
        try broker.broadcast(Event(data: "one"))
        try broker.broadcast(Event(data: "two"))
        reporter.cancel()
        await reporter.value
        #expect(try self.metrics.expectCounter("sse_events_published_total").totalValue == 2)
    }
}
