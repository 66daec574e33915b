import SSEBroker
import SSEConsoleCore

/// What was published to each event type since the console started, as the feed sees it
/// (`listen()`), for the topics view: counts and last times per type, rates per topic.
///
/// Recording is O(1) per event (one dictionary entry per type, at most ``maxTypes`` of them: a
/// producer inventing types cannot grow it without bound). A pattern's numbers are summed over the
/// types it matches when the view is refreshed, which happens only while it is shown.
final class TopicActivity: Sendable {
    struct TypeStats: Sendable {
        var events = 0
        var last = 0.0
    }

    static let maxTypes = 10_000

    private struct State {
        var types: [String: TypeStats] = [:]
        /// Per topic: the total and time of the sample a rate is measured from, and the rate.
        var rates: [String: (events: Int, time: Double, perSecond: Double)] = [:]
    }

    private let state = Locked(State())

    func record(type: String?, at time: Double) {
        let type = type.flatMap { $0.isEmpty ? nil : $0 } ?? Topic.untypedEventType
        self.state.withLock { state in
            guard state.types[type] != nil || state.types.count < Self.maxTypes else { return }
            state.types[type, default: TypeStats()].events += 1
            state.types[type]?.last = time
        }
    }

    /// `rows` with their events, rate and last event filled in.
    func enrich(_ rows: [TopicRow], now: Double) -> [TopicRow] {
        self.state.withLock { state in
            let types = state.types
            var enriched = rows
            for index in enriched.indices {
                var events = 0
                var last: Double?
                func add(_ stats: TypeStats) {
                    events += stats.events
                    last = max(last ?? stats.last, stats.last)
                }
                let row = enriched[index]
                switch row.kind {
                case .exact:
                    if let stats = types[row.topic] { add(stats) }
                case .pattern:
                    if let topic = try? Topic(row.topic) {
                        for (type, stats) in types where topic.matches(type) { add(stats) }
                    }
                case .all:
                    for stats in types.values { add(stats) }
                }
                enriched[index].events = events
                enriched[index].lastEventAt = last
                // A rate over at least a second: the base sample moves on once a second old.
                var rate = state.rates[row.topic] ?? (events, now, 0)
                if now - rate.time >= 1 {
                    rate = (events, now, Double(events - rate.events) / (now - rate.time))
                }
                state.rates[row.topic] = rate
                enriched[index].eventsPerSecond = rate.perSecond
            }
            return enriched
        }
    }
}
