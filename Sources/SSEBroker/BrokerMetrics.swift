import CoreMetrics
import Synchronization

/// The broker's swift-metrics: ``BrokerStatistics`` mirrored into counters and a gauge, plus the
/// fan-out latency timer.
///
/// The fan-out path stays as it was — it already aggregates into ``BrokerCounters`` once per event
/// per loop — and ``update(from:)`` turns the difference since its last call into counter
/// increments. So a metrics backend costs nothing per client per event, however many clients.
///
/// | metric | type | dimensions |
/// |---|---|---|
/// | `sse_clients_connected` | gauge | |
/// | `sse_connections_accepted_total` | counter | |
/// | `sse_events_published_total` | counter | |
/// | `sse_events_delivered_total` | counter | |
/// | `sse_event_bytes_delivered_total` | counter | |
/// | `sse_events_dropped_total` | counter | |
/// | `sse_listener_events_dropped_total` | counter | |
/// | `sse_clients_kicked_total` | counter | `reason`: `kick`, `ban`, `over_tolerance` |
/// | `sse_requests_refused_total` | counter | `status`: `400`, `404`, … |
/// | `sse_publishes_delayed_total` | counter | |
/// | `sse_fanout_duration_seconds` | timer | |
/// | `sse_topic_subscriptions` | gauge | `topic`: one of ``BrokerConfiguration/metricsTopics`` |
/// | `sse_topic_deliveries_total` | counter | `topic`: one of ``BrokerConfiguration/metricsTopics`` |
final class BrokerMetrics: Sendable {
    /// From `broadcast` until the event is written to every connection of one event loop.
    let fanoutTimer: CoreMetrics.Timer
    private let factory: any MetricsFactory
    private let connected: Gauge
    private let accepted: Counter
    private let published: Counter
    private let delivered: Counter
    private let bytesDelivered: Counter
    private let dropped: Counter
    private let listenerDrops: Counter
    private let kicked: Counter
    private let banned: Counter
    private let overTolerance: Counter
    private let delayed: Counter

    private struct State {
        var last = BrokerStatistics()
        var refused: [UInt: Counter] = [:]
        var topics: [String: (subscriptions: Gauge, deliveries: Counter, last: Int)] = [:]
    }

    private let state = Locked(State())

    init(factory: any MetricsFactory) {
        self.factory = factory
        self.fanoutTimer = CoreMetrics.Timer(label: "sse_fanout_duration_seconds", factory: factory)
        self.connected = Gauge(label: "sse_clients_connected", factory: factory)
        self.accepted = Counter(label: "sse_connections_accepted_total", factory: factory)
        self.published = Counter(label: "sse_events_published_total", factory: factory)
        self.delivered = Counter(label: "sse_events_delivered_total", factory: factory)
        self.bytesDelivered = Counter(label: "sse_event_bytes_delivered_total", factory: factory)
        self.dropped = Counter(label: "sse_events_dropped_total", factory: factory)
        self.listenerDrops = Counter(label: "sse_listener_events_dropped_total", factory: factory)
        self.kicked = Counter(label: "sse_clients_kicked_total", dimensions: [("reason", "kick")], factory: factory)
        self.banned = Counter(label: "sse_clients_kicked_total", dimensions: [("reason", "ban")], factory: factory)
        self.delayed = Counter(label: "sse_publishes_delayed_total", factory: factory)
        self.overTolerance = Counter(
            label: "sse_clients_kicked_total",
            dimensions: [("reason", "over_tolerance")],
            factory: factory
        )
    }

    /// Adds what changed since the last call; concurrent calls never count a change twice.
    func update(from statistics: BrokerStatistics, topics: [TopicStatistics] = []) {
        self.state.withLock { state in
            let last = state.last
            func add(_ counter: Counter, _ now: Int, _ before: Int) {
                if now > before { counter.increment(by: now - before) }
            }
            self.connected.record(statistics.connected)
            add(self.accepted, statistics.connectionsAccepted, last.connectionsAccepted)
            add(self.published, statistics.published, last.published)
            add(self.delivered, statistics.delivered, last.delivered)
            add(self.bytesDelivered, statistics.bytesDelivered, last.bytesDelivered)
            add(self.dropped, statistics.dropped, last.dropped)
            add(self.listenerDrops, statistics.listenerDrops, last.listenerDrops)
            add(self.kicked, statistics.kicked - statistics.banned, last.kicked - last.banned)
            add(self.banned, statistics.banned, last.banned)
            add(self.overTolerance, statistics.disconnectedOverTolerance, last.disconnectedOverTolerance)
            add(self.delayed, statistics.publishesDelayed, last.publishesDelayed)
            for (status, count) in statistics.refusals {
                let counter =
                    state.refused[status]
                    ?? Counter(label: "sse_requests_refused_total", dimensions: [("status", String(status))], factory: self.factory)
                state.refused[status] = counter
                add(counter, count, last.refusals[status] ?? 0)
            }
            state.last = statistics
            // Only the configured topics: a bounded set of series.
            for topic in topics {
                let dimensions = [("topic", topic.topic)]
                var series =
                    state.topics[topic.topic]
                    ?? (
                        Gauge(label: "sse_topic_subscriptions", dimensions: dimensions, factory: self.factory),
                        Counter(label: "sse_topic_deliveries_total", dimensions: dimensions, factory: self.factory),
                        0
                    )
                series.subscriptions.record(topic.subscriptions)
                add(series.deliveries, topic.deliveries, series.last)
                series.last = topic.deliveries
                state.topics[topic.topic] = series
            }
        }
    }
}
