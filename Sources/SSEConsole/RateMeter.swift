import SSEBroker

/// Turns the broker's monotonic counters into per-second rates over a sliding window of about a second.
struct RateMeter {
    private var samples: [(time: Double, stats: BrokerStatistics)] = []

    struct Rates {
        var eventsIn = 0.0
        var eventsOut = 0.0
        var bytesOut = 0.0
    }

    mutating func add(_ stats: BrokerStatistics, at time: Double) -> Rates {
        self.samples.append((time, stats))
        // Keep the newest sample that is at least a second old as the base.
        while self.samples.count > 2 && time - self.samples[1].time >= 1 {
            self.samples.removeFirst()
        }
        guard let base = self.samples.first, time - base.time > 0.05 else { return Rates() }
        let span = time - base.time
        return Rates(
            eventsIn: Double(stats.published - base.stats.published) / span,
            eventsOut: Double(stats.delivered - base.stats.delivered) / span,
            bytesOut: Double(stats.bytesDelivered - base.stats.bytesDelivered) / span
        )
    }
}
