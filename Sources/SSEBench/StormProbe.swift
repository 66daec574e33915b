import ArgumentParser
import Histogram
import NIOCore
import NIOPosix

/// Options every storm shares: where to read the broker's subscriber count, and the probe.
struct StormOptions: ParsableArguments {
    @Option(
        name: .customLong("count-url"),
        help: """
            Where to read how many subscribers the broker holds: http://127.0.0.1:PORT/PATH, or /PATH on the broker. \
            This broker: /metrics (sse_clients_connected) or /healthz ("clients"); nchan: a nchan_stub_status location ("subscribers: N").
            """
    )
    var countURL = "/metrics"

    @Option(name: .customLong("count-key"), help: "The name the count follows in that body (default: the first found of sse_clients_connected, clients, subscribers).")
    var countKey: String?

    @Option(name: .customLong("probe-sub-path"), help: "The probe subscriber's path ({id} = the probe's id). nchan: /sub/{id}.")
    var probeSubPath = "/connect?id={id}"

    @Option(name: .customLong("probe-pub-path"), help: "Where the probe publishes, to the probe subscriber only ({id} = the probe's id). nchan: /pub/{id}.")
    var probePubPath = "/broadcast?id={id}"

    @Option(name: .customLong("probe-id"), help: "The probe subscriber's id.")
    var probeID = "probe"

    @Option(name: .customLong("probe-interval"), help: "Milliseconds between probe events (one publish in flight at a time).")
    var probeIntervalMs = 5.0

    func validateStorm() throws {
        guard self.probeIntervalMs >= 1, self.probeIntervalMs <= 1000 else { throw ValidationError("--probe-interval must be 1…1000 ms") }
        guard !self.probeID.isEmpty, self.probeID.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw ValidationError("--probe-id must be letters, digits, - or _")
        }
    }

    func countSource(common: CommonOptions) throws -> CountSource {
        let first = try common.endpoints(defaultPubPath: "/broadcast")[0]
        return try CountSource.parse(self.countURL, host: first.host, port: first.port, key: self.countKey)
    }
}

/// The probe: one subscriber of its own stream and one publisher sending it a small event every
/// `--probe-interval` ms (one request in flight), on an event loop of their own so the storm's
/// connections do not queue ahead of them in the bench. Latency is publish→receive of those events,
/// taken in windows.
final class Probe: Sendable {
    let harness: Harness
    let publishers: PipelinedPublishers
    private let plan: PublishPlan

    /// - Parameter duration: the probe publishes for at most this many seconds.
    init(common: CommonOptions, storm: StormOptions, duration: Double) throws {
        let first = try common.endpoints(defaultPubPath: "/broadcast")[0]
        let endpoint = Endpoint(
            host: first.host, port: first.port, subPath: storm.probeSubPath, pubPath: storm.probePubPath, idPrefix: storm.probeID
        )
        self.harness = Harness(endpoints: [endpoint], threads: 1)
        self.publishers = PipelinedPublishers(loops: self.harness.loops.map(\.loop))
        let rate = 1000 / storm.probeIntervalMs
        self.plan = PublishPlan(maxEvents: Int(duration * rate) + 1, duration: duration, rate: rate)
    }

    /// Connects the probe subscriber and publisher and starts publishing.
    func start(log: (String) -> Void) async throws {
        let (connected, failures) = await self.harness.connectSubscribers(count: 1, batch: 1, log: log)
        guard connected == 1 else { throw BenchError.connectFailed("probe subscriber: \(failures.joined(separator: "; "))") }
        // Subscriber 0 is the probe: its events go to it alone (target index 0 fills in its id).
        _ = try await self.publishers.connect(
            count: 1, endpoint: self.harness.endpoints[0], targetIndex: 0, depth: 1, size: 48, plan: self.plan
        )
        self.publishers.start(self.plan)
    }

    /// The probe's figures since the last call.
    func takeWindow(name: String, since: UInt64) async -> StormReport.ProbeWindow {
        let latency = await self.harness.takeLatency()
        let publish = await self.publishers.takeWindow()
        return StormReport.ProbeWindow(
            name: name, seconds: Double(monotonicNanos() - since) / 1e9, latency: Report.Latency(latency),
            published: publish.sent, answerP99Ms: Double(publish.answers.valueAtPercentile(99)) / 1000,
            answerMaxMs: Double(publish.answers.max) / 1000, sendLateMaxMs: Double(publish.maxLatenessNanos) / 1e6
        )
    }

    func shutdown() async {
        await self.publishers.stop(force: true)
        await self.harness.shutdown()
    }
}

extension Harness {
    /// The subscribers' latency histogram since the last call (or the start); starts a new one.
    func takeLatency() async -> Histogram<UInt64> {
        var total = LoopState.histogram()
        for state in self.loops {
            let part = try? await state.loop.submit {
                defer {
                    state.latency = LoopState.histogram()
                    state.latencyByEndpoint = state.latencyByEndpoint.map { _ in LoopState.histogram() }
                }
                return state.latency
            }.get()
            if let part { total.add(part) }
        }
        return total
    }

    /// Resets every subscriber (`SO_LINGER {1, 0}` and close: the server sees RST), all loops at once.
    /// - Returns: how many were reset.
    func resetSubscribers() async -> Int {
        let futures = self.loops.map { state in
            state.loop.submit {
                let open = state.subscribers.filter { !$0.closed }
                open.forEach { $0.reset() }
                return open.count
            }
        }
        var total = 0
        for future in futures { total += (try? await future.get()) ?? 0 }
        return total
    }

    /// Subscribers whose connection has closed (while nothing in the bench closed them).
    func closedSubscribers() async -> Int {
        var closed = 0
        for state in self.loops {
            closed += (try? await state.loop.submit { state.subscribers.filter(\.closed).count }.get()) ?? 0
        }
        return closed
    }
}
