import ArgumentParser
import Foundation
import NIOCore
import Synchronization

/// N subscribers connecting within one second, spread evenly: the probe's latency meanwhile, and
/// how long until the broker has registered them all.
struct StormConnect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect",
        abstract: "N subscribers connecting within --spread seconds; probe latency meanwhile and until the broker registered them all."
    )
    @OptionGroup var common: CommonOptions
    @OptionGroup var storm: StormOptions

    @Option(name: [.customShort("n"), .long], help: "Subscribers that connect.")
    var subscribers = 10_000

    @Option(help: "Seconds the connects are spread over (in 10 ms steps).")
    var spread = 1.0

    @Option(help: "Seconds of probe baseline before the storm.")
    var baseline = 1.0

    @Option(name: .customLong("register-timeout"), help: "Seconds to wait for the broker's count to show them all.")
    var registerTimeout = 30.0

    func validate() throws {
        try self.common.validateCommon()
        try self.storm.validateStorm()
        guard (1...50_000).contains(self.subscribers) else { throw ValidationError("--subscribers must be 1…50000") }
        try requireSeconds(self.spread, "--spread", atMost: 60)
        try requireSeconds(self.baseline, "--baseline", atMost: 60)
        try requireSeconds(self.registerTimeout, "--register-timeout", atMost: 120)
    }

    func run() async throws {
        SystemLimits.raiseOpenFiles()
        let endpoints = try self.common.endpoints(defaultPubPath: "/broadcast")
        let count = try self.storm.countSource(common: self.common)
        let harness = Harness(endpoints: endpoints, threads: self.common.benchThreads)
        let n = self.subscribers
        var notes: [String] = []

        let probe = try Probe(
            common: self.common, storm: self.storm,
            duration: self.common.settle + self.baseline + self.spread + self.registerTimeout + 10
        )
        try await probe.start(log: self.common.log)
        let pollLoop = probe.harness.loops[0].loop
        try await Task.sleep(nanoseconds: UInt64(self.common.settle * 1e9))
        _ = await probe.harness.takeLatency()
        _ = await probe.publishers.takeWindow()
        let baselineStart = monotonicNanos()
        try await Task.sleep(nanoseconds: UInt64(self.baseline * 1e9))
        var windows = [await probe.takeWindow(name: "before", since: baselineStart)]
        let countBefore = await count.read(on: pollLoop)
        if countBefore == nil { notes.append("could not read the count from \(count)") }

        // The storm: connects in 10 ms steps, each step's share at once; nothing waits for answers.
        let steps = max(1, min(n, Int((self.spread * 100).rounded())))
        let lastStarted = LatestTime()
        let t0 = monotonicNanos()
        var futures: [EventLoopFuture<Void>] = []
        futures.reserveCapacity(n)
        for step in 0..<steps {
            let at = t0 + UInt64(Double(step) * self.spread / Double(steps) * 1e9)
            let now = monotonicNanos()
            if at > now { try await Task.sleep(nanoseconds: at - now) }
            for index in (step * n / steps)..<((step + 1) * n / steps) {
                let future = harness.connectSubscriber(index: index, reads: true, receiveBuffer: nil)
                future.whenSuccess { _ in lastStarted.nanos.max(monotonicNanos(), ordering: .relaxed) }
                futures.append(future)
            }
        }
        let issued = monotonicNanos()
        let target = (countBefore ?? 1) + n
        async let registered = count.poll(on: pollLoop, timeout: self.registerTimeout) { $0 >= target }
        // The probe's window "during": the spread itself; then the same length again after it.
        let duringEnd = t0 + UInt64(self.spread * 1e9)
        if duringEnd > monotonicNanos() { try await Task.sleep(nanoseconds: duringEnd - monotonicNanos()) }
        windows.append(await probe.takeWindow(name: "during", since: t0))
        let nextStart = monotonicNanos()
        try await Task.sleep(nanoseconds: UInt64(self.spread * 1e9))
        windows.append(await probe.takeWindow(name: "next", since: nextStart))

        var connected = 0
        var byKind: [String: Int] = [:]
        var examples: [String] = []
        for future in futures {
            do {
                try await future.get()
                connected += 1
            } catch {
                let kind = Self.kind(of: error)
                byKind[kind, default: 0] += 1
                if examples.count < 5 && byKind[kind] == 1 { examples.append("\(error)") }
            }
        }
        let (heldAt, countAfter, readFailures) = await registered
        let closedLater = await harness.closedSubscribers()
        await probe.shutdown()
        await harness.shutdown()

        var report = StormReport(
            storm: "connect", target: endpoints.map(\.url).joined(separator: ","), subscribers: n, subscribersConnected: connected,
            connectFailures: examples.isEmpty ? nil : examples, benchThreads: harness.loops.count
        )
        report.countURL = count.description
        report.probe = windows
        report.countBefore = countBefore
        report.countAfter = countAfter
        report.countReadFailures = readFailures > 0 ? readFailures : nil
        report.connectSpreadSeconds = Double(issued - t0) / 1e9
        report.connectFailuresByKind = byKind.isEmpty ? nil : byKind
        let last = lastStarted.nanos.load(ordering: .relaxed)
        report.benchAllStartedMs = connected == n && last > t0 ? Double(last - t0) / 1e6 : nil
        report.brokerAllRegisteredMs = heldAt.map { Double($0 - t0) / 1e6 }
        if heldAt == nil { notes.append("the count had not reached \(target) after \(self.registerTimeout) s") }
        if connected < n { notes.append("\(n - connected) subscribers never started their stream") }
        let closedAfterStart = closedLater - (n - connected)
        if closedAfterStart > 0 { notes.append("\(closedAfterStart) started streams were closed by the broker before the end") }
        report.notes = notes.isEmpty ? nil : notes
        try self.common.emit(report)
    }

    /// A short name for why a subscriber did not start: `status 503`, `closed`, `reset`, `refused`, `timeout`, …
    static func kind(of error: any Error) -> String {
        if let bench = error as? BenchError {
            switch bench {
            case .subscribeRefused(let status): return "status \(status)"
            case .closedBeforeReady: return "closed"
            case .timeout: return "timeout"
            case .malformedResponse: return "malformed"
            default: return "other"
            }
        }
        let text = "\(error)".lowercased()
        if text.contains("reset") { return "reset" }
        if text.contains("refused") { return "refused" }
        if text.contains("timeout") || text.contains("timed out") { return "connect timeout" }
        return "connect error"
    }
}

/// The latest of some monotonic times, from any thread.
final class LatestTime: Sendable {
    let nanos = Atomic<UInt64>(0)
}
