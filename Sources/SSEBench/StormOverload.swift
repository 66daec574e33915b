import ArgumentParser
import Foundation
import NIOCore

/// Producers faster than the fan-out: P keep-alive publishers, each with D requests in flight, for
/// T seconds, to R reading subscribers. Does the broker keep its readers and its memory, and is
/// every event it accepted delivered to every reader?
struct StormOverload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overload",
        abstract: "P pipelining publishers outrun the fan-out to R readers for T seconds: answers, completeness, readers cut, RSS."
    )
    @OptionGroup var common: CommonOptions

    @Option(name: [.customShort("n"), .customLong("readers")], help: "Reading subscribers.")
    var readers = 10_000

    @Option(help: "Keep-alive publisher connections.")
    var publishers = 32

    @Option(help: "Requests each publisher keeps in flight (HTTP/1.1 pipelining).")
    var depth = 16

    @Option(help: "Seconds of publishing.")
    var duration = 10.0

    @Option(help: "Bytes of event data (send time, sequence, publisher, padding).")
    var size = 64

    @Option(name: .customLong("max-events"), help: "Stop publishing after this many events in all.")
    var maxEvents = 2_000_000

    @Option(name: .customLong("answer-timeout"), help: "Seconds to wait after --duration for the requests in flight to be answered.")
    var answerTimeout = 30.0

    @Option(name: .customLong("drain-timeout"), help: "Seconds to wait after publishing for accepted events to arrive.")
    var drainTimeout = 60.0

    @Option(name: .customLong("drain-quiet"), help: "Stop waiting once nothing arrived for this many seconds.")
    var drainQuiet = 5.0

    func validate() throws {
        try self.common.validateCommon()
        guard (1...50_000).contains(self.readers) else { throw ValidationError("--readers must be 1…50000") }
        guard (1...256).contains(self.publishers) else { throw ValidationError("--publishers must be 1…256") }
        guard (1...256).contains(self.depth) else { throw ValidationError("--depth must be 1…256") }
        try requireSeconds(self.duration, "--duration", atMost: 120)
        guard self.size >= 1, self.size <= 1 << 16 else { throw ValidationError("--size must be 1…65536") }
        guard (1...20_000_000).contains(self.maxEvents) else { throw ValidationError("--max-events must be 1…20000000") }
        guard self.answerTimeout >= 0, self.answerTimeout <= 120 else { throw ValidationError("--answer-timeout must be 0…120") }
        guard self.drainTimeout >= 0, self.drainTimeout <= 120 else { throw ValidationError("--drain-timeout must be 0…120") }
        try requireSeconds(self.drainQuiet, "--drain-quiet", atMost: 60)
    }

    func run() async throws {
        SystemLimits.raiseOpenFiles()
        let endpoints = try self.common.endpoints(defaultPubPath: "/broadcast")
        let harness = Harness(endpoints: endpoints, threads: self.common.benchThreads)
        let pids = self.common.brokerPIDs
        var notes: [String] = []
        let limit = self.maxEvents
        for state in harness.loops {
            try await state.loop.submit { state.sequenceCounts = SequenceCounts(limit: limit) }.get()
        }

        let rssBeforeConnect = pids.isEmpty ? nil : ProcessGroupSample.rssBytes(pids: pids)
        let (connected, failures) = await harness.connectSubscribers(
            count: self.readers, batch: self.common.connectBatch, log: self.common.log
        )
        let plan = PublishPlan(maxEvents: self.maxEvents, duration: self.duration, rate: 0)
        let publishers = PipelinedPublishers(loops: harness.loops.map(\.loop))
        _ = try await publishers.connect(
            count: self.publishers, endpoint: endpoints[0], targetIndex: nil, depth: self.depth, size: self.size, plan: plan
        )
        try await Task.sleep(nanoseconds: UInt64(self.common.settle * 1e9))

        let before = ProcessGroupSample.read(pids: pids)
        let sampler = pids.isEmpty ? nil : RSSSampler(pids: pids)
        let benchBefore = ProcessSample.cpuSeconds(pid: getpid()) ?? 0
        let t0 = monotonicNanos()
        publishers.start(plan)
        let count = self.publishers
        let answered = await harness.wait(timeout: self.duration + self.answerTimeout) {
            publishers.tally.finished.load(ordering: .relaxed) >= count
        }
        if !answered {
            notes.append("requests still unanswered \(self.answerTimeout) s after publishing ended: closed")
            await publishers.stop(force: true)
            await harness.wait(timeout: 5) { publishers.tally.finished.load(ordering: .relaxed) >= count }
        }
        let t1 = monotonicNanos()
        let totals = await publishers.totals()
        let accepted = totals.acceptedSeqs.count
        let drained = await harness.drain(expected: accepted * connected, timeout: self.drainTimeout, quiet: self.drainQuiet)
        let after = ProcessGroupSample.read(pids: pids)
        let peak = sampler?.stop()
        let benchAfter = ProcessSample.cpuSeconds(pid: getpid()) ?? 0
        let answers = await publishers.takeWindow().answers
        let collected = await harness.collect(targets: 1)
        var receipts: [Int] = []
        for state in harness.loops {
            let counts = (try? await state.loop.submit { state.sequenceCounts?.counts ?? [] }.get()) ?? []
            if counts.count > receipts.count { receipts += repeatElement(0, count: counts.count - receipts.count) }
            for (seq, value) in counts.enumerated() { receipts[seq] += Int(value) }
        }
        await harness.shutdown()

        // Receipts of accepted events (at most one per reader each), of refused ones (a broker that
        // refused an event must not deliver it) and of unanswered ones (either is fine).
        enum Answer { case none, accepted, refused, unanswered }
        var answer = [Answer](repeating: .none, count: receipts.count)
        for (seqs, kind) in [(totals.acceptedSeqs, Answer.accepted), (totals.refusedSeqs, .refused), (totals.unansweredSeqs, .unanswered)] {
            for seq in seqs where seq < answer.count { answer[seq] = kind }
        }
        var delivered = 0
        var refusedReceived = 0
        var unansweredReceived = 0
        for (seq, value) in receipts.enumerated() {
            switch answer[seq] {
            case .accepted: delivered += min(value, connected)
            case .refused: refusedReceived += value
            case .unanswered: unansweredReceived += value
            case .none: refusedReceived += value  // never sent: cannot happen either
            }
        }
        let results = collected.subscribers
        let expected = accepted * connected

        var report = StormReport(
            storm: "overload", target: endpoints.map(\.url).joined(separator: ","), subscribers: self.readers,
            subscribersConnected: connected, connectFailures: failures.isEmpty ? nil : failures, benchThreads: harness.loops.count
        )
        report.readers = self.readers
        report.publishers = self.publishers
        report.pipelineDepth = self.depth
        report.eventBytes = self.size
        report.durationSeconds = Double(t1 - t0) / 1e9
        report.sent = publishers.tally.sent.load(ordering: .relaxed)
        report.statuses = Dictionary(uniqueKeysWithValues: totals.statuses.map { ("\($0.key)", $0.value) })
        report.accepted = accepted
        report.refused503 = totals.statuses[503] ?? 0
        report.unanswered = totals.statuses[0] ?? 0
        report.publishersClosedByBroker = publishers.tally.closedByServer.load(ordering: .relaxed)
        let lastAnswer = publishers.tally.lastAnswer.load(ordering: .relaxed)
        report.lastAnswerSeconds = lastAnswer > t0 ? Double(lastAnswer - t0) / 1e9 : nil
        report.otherStatus = totals.statuses.filter { !(200..<300).contains($0.key) && $0.key != 503 && $0.key != 0 }.values.reduce(0, +)
        report.acceptedPerSecond = Double(accepted) / self.duration
        report.expected = expected
        report.delivered = delivered
        report.completeness = expected > 0 ? Double(delivered) / Double(expected) : nil
        if unansweredReceived == 0 {
            report.completeReaders = results.filter { $0.received == accepted && $0.fingerprint == totals.acceptedFingerprint }.count
        } else {
            notes.append("\(unansweredReceived) receipts of unanswered events: readers not checked one by one")
        }
        report.readersDisconnected = results.filter(\.closed).count
        report.refusedReceived = refusedReceived
        report.unansweredReceived = unansweredReceived
        report.duplicateIDs = results.reduce(0) { $0 + $1.duplicateIDs }
        report.idsOutOfOrder = results.reduce(0) { $0 + $1.idsOutOfOrder }
        report.publisherOrderViolations = results.reduce(0) { $0 + $1.publisherOrderViolations }
        report.drained = drained
        report.latency = Report.Latency(collected.latency)
        report.publishAnswer = Report.Latency(answers)
        report.benchCPUSeconds = benchAfter - benchBefore
        if let before, let after {
            report.brokerPID = pids.first
            report.brokerCPUSeconds = after.cpuSeconds(since: before, pids: pids).compactMap { $0 }.reduce(0, +)
            report.brokerRSSBeforeConnectBytes = rssBeforeConnect
            report.brokerRSSBeforeBytes = before.rssBytes
            report.brokerRSSAfterBytes = after.rssBytes
            report.brokerRSSPeakBytes = peak
        } else if !pids.isEmpty {
            notes.append("broker process not readable in /proc")
        }
        let malformed = publishers.tally.malformed.load(ordering: .relaxed)
        if malformed > 0 { notes.append("\(malformed) publishers got a response they could not read and closed") }
        if accepted >= self.maxEvents - self.publishers * self.depth { notes.append("--max-events bounded the run") }
        if !drained { notes.append("not every accepted event reached every open reader before the drain stopped") }
        report.notes = notes.isEmpty ? nil : notes
        try self.common.emit(report)
    }
}
