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
            Run the broker in another process and pass its pid (--pid) for CPU and RSS. Paths are templates: {id} is a subscriber id (b0, b1, …), {topic} a topic (t0, t1, …). This broker: --sub-path '/connect?id={id}' --pub-path /broadcast (targeted: '/broadcast?id={id}'; topics: '/connect?id={id}&topic={topic}' and '/broadcast?type={topic}'). nchan: --sub-path /sub/all --pub-path /pub/all (targeted: /sub/{id} and /pub/{id}; topics: /sub/{topic} and /pub/{topic}).

            Several nodes of one cluster: --url http://127.0.0.1:8081,http://127.0.0.1:8082 (or --url repeated) spreads subscribers round-robin over them; publishers post to the first, or round-robin to all with --publish-to all. Pass every node's pid (--pid repeated) and other processes to account for, such as the database's, with --aux-pid.
            """,
        subcommands: [Fanout.self, Targeted.self, Topics.self, Idle.self, Slow.self, Storm.self]
    )
}

struct CommonOptions: ParsableArguments {
    @Option(help: "Broker address; loopback only.")
    var host = "127.0.0.1"

    @Option(help: "Broker port.")
    var port = 8080

    @Option(
        name: .customLong("url"),
        help: "Broker base URLs, http://127.0.0.1:PORT, comma-separated or repeated; overrides --host and --port. Subscribers are spread round-robin."
    )
    var urls: [String] = []

    @Option(name: .customLong("publish-to"), help: "Publishers post to the 'first' broker URL, or round-robin to 'all'.")
    var publishTo: PublishTarget = .first

    @Option(help: "Broker process ids (repeatable, or comma-separated): CPU time and RSS are read from /proc and summed.")
    var pid: [String] = []

    @Option(name: .customLong("aux-pid"), help: "Other process ids whose CPU time is reported apart (e.g. the database's); repeatable or comma-separated.")
    var auxPID: [String] = []

    @Option(name: .customLong("sub-path"), help: "Subscribe path template ({id} = subscriber id, {topic} = its topic).")
    var subPath: String?

    @Option(name: .customLong("pub-path"), help: "Publish path template ({id} = target id, targeted only; {topic} = topic, topics only).")
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

    @Flag(help: "Every connection over TLS (https; the broker's certificate is not verified).")
    var tls = false

    @Option(
        name: .customLong("h2-streams"),
        help: "Subscribers over HTTP/2, this many streams per connection (h2 by ALPN with --tls, prior knowledge without); 0: HTTP/1.1."
    )
    var http2Streams = 0

    /// TLS and HTTP/2 as asked.
    func transport() throws -> BenchTransport {
        try BenchTransport(tls: self.tls, http2StreamsPerConnection: self.http2Streams > 0 ? self.http2Streams : nil)
    }

    /// One endpoint per broker URL (`--url`), or the one of `--host` and `--port`.
    func endpoints(defaultPubPath: String, defaultSubPath: String = "/connect?id={id}", topics: Int = 0) throws -> [Endpoint] {
        let addresses: [(String, Int)] =
            try self.urls.isEmpty
            ? [(Endpoint.loopbackHost(self.host), self.port)]
            : self.urls.flatMap { $0.split(separator: ",") }.map { try Endpoint.parseURL(String($0)) }
        return addresses.map { host, port in
            Endpoint(
                host: host, port: port, subPath: self.subPath ?? defaultSubPath, pubPath: self.pubPath ?? defaultPubPath,
                idPrefix: self.idPrefix, topics: topics
            )
        }
    }

    var brokerPIDs: [Int32] { Self.pids(self.pid) }
    var auxPIDs: [Int32] { Self.pids(self.auxPID) }

    private static func pids(_ values: [String]) -> [Int32] {
        values.flatMap { $0.split(separator: ",") }.compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
    }

    var benchThreads: Int { self.threads ?? BrokerServer.defaultLoopCount }

    func validateCommon() throws {
        guard (1...65535).contains(self.port) else { throw ValidationError("--port must be 1…65535") }
        _ = try Endpoint.loopbackHost(self.host)
        for url in self.urls.flatMap({ $0.split(separator: ",") }) { _ = try Endpoint.parseURL(String(url)) }
        for value in (self.pid + self.auxPID).flatMap({ $0.split(separator: ",") }) where Int32(value.trimmingCharacters(in: .whitespaces)) == nil {
            throw ValidationError("not a process id: \(value)")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard self.connectBatch >= 1 else { throw ValidationError("--connect-batch must be at least 1") }
        guard self.http2Streams >= 0 else { throw ValidationError("--h2-streams must be 0 (HTTP/1.1) or more") }
    }

    func log(_ message: String) {
        FileHandle.standardError.write(Data("sse-bench: \(message)\n".utf8))
    }

    func emit(_ report: Report) throws {
        if self.json { try report.printJSON() } else { report.printTable() }
    }
}

enum PublishTarget: String, ExpressibleByArgument, Sendable {
    case first, all
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
        try requireSeconds(self.duration, "--duration", atMost: 600)
        guard self.rate >= 0 else { throw ValidationError("--rate must not be negative") }
        guard self.size >= 1, self.size <= 1 << 20 else { throw ValidationError("--size must be 1…1048576") }
        guard self.drainTimeout >= 0, self.drainTimeout <= 600 else { throw ValidationError("--drain-timeout must be 0…600") }
    }
}

enum DeliveryKind: Sendable {
    case fanout, targeted, slow(nonReaders: Int, receiveBuffer: Int)
    /// Subscriber `i` on topic `i % count`; each event to one topic at random.
    case topics(count: Int)
}

/// The common run of fanout, targeted and slow: connect, publish, drain, measure.
func runDelivery(
    kind: DeliveryKind, name: String, common: CommonOptions, options: PublishOptions, defaultPubPath: String,
    defaultSubPath: String = "/connect?id={id}"
) async throws -> Report {
    SystemLimits.raiseOpenFiles()
    var topicCount = 0
    if case .topics(let count) = kind { topicCount = count }
    let endpoints = try common.endpoints(defaultPubPath: defaultPubPath, defaultSubPath: defaultSubPath, topics: topicCount)
    let harness = Harness(endpoints: endpoints, threads: common.benchThreads, transport: try common.transport())
    let n = options.subscribers
    let pids = common.brokerPIDs
    let auxPIDs = common.auxPIDs
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
    let rssBeforeConnect = pids.isEmpty ? nil : ProcessGroupSample.rssBytes(pids: pids)
    let (connected, failures) = await harness.connectSubscribers(
        count: n, batch: common.connectBatch, reads: readsFor, receiveBuffer: receiveBuffer, log: common.log
    )
    let targeted: Bool = if case .targeted = kind { true } else { false }
    // Events go to one of these at random: a subscriber (targeted), a topic, or everyone (nil).
    let targets: Int? = targeted ? n : topicCount > 0 ? topicCount : nil
    let plan = PublishPlan(
        maxEvents: options.events > 0 ? options.events : Int.max, duration: options.duration, rate: options.rate
    )
    let finished = try await harness.connectPublishers(
        count: options.publishers, spread: common.publishTo == .all, targets: targets, size: options.size, plan: plan
    )
    try await Task.sleep(nanoseconds: UInt64(common.settle * 1e9))

    // Measured window: from the first publish to the last delivery (or the drain timeout).
    let brokerBefore = ProcessGroupSample.read(pids: pids)
    let auxBefore = ProcessGroupSample.read(pids: auxPIDs)
    let benchBefore = ProcessSample.cpuSeconds(pid: getpid()) ?? 0
    let sampler = pids.isEmpty ? nil : RSSSampler(pids: pids)
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
    case .topics(let count):
        // Each topic's events times its subscribers (i % count == topic).
        let perTopic = await harness.collect(targets: count).published.counts
        expected = perTopic.enumerated().reduce(0) { total, topic in
            total + topic.element * (n / count + (topic.offset < n % count ? 1 : 0))
        }
    }
    let drained = await harness.drain(expected: expected, timeout: options.drainTimeout, quiet: options.drainQuiet)
    let brokerAfter = ProcessGroupSample.read(pids: pids)
    let auxAfter = ProcessGroupSample.read(pids: auxPIDs)
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

    let collected = await harness.collect(targets: targets ?? 1)
    let results = collected.subscribers
    await harness.shutdown()

    var report = Report(
        workload: name,
        target: endpoints.map(\.url).joined(separator: ","),
        subscribers: n,
        subscribersConnected: connected,
        connectFailures: failures.isEmpty ? nil : failures,
        publishers: options.publishers,
        eventBytes: options.size,
        rate: options.rate,
        benchThreads: harness.loops.count
    )
    if endpoints.count > 1 {
        report.urls = endpoints.map(\.url)
        report.publishTo = common.publishTo.rawValue
        report.latencyByURL = collected.latencyByEndpoint.map(Report.Latency.init)
    }
    report.durationSeconds = Double(t1 - t0) / 1e9
    report.published = published
    report.publishFailures = harness.counters.publishFailures.load(ordering: .relaxed)
    report.publishedPerSecond = Double(published) / max(1e-9, Double(t1 - t0) / 1e9)
    report.expected = expected
    report.drained = drained
    report.latency = Report.Latency(collected.latency)
    report.benchCPUSeconds = benchAfter - benchBefore

    let healthyResults = results.filter(\.reads)
    let healthyDelivered = healthyResults.reduce(0) { $0 + $1.received }
    let measuredDelivered = nonReaderCount > 0 ? healthyDelivered : delivered
    report.delivered = measuredDelivered
    let deliveryWindow = Double(max(lastDelivery, t0 + 1) - t0) / 1e9
    report.deliveredPerSecond = Double(measuredDelivered) / deliveryWindow
    report.completeness = expected > 0 ? Double(measuredDelivered) / Double(expected) : (published == 0 ? 0 : 1)
    // Exactly the accepted events (count and fingerprint of their sequence numbers), in order.
    let publishedSet = collected.published
    func expectation(_ result: SubscriberResult) -> (count: Int, fingerprint: UInt64) {
        let slot = targeted ? result.index : topicCount > 0 ? result.index % topicCount : 0
        guard slot < publishedSet.counts.count else { return (0, 0) }
        return (publishedSet.counts[slot], publishedSet.fingerprints[slot])
    }
    let checked = healthyResults
    let exactSet = checked.filter { expectation($0) == ($0.received, $0.fingerprint) }
    let inOrder = checked.filter { $0.duplicateIDs == 0 && $0.idsOutOfOrder == 0 && $0.publisherOrderViolations == 0 }
    report.completeSubscribers = checked.filter {
        expectation($0) == ($0.received, $0.fingerprint) && $0.duplicateIDs == 0 && $0.idsOutOfOrder == 0
            && $0.publisherOrderViolations == 0
    }.count
    report.subscribersWithWrongSet = checked.count - exactSet.count
    report.subscribersOutOfOrder = checked.count - inOrder.count
    report.duplicateIDs = checked.reduce(0) { $0 + $1.duplicateIDs }
    report.idsOutOfOrder = checked.reduce(0) { $0 + $1.idsOutOfOrder }
    report.publisherOrderViolations = checked.reduce(0) { $0 + $1.publisherOrderViolations }
    report.verified = report.completeSubscribers == checked.count && connected == n
    report.subscribersClosed = results.filter(\.closed).count - (nonReadersClosed ?? 0)

    if let brokerBefore, let brokerAfter {
        let perPID = brokerAfter.cpuSeconds(since: brokerBefore, pids: pids)
        let cpu = perPID.compactMap { $0 }.reduce(0, +)
        report.brokerPID = pids.first
        if pids.count > 1 {
            report.brokerPIDs = pids
            report.brokerCPUSecondsByPID = perPID.map { $0 ?? -1 }
        }
        report.brokerCPUSeconds = cpu
        report.brokerCPUPercent = 100 * cpu / max(window, 1e-9)
        report.brokerCPUMicrosPerEvent = measuredDelivered > 0 ? cpu * 1e6 / Double(measuredDelivered) : nil
        report.brokerRSSBeforeBytes = rssBeforeConnect
        report.brokerRSSAfterBytes = brokerAfter.rssBytes
        report.brokerRSSPeakBytes = peak
        report.brokerRSSGrowthBytes = peak.map { $0 - brokerBefore.rssBytes }
        if perPID.contains(where: { $0 == nil }) { notes.append("a broker process was not readable in /proc") }
    } else if !pids.isEmpty {
        notes.append("broker process not readable in /proc")
    }
    if let auxBefore, let auxAfter {
        let cpu = auxAfter.cpuSeconds(since: auxBefore, pids: auxPIDs).compactMap { $0 }.reduce(0, +)
        report.auxCPUSeconds = cpu
        report.auxCPUPercent = 100 * cpu / max(window, 1e-9)
    }
    if nonReaderCount > 0 {
        report.nonReaders = nonReaderCount
        report.nonReadersClosed = nonReadersClosed
        report.healthy = readers
        report.healthyComplete = report.completeSubscribers
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

struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "N subscribers spread over T topics (subscriber i on topic i mod T); each event goes to one topic at random. Every subscriber must get exactly its topic's events, in order."
    )
    @OptionGroup var common: CommonOptions
    @OptionGroup var options: PublishOptions

    @Option(help: "Topics (t0, t1, …); at most the number of subscribers.")
    var topics = 1000

    func validate() throws {
        try self.common.validateCommon()
        guard self.topics >= 1, self.topics <= self.options.subscribers else {
            throw ValidationError("--topics must be 1…--subscribers (\(self.options.subscribers))")
        }
    }

    func run() async throws {
        var report = try await runDelivery(
            kind: .topics(count: self.topics), name: "topics", common: self.common, options: self.options,
            defaultPubPath: "/broadcast?type={topic}", defaultSubPath: "/connect?id={id}&topic={topic}"
        )
        report.topics = self.topics
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
        let endpoints = try self.common.endpoints(defaultPubPath: "/broadcast")
        let pids = self.common.brokerPIDs
        let harness = Harness(endpoints: endpoints, threads: self.common.benchThreads)
        let before = ProcessGroupSample.read(pids: pids)
        let (connected, failures) = await harness.connectSubscribers(
            count: self.subscribers, batch: self.common.connectBatch, log: self.common.log
        )
        try await Task.sleep(nanoseconds: UInt64(self.hold * 1e9))
        let after = ProcessGroupSample.read(pids: pids)
        let results = await harness.collect(targets: 1).subscribers
        await harness.shutdown()

        var report = Report(
            workload: "idle", target: endpoints.map(\.url).joined(separator: ","), subscribers: self.subscribers,
            subscribersConnected: connected, connectFailures: failures.isEmpty ? nil : failures, benchThreads: harness.loops.count
        )
        report.subscribersClosed = results.filter(\.closed).count
        if let before, let after {
            report.brokerPID = pids.first
            report.brokerCPUSeconds = after.cpuSeconds(since: before, pids: pids).compactMap { $0 }.reduce(0, +)
            report.brokerRSSBeforeBytes = before.rssBytes
            report.brokerRSSAfterBytes = after.rssBytes
            report.brokerRSSGrowthBytes = after.rssBytes - before.rssBytes
            report.brokerRSSPerConnectionBytes = connected > 0 ? Double(after.rssBytes - before.rssBytes) / Double(connected) : nil
        }
        try self.common.emit(report)
    }
}

/// Throws unless `value` is a number of seconds in (0, `limit`]: every duration option of the bench
/// is bounded, so no load loop runs on for ever.
func requireSeconds(_ value: Double, _ flag: String, atMost limit: Double) throws {
    guard value > 0, value <= limit else { throw ValidationError("\(flag) must be in (0, \(Int(limit))] seconds") }
}
