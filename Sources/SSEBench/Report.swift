import Foundation
import Histogram

/// One run's results; printed as a table or as JSON (`--json`). Absent fields do not apply.
struct Report: Codable, Sendable {
    struct Latency: Codable, Sendable {
        var samples: UInt64
        var p50Ms: Double
        var p90Ms: Double
        var p99Ms: Double
        var p999Ms: Double
        var maxMs: Double

        init(_ histogram: Histogram<UInt64>) {
            func ms(_ micros: UInt64) -> Double { Double(micros) / 1000 }
            self.samples = histogram.totalCount
            self.p50Ms = ms(histogram.valueAtPercentile(50))
            self.p90Ms = ms(histogram.valueAtPercentile(90))
            self.p99Ms = ms(histogram.valueAtPercentile(99))
            self.p999Ms = ms(histogram.valueAtPercentile(99.9))
            self.maxMs = ms(histogram.max)
        }
    }

    var workload: String
    var target: String
    var subscribers: Int
    var subscribersConnected: Int
    var connectFailures: [String]?
    var publishers: Int?
    var eventBytes: Int?
    var rate: Double?
    var benchThreads: Int
    /// The topics workload: how many topics the subscribers are spread over.
    var topics: Int?
    /// Several brokers (nodes of a cluster): their URLs, where publishers post ("first" or "all").
    var urls: [String]?
    var publishTo: String?

    var durationSeconds: Double?
    var published: Int?
    var publishFailures: Int?
    var publishedPerSecond: Double?
    var expected: Int?
    var delivered: Int?
    var deliveredPerSecond: Double?
    var completeness: Double?
    /// Subscribers that got exactly the accepted events (count and sequence fingerprint), with
    /// strictly increasing ids and each publisher's events in publish order.
    var completeSubscribers: Int?
    /// Whether every subscriber connected and is complete in that sense.
    var verified: Bool?
    /// Subscribers whose set of events differs from what was accepted (missing or duplicated).
    var subscribersWithWrongSet: Int?
    var subscribersOutOfOrder: Int?
    /// Events whose id equalled the previous one's (delivered twice).
    var duplicateIDs: Int?
    /// Events whose id was below the previous one's.
    var idsOutOfOrder: Int?
    /// Events that arrived after a later event of the same publisher.
    var publisherOrderViolations: Int?
    var drained: Bool?
    var subscribersClosed: Int?
    var latency: Latency?
    /// Latency of the subscribers of each URL (several brokers only).
    var latencyByURL: [Latency]?

    var brokerPID: Int32?
    var brokerPIDs: [Int32]?
    /// CPU seconds of each broker process (several only; -1 if unreadable).
    var brokerCPUSecondsByPID: [Double]?
    var brokerCPUSeconds: Double?
    var brokerCPUPercent: Double?
    /// The headline: broker CPU time per delivered event.
    var brokerCPUMicrosPerEvent: Double?
    var brokerRSSBeforeBytes: Int?
    var brokerRSSAfterBytes: Int?
    var brokerRSSPeakBytes: Int?
    var brokerRSSGrowthBytes: Int?
    var brokerRSSPerConnectionBytes: Double?
    var benchCPUSeconds: Double?
    /// CPU of the processes passed with --aux-pid (e.g. PostgreSQL's) over the same window.
    var auxCPUSeconds: Double?
    var auxCPUPercent: Double?

    // slow
    var nonReaders: Int?
    var nonReadersClosed: Int?
    var healthy: Int?
    var healthyComplete: Int?
    var healthyCompleteness: Double?
    var healthyClosed: Int?

    var notes: [String]?

    func printTable() {
        var rows: [(String, String)] = [
            ("workload", self.workload), ("target", self.target),
            ("subscribers", "\(self.subscribersConnected) of \(self.subscribers) connected"),
        ]
        func add(_ name: String, _ value: String?) { if let value { rows.append((name, value)) } }
        func f(_ value: Double?, _ digits: Int = 2) -> String? { value.map { String(format: "%.\(digits)f", $0) } }
        func mib(_ bytes: Int?) -> String? { bytes.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } }
        add("connect failures", self.connectFailures?.joined(separator: "; "))
        add("topics", self.topics.map { "\($0) (subscriber i on topic i mod \($0))" })
        add("publishers", self.publishers.map(String.init))
        add("event size", self.eventBytes.map { "\($0) B" })
        add("rate", self.rate.map { $0 > 0 ? "\($0) events/s" : "unlimited" })
        add("bench threads", "\(self.benchThreads)")
        add("publish time", f(self.durationSeconds).map { "\($0) s" })
        add("published", self.published.map { "\($0) (\(self.publishFailures ?? 0) failed)" })
        add("published/s", f(self.publishedPerSecond, 0))
        add("delivered", self.delivered.map { "\($0) of \(self.expected ?? 0) expected" })
        add("delivered/s", f(self.deliveredPerSecond, 0))
        add("completeness", f(self.completeness, 6))
        add("complete subscribers", self.completeSubscribers.map { "\($0) (every event once, in order)" })
        add("verified", self.verified.map { $0 ? "yes" : "NO" })
        add("wrong event set", self.subscribersWithWrongSet.map { "\($0) subscribers" })
        add("out of order", self.subscribersOutOfOrder.map {
            "\($0) subscribers (ids repeated \(self.duplicateIDs ?? 0), ids back \(self.idsOutOfOrder ?? 0), publisher order \(self.publisherOrderViolations ?? 0))"
        })
        add("subscribers closed", self.subscribersClosed.map { "\($0)" })
        if let latency {
            add("latency p50/p99/max", String(format: "%.3f / %.3f / %.3f ms", latency.p50Ms, latency.p99Ms, latency.maxMs))
        }
        for (url, latency) in zip(self.urls ?? [], self.latencyByURL ?? []) {
            add("  at \(url)", String(format: "%.3f / %.3f / %.3f ms", latency.p50Ms, latency.p99Ms, latency.maxMs))
        }
        add("broker CPU", f(self.brokerCPUSeconds, 3).map { "\($0) s (\(f(self.brokerCPUPercent, 1) ?? "?") %)" })
        if let perPID = self.brokerCPUSecondsByPID, let pids = self.brokerPIDs {
            add("  per process", zip(pids, perPID).map { "\($0): \(String(format: "%.3f", $1)) s" }.joined(separator: ", "))
        }
        add("broker CPU/event", f(self.brokerCPUMicrosPerEvent, 3).map { "\($0) µs per delivered event" })
        add("broker RSS before", mib(self.brokerRSSBeforeBytes))
        add("broker RSS after", mib(self.brokerRSSAfterBytes))
        add("broker RSS peak", mib(self.brokerRSSPeakBytes))
        add("broker RSS growth", mib(self.brokerRSSGrowthBytes))
        add("RSS per connection", f(self.brokerRSSPerConnectionBytes.map { $0 / 1024 }, 2).map { "\($0) KiB" })
        add("non-readers closed", self.nonReadersClosed.map { "\($0) of \(self.nonReaders ?? 0)" })
        add("healthy complete", self.healthyComplete.map { "\($0) of \(self.healthy ?? 0)" })
        add("healthy completeness", f(self.healthyCompleteness, 6))
        add("healthy closed", self.healthyClosed.map(String.init))
        add("bench CPU", f(self.benchCPUSeconds, 3).map { "\($0) s" })
        add("other CPU (--aux-pid)", f(self.auxCPUSeconds, 3).map { "\($0) s (\(f(self.auxCPUPercent, 1) ?? "?") %)" })
        for note in self.notes ?? [] { rows.append(("note", note)) }
        let width = rows.map(\.0.count).max() ?? 0
        for (name, value) in rows {
            print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
        }
    }

    func printJSON() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(self), as: UTF8.self))
    }
}
