import Foundation
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix

/// Where the broker is and how its endpoints are spelled.
struct Endpoint: Sendable {
    var host: String
    var port: Int
    /// `GET` path for subscriber `{id}`.
    var subPath: String
    /// `POST` path; `{id}` is the target of a targeted event.
    var pubPath: String
    var idPrefix: String
    /// The topics workload: subscriber `i` subscribes to topic `i % topics`, and a publish to
    /// target `k` goes to topic `k`. 0: no topics.
    var topics = 0

    func id(_ index: Int) -> String { "\(self.idPrefix)\(index)" }

    /// Topic `k`'s name: `t0`, `t1`, …
    static func topic(_ index: Int) -> String { "t\(index)" }

    /// `{id}` (and nchan's `{channel}`) is the id, `{topic}` the topic.
    func path(_ template: String, id: String, topic: String = "") -> String {
        template.replacingOccurrences(of: "{id}", with: id).replacingOccurrences(of: "{channel}", with: id)
            .replacingOccurrences(of: "{topic}", with: topic)
    }

    var url: String { "http://\(self.host.contains(":") ? "[\(self.host)]" : self.host):\(self.port)" }

    func subscribeRequest(index: Int) -> ByteBuffer {
        let path = self.path(self.subPath, id: self.id(index), topic: self.topics > 0 ? Self.topic(index % self.topics) : "")
        return ByteBuffer(
            string: "GET \(path) HTTP/1.1\r\nHost: \(self.host):\(self.port)\r\nAccept: text/event-stream\r\n"
                + "Cache-Control: no-cache\r\nUser-Agent: sse-bench\r\n\r\n"
        )
    }

    func publishHead(targetIndex: Int?, size: Int) -> [UInt8] {
        let path = targetIndex.map { self.path(self.pubPath, id: self.id($0), topic: Self.topic($0)) } ?? self.pubPath
        return Array(
            ("POST \(path) HTTP/1.1\r\nHost: \(self.host):\(self.port)\r\nContent-Type: text/plain\r\n"
                + "Content-Length: \(size)\r\nConnection: keep-alive\r\n\r\n").utf8
        )
    }

    /// `http://HOST:PORT` (a trailing `/` allowed) or `HOST:PORT`, on loopback.
    /// - Returns: the host and port.
    static func parseURL(_ text: String) throws -> (host: String, port: Int) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if rest.hasPrefix("http://") { rest = rest.dropFirst("http://".count) }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port),
            !rest[..<colon].contains("/")
        else { throw BenchError.badURL(text) }
        return (try self.loopbackHost(String(rest[..<colon])), port)
    }

    /// sse-bench sends traffic to this machine only.
    static func loopbackHost(_ host: String) throws -> String {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare == "localhost" { return "127.0.0.1" }
        if bare == "::1" { return bare }
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false).map { UInt8($0) }
        if octets.count == 4, !octets.contains(nil), octets[0] == 127 { return bare }
        throw BenchError.notLoopback(host)
    }
}

/// What a subscriber reports at the end.
struct SubscriberResult: Sendable {
    var index: Int
    var endpointIndex: Int
    var reads: Bool
    var received: Int
    var fingerprint: UInt64
    var duplicateIDs: Int
    var idsOutOfOrder: Int
    var publisherOrderViolations: Int
    var closed: Bool
}

/// What the publishers had accepted (2xx), per target: counts and sequence fingerprints.
struct PublishedSet: Sendable {
    var counts: [Int]
    var fingerprints: [UInt64]
}

/// The bench's event loops and the connections on them.
final class Harness: Sendable {
    let group: MultiThreadedEventLoopGroup
    let loops: [LoopState]
    let counters = RunCounters()
    /// The brokers: subscriber `i` connects to `endpoints[i % count]` (several nodes of one cluster).
    let endpoints: [Endpoint]
    /// TLS, and HTTP/2 for subscribers.
    let transport: BenchTransport
    /// HTTP/2 subscriber connections by index, each a stream multiplexer once connected.
    private let http2Connections = NIOLockedValueBox([Int: EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer>]())

    init(endpoints: [Endpoint], threads: Int, transport: BenchTransport = .plain) {
        precondition(!endpoints.isEmpty)
        self.endpoints = endpoints
        self.transport = transport
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        self.loops = self.group.makeIterator().map { LoopState(loop: $0, endpoints: endpoints.count) }
    }

    /// Connects subscribers `0..<count` in batches, each batch waiting until every stream has
    /// started (response head read), so the broker's accept backlog never overflows.
    /// - Returns: how many streams started.
    func connectSubscribers(
        count: Int,
        batch: Int,
        reads: @Sendable (Int) -> Bool = { _ in true },
        receiveBuffer: Int? = nil,
        log: (String) -> Void
    ) async -> (connected: Int, failures: [String]) {
        var connected = 0
        var failures: [String] = []
        var start = 0
        let deadline = monotonicNanos() + 120_000_000_000
        while start < count {
            let end = min(count, start + max(1, batch))
            var pending: [EventLoopFuture<Void>] = []
            pending.reserveCapacity(end - start)
            for index in start..<end {
                pending.append(self.connectSubscriber(index: index, reads: reads(index), receiveBuffer: receiveBuffer))
            }
            for future in pending {
                do {
                    try await future.get()
                    connected += 1
                } catch {
                    if failures.count < 5 { failures.append("\(error)") } else if failures.count == 5 { failures.append("…") }
                }
            }
            start = end
            if monotonicNanos() > deadline {
                failures.append("connect phase took over 120 s; stopped at \(end) of \(count)")
                break
            }
            if count >= 2000 && (end % 2000 == 0 || end == count) { log("connected \(connected)/\(end)") }
        }
        return (connected, failures)
    }

    func connectSubscriber(index: Int, reads: Bool, receiveBuffer: Int?) -> EventLoopFuture<Void> {
        if let streams = self.transport.http2StreamsPerConnection {
            return self.connectHTTP2Subscriber(index: index, streamsPerConnection: streams)
        }
        let state = self.loops[index % self.loops.count]
        let ready = state.loop.makePromise(of: Void.self)
        let endpointIndex = index % self.endpoints.count
        let endpoint = self.endpoints[endpointIndex]
        let request = endpoint.subscribeRequest(index: index)
        let counters = self.counters
        var bootstrap = ClientBootstrap(group: state.loop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        if !reads {
            bootstrap = bootstrap.channelOption(.autoRead, value: false)
            if let receiveBuffer {
                // Set before connect, so the advertised window stays small.
                bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer))
            }
        }
        let transport = self.transport
        bootstrap = bootstrap.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try transport.addTLS(to: channel, for: .subscriber)
                let handler = SubscriberHandler(
                    index: index, endpointIndex: endpointIndex, reads: reads, request: request, state: state,
                    counters: counters, ready: ready
                )
                try channel.pipeline.syncOperations.addHandler(handler)
            }
        }
        bootstrap.connect(host: endpoint.host, port: endpoint.port).whenFailure { ready.fail($0) }
        // Bounded: a broker that never answers fails the subscriber, not the bench.
        state.loop.scheduleTask(in: .seconds(30)) { ready.fail(BenchError.timeout("stream start of subscriber \(index)")) }
        return ready.futureResult
    }

    /// Subscriber `index` as a stream of HTTP/2 connection `index / streamsPerConnection` (made by
    /// its first stream), on that connection's loop.
    private func connectHTTP2Subscriber(index: Int, streamsPerConnection: Int) -> EventLoopFuture<Void> {
        let connectionIndex = index / streamsPerConnection
        let state = self.loops[connectionIndex % self.loops.count]
        let ready = state.loop.makePromise(of: Void.self)
        let endpointIndex = connectionIndex % self.endpoints.count
        let endpoint = self.endpoints[endpointIndex]
        let request = endpoint.subscribeRequest(index: index)
        let counters = self.counters
        let transport = self.transport
        let multiplexer = self.http2Connections.withLockedValue { connections in
            if let existing = connections[connectionIndex] { return existing }
            let made = ClientBootstrap(group: state.loop)
                .connectTimeout(.seconds(10))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try transport.addTLS(to: channel, for: .subscriber)
                        let configuration = BenchTransport.http2Configuration()
                        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                            mode: .client, connectionConfiguration: configuration.connection,
                            streamConfiguration: configuration.stream, inboundStreamInitializer: { $0.close() }
                        )
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port)
                .flatMapThrowing { channel in
                    try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer()
                }
            connections[connectionIndex] = made
            return made
        }
        let authority = "\(endpoint.host):\(endpoint.port)"
        let scheme: HTTP2FramePayloadToHTTP1ClientCodec.HTTPProtocol = transport.isTLS ? .https : .http
        multiplexer.whenComplete { result in
            switch result {
            case .failure(let error):
                ready.fail(error)
            case .success(let multiplexer):
                multiplexer.createStreamChannel(promise: nil) { stream in
                    stream.eventLoop.makeCompletedFuture {
                        try stream.pipeline.syncOperations.addHandlers(
                            HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: scheme),
                            RawHTTP1OverHTTP2Adapter(authority: authority),
                            SubscriberHandler(
                                index: index, endpointIndex: endpointIndex, reads: true, request: request, state: state,
                                counters: counters, ready: ready
                            )
                        )
                    }
                }
            }
        }
        state.loop.scheduleTask(in: .seconds(30)) { ready.fail(BenchError.timeout("stream start of subscriber \(index)")) }
        return ready.futureResult
    }

    /// Connects `count` keep-alive publishers: all to the first broker, or (`spread`) publisher `i` to
    /// `endpoints[i % count]`. Each event goes to one of `targets` targets at random (subscribers, or
    /// topics), or to everyone (`nil`: broadcasts).
    /// - Returns: a future per publisher, done when it stops.
    func connectPublishers(count: Int, spread: Bool, targets: Int?, size: Int, plan: PublishPlan) async throws -> [EventLoopFuture<Void>] {
        var finished: [EventLoopFuture<Void>] = []
        var headsByEndpoint: [Int: [[UInt8]]] = [:]
        for index in 0..<count {
            let endpointIndex = spread ? index % self.endpoints.count : 0
            let endpoint = self.endpoints[endpointIndex]
            let heads = headsByEndpoint[endpointIndex] ?? {
                let made = targets.map { n in (0..<n).map { endpoint.publishHead(targetIndex: $0, size: size) } }
                    ?? [endpoint.publishHead(targetIndex: nil, size: size)]
                headsByEndpoint[endpointIndex] = made
                return made
            }()
            let state = self.loops[index % self.loops.count]
            let promise = state.loop.makePromise(of: Void.self)
            let counters = self.counters
            let seed = UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15
            _ = try await ClientBootstrap(group: state.loop)
                .connectTimeout(.seconds(10))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { [transport = self.transport] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try transport.addTLS(to: channel, for: .publisher)
                        let handler = PublisherHandler(
                            plan: plan, counters: counters, heads: heads, size: size, index: index, seed: seed,
                            state: state, finished: promise
                        )
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port)
                .get()
            finished.append(promise.futureResult)
        }
        return finished
    }

    /// Starts every publisher on its loop.
    func startPublishing(_ plan: PublishPlan) {
        plan.start(at: monotonicNanos())
        for state in self.loops {
            state.loop.execute { state.publishers.forEach { $0.begin() } }
        }
    }

    /// Waits until `condition` holds, polling every 5 ms, for at most `timeout` seconds.
    /// - Returns: whether it held.
    @discardableResult
    func wait(timeout: Double, until condition: () -> Bool) async -> Bool {
        let deadline = monotonicNanos() + UInt64(max(0, timeout) * 1e9)
        while !condition() {
            if monotonicNanos() >= deadline { return false }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        return true
    }

    /// Waits until `expected` events are delivered, or nothing arrived for `quiet` seconds, or
    /// `timeout` seconds passed. - Returns: whether all arrived.
    func drain(expected: Int, timeout: Double, quiet: Double) async -> Bool {
        let deadline = monotonicNanos() + UInt64(max(0, timeout) * 1e9)
        var last = self.counters.delivered.load(ordering: .relaxed)
        var lastChange = monotonicNanos()
        while true {
            let delivered = self.counters.delivered.load(ordering: .relaxed)
            if delivered >= expected { return true }
            let now = monotonicNanos()
            if delivered != last {
                last = delivered
                lastChange = now
            }
            if now >= deadline || now - lastChange >= UInt64(quiet * 1e9) { return false }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    /// What the run measured: the latency histogram (overall and per endpoint), every subscriber's
    /// result and what was published per target.
    struct Collected {
        var latency: Histogram<UInt64>
        var latencyByEndpoint: [Histogram<UInt64>]
        var subscribers: [SubscriberResult]
        var published: PublishedSet
    }

    func collect(targets: Int) async -> Collected {
        var collected = Collected(
            latency: LoopState.histogram(),
            latencyByEndpoint: self.endpoints.map { _ in LoopState.histogram() },
            subscribers: [],
            published: PublishedSet(counts: Array(repeating: 0, count: max(1, targets)), fingerprints: Array(repeating: 0, count: max(1, targets)))
        )
        for state in self.loops {
            let part = try? await state.loop.submit {
                (
                    state.latency,
                    state.latencyByEndpoint,
                    state.subscribers.map {
                        SubscriberResult(
                            index: $0.index, endpointIndex: $0.endpointIndex, reads: $0.reads, received: $0.received,
                            fingerprint: $0.fingerprint, duplicateIDs: $0.duplicateIDs, idsOutOfOrder: $0.idsOutOfOrder,
                            publisherOrderViolations: $0.publisherOrderViolations, closed: $0.closed
                        )
                    },
                    state.publishers.map { ($0.perTarget, $0.perTargetFingerprint) }
                )
            }.get()
            guard let (latency, byEndpoint, subscribers, publishers) = part else { continue }
            collected.latency.add(latency)
            for (index, histogram) in byEndpoint.enumerated() where index < collected.latencyByEndpoint.count {
                collected.latencyByEndpoint[index].add(histogram)
            }
            collected.subscribers += subscribers
            for (counts, fingerprints) in publishers {
                for (index, value) in counts.enumerated() where index < collected.published.counts.count {
                    collected.published.counts[index] += value
                    collected.published.fingerprints[index] &+= fingerprints[index]
                }
            }
        }
        collected.subscribers.sort { $0.index < $1.index }
        return collected
    }

    /// Non-readers start reading, so a close the broker made behind their unread bytes is seen.
    func startReadingNonReaders() {
        for state in self.loops {
            state.loop.execute { state.subscribers.filter { !$0.reads }.forEach { $0.startReading() } }
        }
    }

    /// How many non-readers have seen their connection close.
    func closedNonReaders() async -> Int {
        var closed = 0
        for state in self.loops {
            closed += (try? await state.loop.submit { state.subscribers.filter { !$0.reads && $0.closed }.count }.get()) ?? 0
        }
        return closed
    }

    /// Closes every connection and stops the loops.
    func shutdown() async {
        var total = 0
        for state in self.loops {
            total += (try? await state.loop.submit {
                state.subscribers.forEach { $0.close() }
                state.publishers.removeAll()
                return state.subscribers.count
            }.get()) ?? 0
        }
        await self.wait(timeout: 10) { self.counters.subscribersClosed.load(ordering: .relaxed) >= total }
        try? await self.group.shutdownGracefully()
    }
}
