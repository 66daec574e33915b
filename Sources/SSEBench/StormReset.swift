import ArgumentParser
import Foundation
import NIOCore

/// N idle subscribers reset at once (RST, not FIN): does the broker keep serving the probe, and how
/// soon does it notice the connections are gone?
struct StormReset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "N idle subscribers reset at once (SO_LINGER 0, then close); probe latency before and after, and when the broker noticed."
    )
    @OptionGroup var common: CommonOptions
    @OptionGroup var storm: StormOptions

    @Option(name: [.customShort("n"), .long], help: "Idle subscribers to reset.")
    var subscribers = 10_000

    @Option(help: "Seconds of probe baseline before the reset.")
    var baseline = 2.0

    @Option(help: "Seconds after the reset the probe window covers.")
    var window = 2.0

    @Option(name: .customLong("notice-timeout"), help: "Seconds to wait for the broker's count to drop.")
    var noticeTimeout = 10.0

    func validate() throws {
        try self.common.validateCommon()
        try self.storm.validateStorm()
        guard (1...50_000).contains(self.subscribers) else { throw ValidationError("--subscribers must be 1…50000") }
        try requireSeconds(self.baseline, "--baseline", atMost: 60)
        try requireSeconds(self.window, "--window", atMost: 60)
        try requireSeconds(self.noticeTimeout, "--notice-timeout", atMost: 120)
    }

    func run() async throws {
        SystemLimits.raiseOpenFiles()
        let endpoints = try self.common.endpoints(defaultPubPath: "/broadcast")
        let count = try self.storm.countSource(common: self.common)
        let harness = Harness(endpoints: endpoints, threads: self.common.benchThreads)
        var notes: [String] = []

        let (connected, failures) = await harness.connectSubscribers(
            count: self.subscribers, batch: self.common.connectBatch, log: self.common.log
        )
        let probe = try Probe(
            common: self.common, storm: self.storm,
            duration: self.common.settle + self.baseline + max(self.window, self.noticeTimeout) + 10
        )
        try await probe.start(log: self.common.log)
        let pollLoop = probe.harness.loops[0].loop
        try await Task.sleep(nanoseconds: UInt64(self.common.settle * 1e9))

        // Baseline: the probe's window before the reset, and the count the broker reports.
        _ = await probe.harness.takeLatency()
        _ = await probe.publishers.takeWindow()
        let baselineStart = monotonicNanos()
        try await Task.sleep(nanoseconds: UInt64(self.baseline * 1e9))
        var windows = [await probe.takeWindow(name: "before", since: baselineStart)]
        let countBefore = await count.read(on: pollLoop)
        if countBefore == nil { notes.append("could not read the count from \(count)") }

        // The storm: every connection reset, all loops at once.
        let resetStart = monotonicNanos()
        let reset = await harness.resetSubscribers()
        let resetDone = monotonicNanos()
        if reset < connected { notes.append("\(connected - reset) subscribers were closed before the reset") }
        let target = (countBefore ?? (connected + 1)) - reset
        async let noticed = count.poll(on: pollLoop, timeout: self.noticeTimeout) { $0 <= target }
        let windowEnd = resetStart + UInt64(self.window * 1e9)
        if windowEnd > monotonicNanos() { try await Task.sleep(nanoseconds: windowEnd - monotonicNanos()) }
        windows.append(await probe.takeWindow(name: "after reset", since: resetStart))
        let (heldAt, countAfter, readFailures) = await noticed
        await probe.shutdown()
        await harness.shutdown()

        var report = StormReport(
            storm: "reset", target: endpoints.map(\.url).joined(separator: ","), subscribers: self.subscribers,
            subscribersConnected: connected, connectFailures: failures.isEmpty ? nil : failures, benchThreads: harness.loops.count
        )
        report.countURL = count.description
        report.probe = windows
        report.countBefore = countBefore
        report.countAfter = countAfter
        report.countReadFailures = readFailures > 0 ? readFailures : nil
        report.reset = reset
        report.noticedMs = heldAt.map { Double($0 - resetStart) / 1e6 }
        report.noticedWithin1s = heldAt.map { $0 - resetStart <= 1_000_000_000 } ?? false
        notes.append(String(format: "the bench took %.0f ms to reset them all", Double(resetDone - resetStart) / 1e6))
        if heldAt == nil { notes.append("the count had not dropped to \(target) after \(self.noticeTimeout) s") }
        report.notes = notes
        try self.common.emit(report)
    }
}
