import ArgumentParser
import Foundation
import NIOCore
import SSEBrokerServer

/// `sse-bench`: a load generator for SSE brokers on this machine (this one, or nchan for comparison).
@main
struct SSEBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sse-bench",
        abstract: "Load an SSE broker on loopback and measure delivery, latency and the broker's CPU and memory.",
        discussion: """
            Run the broker in another process and pass its pid (--pid) for CPU and RSS. Paths are
            templates: {id} is a subscriber id (b0, b1, …). This broker: --sub-path '/connect?id={id}'
            --pub-path /broadcast (targeted: '/broadcast?id={id}'). nchan: --sub-path /sub/all
            --pub-path /pub/all (targeted: /sub/{id} and /pub/{id}).
            """,
        subcommands: [Fanout.self, Targeted.self, Idle.self, Slow.self]
    )
}

struct CommonOptions: ParsableArguments {
    @Option(help: "Broker address; loopback only.")
    var host = "127.0.0.1"

    @Option(help: "Broker port.")
    var port = 8080

    @Option(help: "Broker process id: its CPU time and RSS are read from /proc.")
    var pid: Int32?

    @Option(name: .customLong("sub-path"), help: "Subscribe path template ({id} = subscriber id).")
    var subPath = "/connect?id={id}"

    @Option(name: .customLong("pub-path"), help: "Publish path template ({id} = target id, targeted only).")
    var pubPath: String?

    @Option(name: .customLong("id-prefix"), help: "Subscriber ids are this prefix and an index.")
    var idPrefix = "b"

    @Option(help: "Event loop threads of the bench (default: the CPUs it may run on).")
    var threads: Int?

    @Option(name: .customLong("connect-batch"), help: "Subscribers connected at once (then wait until all started).")
    var connectBatch = 250

    @Option(name: .customLong("settle"), help: "Seconds to wait after connecting, before measuring.")
    var settle = 0.5

    @Flag(help: "Print the report as one line of JSON.")
    var json = false

    func endpoint(defaultPubPath: String) throws -> Endpoint {
        Endpoint(
            host: try Endpoint.loopbackHost(self.host),
            port: self.port,
            subPath: self.subPath,
            pubPath: self.pubPath ?? defaultPubPath,
            idPrefix: self.idPrefix
        )
    }

    var benchThreads: Int { self.threads ?? BrokerServer.defaultLoopCount }

    func validateCommon() throws {
        guard (1...65535).contains(self.port) else { throw ValidationError("--port must be 1…65535") }
        _ = try Endpoint.loopbackHost(self.host)
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard self.connectBatch >= 1 else { throw ValidationError("--connect-batch must be at least 1") }
    }

    func log(_ message: String) {
        FileHandle.standardError.write(Data("sse-bench: \(message)\n".utf8))
    }

    func emit(_ report: Report) throws {
        if self.json { try report.printJSON() } else { report.printTable() }
    }
}

struct PublishOptions: ParsableArguments {
    @Option(name: [.customShort("n"), .long], help: "Subscribers.")
    var subscribers = 1000

    @Option(name: .customLong("publishers"), help: "Keep-alive publisher connections (one request in flight each).")
    var publishers = 1

    @Option(help: "Stop after this many events (0: only --duration bounds the run).")
    var events = 0

    @Option(help: "Stop publishing after this many seconds.")
    var duration = 5.0

    @Option(help: "Events per second over all publishers (0: as fast as the broker answers).")
    var rate = 0.0

    @Option(help: "Bytes of event data (send time, sequence, padding).")
    var size = 64

    @Option(name: .customLong("drain-timeout"), help: "Seconds to wait after publishing for every event to arrive.")
    var drainTimeout = 10.0

    @Option(name: .customLong("drain-quiet"), help: "Stop waiting once nothing arrived for this many seconds.")
    var drainQuiet = 2.0

    func validate() throws {
        guard self.subscribers >= 1, self.subscribers <= 50_000 else { throw ValidationError("--subscribers must be 1…50000") }
        guard self.publishers >= 1, self.publishers <= 64 else { throw ValidationError("--publishers must be 1…64") }
        guard self.events >= 0 else { throw ValidationError("--events must not be negative") }
        guard self.duration > 0, self.duration <= 600 else { throw ValidationError("--duration must be in (0, 600] seconds") }
        guard self.rate >= 0 else { throw ValidationError("--rate must not be negative") }
        guard self.size >= 1, self.size <= 1 << 20 else { throw ValidationError("--size must be 1…1048576") }
        guard self.drainTimeout >= 0, self.drainTimeout <= 600 else { throw ValidationError("--drain-timeout must be 0…600") }
    }
}

enum DeliveryKind: Sendable {
    case fanout, targeted, slow(nonReaders: Int, receiveBuffer: Int)
}

/// The common run of fanout, targeted and slow: connect, publish, drain, measure.
func runDelivery(kind: DeliveryKind, name: String, common: CommonOptions, options: PublishOptions, defaultPubPath: String) async throws
    -> Report
{
    SystemLimits.raiseOpenFiles()
    let endpoint = try common.endpoint(defaultPubPath: defaultPubPath)
    let harness = Harness(endpoint: endpoint, threads: common.benchThreads)
    let n = options.subscribers
    var notes: [String] = []

    var nonReaderCount = 0
    var receiveBuffer: Int?
    var readsFor: @Sendable (Int) -> Bool = { _ in true }
    if case .slow(let k, let buffer) = kind {
        nonReaderCount = min(k, n)
        receiveBuffer = buffer
        // Spread the non-readers over the index range (and so over both sides' loops).
        let stride = max(1, n / max(1, nonReaderCount))
        let count = nonReaderCount
        readsFor = { index in !(index % stride == 0 && index / stride < count) }
    }
    let rssBeforeConnect = common.pid.flatMap { ProcessSample.rssBytes(pid: $0) }
    let (connected, failures) = await harness.connectSubscribers(
        count: n, batch: common.connectBatch, reads: readsFor, receiveBuffer: receiveBuffer, log: common.log
    )
    let targeted: Bool = if case .targeted = kind { true } else { false }
    let heads = targeted
        ? (0..<n).map { endpoint.publishHead(targetIndex: $0, size: options.size) }
        : [endpoint.publishHead(targetIndex: nil, size: options.size)]
    let plan = PublishPlan(
        maxEvents: options.events > 0 ? options.events : Int.max, duration: options.duration, rate: options.rate
    )
    let finished = try await harness.connectPublishers(count: options.publishers, heads: heads, size: options.size, plan: plan)
    try await Task.sleep(nanoseconds: UInt64(common.settle * 1e9))

    // Measured window: from the first publish to the last delivery (or the drain timeout).
    let brokerBefore = common.pid.flatMap { ProcessSample.read(pid: $0) }
    let benchBefore = ProcessSample.cpuSeconds(pid: getpid()) ?? 0
    let sampler = common.pid.map { RSSSampler(pid: $0) }
    let t0 = monotonicNanos()
    harness.startPublishing(plan)
    let allFinished = await harness.wait(timeout: options.duration + 30) {
        harness.counters.publishersFinished.load(ordering: .relaxed) >= finished.count
    }
    if !allFinished { notes.append("publishers did not finish within duration + 30 s") }
    let t1 = monotonicNanos()
    let published = harness.counters.published.load(ordering: .relaxed)
    let readers = n - nonReaderCount
    let expected: Int
    switch kind {
    case .fanout: expected = published * connected
    case .targeted: expected = published
    case .slow: expected = published * max(0, connected - nonReaderCount)
    }
    let drained = await harness.drain(expected: expected, timeout: options.drainTimeout, quiet: options.drainQuiet)
    let brokerAfter = common.pid.flatMap { ProcessSample.read(pid: $0) }
    let peak = sampler?.stop()
    let benchAfter = ProcessSample.cpuSeconds(pid: getpid()) ?? 0
    let delivered = harness.counters.delivered.load(ordering: .relaxed)
    let lastDelivery = harness.counters.lastDelivery.load(ordering: .relaxed)
    let window = Double(max(t1, lastDelivery, monotonicNanos()) - t0) / 1e9

    // The slow workload: now let the non-readers read, to see which the broker closed.
    var nonReadersClosed: Int?
    if nonReaderCount > 0 {
        harness.startReadingNonReaders()
        // A closed connection shows once its queued bytes are read; an open one never does (bounded wait).
        let deadline = monotonicNanos() + 5_000_000_000
        var closed = await harness.closedNonReaders()
        while closed < nonReaderCount && monotonicNanos() < deadline {
            try? await Task.sleep(nanoseconds: 20_000_000)
            closed = await harness.closedNonReaders()
        }
        nonReadersClosed = closed
    }

    let (histogram, results, perTarget) = await harness.collect(targets: heads.count)
    await harness.shutdown()

    var report = Report(
        workload: name,
        target: endpoint.url,
        subscribers: n,
        subscribersConnected: connected,
        connectFailures: failures.isEmpty ? nil : failures,
        publishers: options.publishers,
        eventBytes: options.size,
        rate: options.rate,
        benchThreads: harness.loops.count
    )
    report.durationSeconds = Double(t1 - t0) / 1e9
    report.published = published
    report.publishFailures = harness.counters.publishFailures.load(ordering: .relaxed)
    report.publishedPerSecond = Double(published) / max(1e-9, Double(t1 - t0) / 1e9)
    report.expected = expected
    report.drained = drained
    report.latency = Report.Latency(histogram)
    report.benchCPUSeconds = benchAfter - benchBefore

    let healthyResults = results.filter(\.reads)
    let healthyDelivered = healthyResults.reduce(0) { $0 + $1.received }
    let measuredDelivered = nonReaderCount > 0 ? healthyDelivered : delivered
    report.delivered = measuredDelivered
    let deliveryWindow = Double(max(lastDelivery, t0 + 1) - t0) / 1e9
    report.deliveredPerSecond = Double(measuredDelivered) / deliveryWindow
    report.completeness = expected > 0 ? Double(measuredDelivered) / Double(expected) : (published == 0 ? 0 : 1)
    switch kind {
    case .targeted:
        report.completeSubscribers = results.filter { $0.index < perTarget.count && $0.received == perTarget[$0.index] }.count
    default:
        report.completeSubscribers = healthyResults.filter { $0.received == published }.count
    }
    report.subscribersClosed = results.filter(\.closed).count - (nonReadersClosed ?? 0)

    if let pid = common.pid, let brokerBefore, let brokerAfter {
        let cpu = brokerAfter.cpuSeconds - brokerBefore.cpuSeconds
        report.brokerPID = pid
        report.brokerCPUSeconds = cpu
        report.brokerCPUPercent = 100 * cpu / max(window, 1e-9)
        report.brokerCPUMicrosPerEvent = measuredDelivered > 0 ? cpu * 1e6 / Double(measuredDelivered) : nil
        report.brokerRSSBeforeBytes = rssBeforeConnect
        report.brokerRSSAfterBytes = brokerAfter.rssBytes
        report.brokerRSSPeakBytes = peak
        report.brokerRSSGrowthBytes = peak.map { $0 - brokerBefore.rssBytes }
    } else if common.pid != nil {
        notes.append("broker process not readable in /proc")
    }
    if nonReaderCount > 0 {
        report.nonReaders = nonReaderCount
        report.nonReadersClosed = nonReadersClosed
        report.healthy = readers
        report.healthyComplete = healthyResults.filter { $0.received == published }.count
        report.healthyCompleteness = report.completeness
        report.healthyClosed = healthyResults.filter(\.closed).count
    }
    if !drained { notes.append("not every event arrived before the drain timeout") }
    report.notes = notes.isEmpty ? nil : notes
    return report
}

struct Fanout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "N subscribers of one stream; P publishers broadcast to all of them."
    )
    @OptionGroup var common: CommonOptions
    @OptionGroup var options: PublishOptions

    func validate() throws { try self.common.validateCommon() }

    func run() async throws {
        let report = try await runDelivery(
            kind: .fanout, name: "fanout", common: self.common, options: self.options, defaultPubPath: "/broadcast"
        )
        try self.common.emit(report)
    }
}

struct Targeted: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "N subscribers; each event goes to one of them, chosen at random (pub path with {id})."
    )
    @OptionGroup var common: CommonOptions
    @OptionGroup var options: PublishOptions

    func validate() throws { try self.common.validateCommon() }

    func run() async throws {
        let report = try await runDelivery(
            kind: .targeted, name: "targeted", common: self.common, options: self.options,
            defaultPubPath: "/broadcast?id={id}"
        )
        try self.common.emit(report)
    }
}

struct Slow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "N subscribers of which K never read; large events at a fixed rate. Does the broker protect the rest, and itself?"
    )
    @OptionGroup var common: CommonOptions
    @OptionGroup var options: PublishOptions

    @Option(name: [.customShort("k"), .customLong("non-readers")], help: "Subscribers that stop reading once their stream started.")
    var nonReaders = 10

    @Option(name: .customLong("rcvbuf"), help: "SO_RCVBUF of the non-readers, in bytes.")
    var receiveBuffer = 4096

    func validate() throws {
        try self.common.validateCommon()
        guard self.nonReaders >= 1, self.nonReaders <= self.options.subscribers else {
            throw ValidationError("--non-readers must be 1…subscribers")
        }
    }

    func run() async throws {
        let report = try await runDelivery(
            kind: .slow(nonReaders: self.nonReaders, receiveBuffer: self.receiveBuffer),
            name: "slow", common: self.common, options: self.options, defaultPubPath: "/broadcast"
        )
        try self.common.emit(report)
    }
}

struct Idle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "N subscribers held open; the broker's RSS per connection."
    )
    @OptionGroup var common: CommonOptions

    @Option(name: [.customShort("n"), .long], help: "Connections.")
    var subscribers = 10_000

    @Option(help: "Seconds to hold the connections before measuring.")
    var hold = 3.0

    func validate() throws {
        try self.common.validateCommon()
        guard self.subscribers >= 1, self.subscribers <= 50_000 else { throw ValidationError("--subscribers must be 1…50000") }
        guard self.hold >= 0, self.hold <= 600 else { throw ValidationError("--hold must be 0…600 seconds") }
    }

    func run() async throws {
        SystemLimits.raiseOpenFiles()
        let endpoint = try self.common.endpoint(defaultPubPath: "/broadcast")
        let harness = Harness(endpoint: endpoint, threads: self.common.benchThreads)
        let before = self.common.pid.flatMap { ProcessSample.read(pid: $0) }
        let (connected, failures) = await harness.connectSubscribers(
            count: self.subscribers, batch: self.common.connectBatch, log: self.common.log
        )
        try await Task.sleep(nanoseconds: UInt64(self.hold * 1e9))
        let after = self.common.pid.flatMap { ProcessSample.read(pid: $0) }
        let (_, results, _) = await harness.collect(targets: 1)
        await harness.shutdown()

        var report = Report(
            workload: "idle", target: endpoint.url, subscribers: self.subscribers, subscribersConnected: connected,
            connectFailures: failures.isEmpty ? nil : failures, benchThreads: harness.loops.count
        )
        report.subscribersClosed = results.filter(\.closed).count
        if let pid = self.common.pid, let before, let after {
            report.brokerPID = pid
            report.brokerCPUSeconds = after.cpuSeconds - before.cpuSeconds
            report.brokerRSSBeforeBytes = before.rssBytes
            report.brokerRSSAfterBytes = after.rssBytes
            report.brokerRSSGrowthBytes = after.rssBytes - before.rssBytes
            report.brokerRSSPerConnectionBytes = connected > 0 ? Double(after.rssBytes - before.rssBytes) / Double(connected) : nil
        }
        try self.common.emit(report)
    }
}
