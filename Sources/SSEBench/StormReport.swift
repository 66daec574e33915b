import Foundation

/// One storm's results; printed as a table or as one line of JSON (`--json`). Absent fields do not apply.
struct StormReport: Codable, Sendable {
    /// The probe's publish→receive latency and its publisher's answers over one window of the run.
    struct ProbeWindow: Codable, Sendable {
        var name: String
        var seconds: Double
        var latency: Report.Latency
        /// Probe events sent in the window (the interval promises seconds × 1000 / interval).
        var published: Int
        var answerP99Ms: Double
        /// The longest the probe publisher waited for an answer: a stalled publish shows here.
        var answerMaxMs: Double
        /// How late the probe sent an event after its schedule (it waits for the previous answer).
        var sendLateMaxMs: Double
    }

    var storm: String
    var target: String
    var subscribers: Int
    var subscribersConnected: Int
    var connectFailures: [String]?
    var benchThreads: Int
    var countURL: String?
    var probe: [ProbeWindow]?

    /// The broker's count before the storm and at the end of it.
    var countBefore: Int?
    var countAfter: Int?
    var countReadFailures: Int?

    // reset
    var reset: Int?
    /// From the reset until the broker's count had dropped by the reset connections (nil: not within the timeout).
    var noticedMs: Double?
    var noticedWithin1s: Bool?

    // connect
    var connectSpreadSeconds: Double?
    var connectFailuresByKind: [String: Int]?
    /// From the first connect until the last stream started (response head read) in the bench.
    var benchAllStartedMs: Double?
    /// From the first connect until the broker's count showed every new subscriber.
    var brokerAllRegisteredMs: Double?

    // overload
    var readers: Int?
    var publishers: Int?
    var pipelineDepth: Int?
    var eventBytes: Int?
    var durationSeconds: Double?
    var sent: Int?
    /// Responses by status ("0": none before the connection closed).
    var statuses: [String: Int]?
    var accepted: Int?
    var refused503: Int?
    var otherStatus: Int?
    var unanswered: Int?
    /// Publisher connections the broker closed while requests were in flight.
    var publishersClosedByBroker: Int?
    /// From the start of publishing to the last answer.
    var lastAnswerSeconds: Double?
    var acceptedPerSecond: Double?
    var expected: Int?
    /// Receipts of accepted events, over all readers (each reader counted at most once per event).
    var delivered: Int?
    var completeness: Double?
    /// Readers that got exactly the accepted events (count and sequence fingerprint).
    var completeReaders: Int?
    /// Readers whose connection the broker closed while the test ran.
    var readersDisconnected: Int?
    /// Receipts of events the broker refused (non-2xx): should be 0.
    var refusedReceived: Int?
    /// Receipts of events never answered (the connection closed first): delivered or not, both are fine.
    var unansweredReceived: Int?
    var duplicateIDs: Int?
    var idsOutOfOrder: Int?
    var publisherOrderViolations: Int?
    var drained: Bool?
    var latency: Report.Latency?
    var publishAnswer: Report.Latency?
    var brokerPID: Int32?
    var brokerCPUSeconds: Double?
    var brokerRSSBeforeConnectBytes: Int?
    var brokerRSSBeforeBytes: Int?
    var brokerRSSAfterBytes: Int?
    var brokerRSSPeakBytes: Int?
    var benchCPUSeconds: Double?

    var notes: [String]?

    func printTable() {
        var rows: [(String, String)] = [
            ("storm", self.storm), ("target", self.target),
            ("subscribers", "\(self.subscribersConnected) of \(self.subscribers) connected"),
        ]
        func add(_ name: String, _ value: String?) { if let value { rows.append((name, value)) } }
        func f(_ value: Double?, _ digits: Int = 2) -> String? { value.map { String(format: "%.\(digits)f", $0) } }
        func mib(_ bytes: Int?) -> String? { bytes.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } }
        func lat(_ l: Report.Latency) -> String {
            String(format: "p50 %.2f / p99 %.2f / max %.2f ms (%llu samples)", l.p50Ms, l.p99Ms, l.maxMs, l.samples)
        }
        add("connect failures", self.connectFailures?.joined(separator: "; "))
        add("bench threads", "\(self.benchThreads)")
        add("count from", self.countURL)
        add("count before / after", self.countBefore.map { "\($0) / \(self.countAfter.map(String.init) ?? "?")" })
        add("count reads failed", self.countReadFailures.map(String.init))
        for window in self.probe ?? [] {
            add("probe \(window.name)", lat(window.latency))
            add(
                "  publishes",
                String(
                    format: "%ld in %.2f s; answer p99 %.2f / max %.2f ms; sent late by up to %.2f ms", window.published, window.seconds,
                    window.answerP99Ms, window.answerMaxMs, window.sendLateMaxMs
                )
            )
        }
        add("reset", self.reset.map { "\($0) connections (SO_LINGER 0 + close)" })
        if self.storm == "reset" {
            add("noticed", self.noticedMs.map { String(format: "%.0f ms", $0) } ?? "not within the timeout")
            add("noticed within 1 s", self.noticedWithin1s.map { $0 ? "yes" : "NO" })
        }
        add("connects spread over", f(self.connectSpreadSeconds).map { "\($0) s" })
        add("failures by kind", self.connectFailuresByKind.map { $0.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") })
        add("all started (bench)", f(self.benchAllStartedMs, 0).map { "\($0) ms" })
        if self.storm == "connect" {
            add("all registered (broker)", f(self.brokerAllRegisteredMs, 0).map { "\($0) ms" } ?? "not within the timeout")
        }
        add("readers", self.readers.map(String.init))
        add("publishers", self.publishers.map { "\($0) × \(self.pipelineDepth ?? 1) pipelined" })
        add("event size", self.eventBytes.map { "\($0) B" })
        add("publish time", f(self.durationSeconds).map { "\($0) s" })
        add("sent", self.sent.map(String.init))
        add("answers", self.statuses.map { $0.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") })
        add("accepted (2xx)", self.accepted.map { "\($0) (\(f(self.acceptedPerSecond, 0) ?? "?")/s)" })
        add("refused 503 / other / unanswered", self.refused503.map { "\($0) / \(self.otherStatus ?? 0) / \(self.unanswered ?? 0)" })
        add("publishers closed by the broker", self.publishersClosedByBroker.map(String.init))
        add("last answer", self.f2(self.lastAnswerSeconds).map { "\($0) s after the first publish" })
        add("delivered", self.delivered.map { "\($0) of \(self.expected ?? 0) expected" })
        add("completeness", f(self.completeness, 6))
        add("complete readers", self.completeReaders.map { "\($0) of \(self.readers ?? 0)" })
        add("readers disconnected", self.readersDisconnected.map { "\($0) (closed by the broker during the run)" })
        add("refused but received", self.refusedReceived.map(String.init))
        add("unanswered but received", self.unansweredReceived.map(String.init))
        add("ids repeated / back", self.duplicateIDs.map { "\($0) / \(self.idsOutOfOrder ?? 0) (publisher order \(self.publisherOrderViolations ?? 0))" })
        add("drained", self.drained.map { $0 ? "yes" : "no (timeout or quiet)" })
        add("latency", self.latency.map(lat))
        add("publish answer", self.publishAnswer.map(lat))
        add("broker CPU", f(self.brokerCPUSeconds, 3).map { "\($0) s" })
        add("broker RSS before connect", mib(self.brokerRSSBeforeConnectBytes))
        add("broker RSS before", mib(self.brokerRSSBeforeBytes))
        add("broker RSS after", mib(self.brokerRSSAfterBytes))
        add("broker RSS peak", mib(self.brokerRSSPeakBytes))
        add("bench CPU", f(self.benchCPUSeconds, 3).map { "\($0) s" })
        for note in self.notes ?? [] { rows.append(("note", note)) }
        let width = rows.map(\.0.count).max() ?? 0
        for (name, value) in rows {
            print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
        }
    }

    private func f2(_ value: Double?) -> String? { value.map { String(format: "%.2f", $0) } }

    func printJSON() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(self), as: UTF8.self))
    }
}

extension CommonOptions {
    func emit(_ report: StormReport) throws {
        if self.json { try report.printJSON() } else { report.printTable() }
    }
}
