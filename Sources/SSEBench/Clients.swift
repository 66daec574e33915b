import Histogram
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Counters shared by every loop; updated once per read or response, never per byte.
final class RunCounters: Sendable {
    let delivered = Atomic<Int>(0)
    let published = Atomic<Int>(0)
    let publishFailures = Atomic<Int>(0)
    let subscribersClosed = Atomic<Int>(0)
    let publishersFinished = Atomic<Int>(0)
    /// Latest receive time (monotonic ns) of an event, for the delivery rate.
    let lastDelivery = Atomic<UInt64>(0)
}

/// What one event loop of the bench owns: its subscribers, publishers and latency histograms.
/// Loop-confined: touched only by tasks on `loop` (hence `@unchecked Sendable`).
final class LoopState: @unchecked Sendable {
    let loop: any EventLoop
    /// Publish-to-receive latency in microseconds.
    var latency = LoopState.histogram()
    /// The same, per broker URL the subscribers are connected to.
    var latencyByEndpoint: [Histogram<UInt64>]
    var subscribers: [SubscriberHandler] = []
    var publishers: [PublisherHandler] = []
    /// Receipts per sequence number over this loop's subscribers (storm overload only; `nil`: not counted).
    var sequenceCounts: SequenceCounts?

    init(loop: any EventLoop, endpoints: Int) {
        self.loop = loop
        self.latencyByEndpoint = (0..<max(1, endpoints)).map { _ in LoopState.histogram() }
    }

    static func histogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    }
}

/// A fingerprint of a set of sequence numbers: the wrapping sum of a 64-bit mix of each. Equal
/// counts and fingerprints mean, barring a 2^-64 accident, the same set — every event, none twice.
@inline(__always)
func sequenceFingerprint(_ seq: Int) -> UInt64 {
    // splitmix64's finalizer.
    var z = UInt64(truncatingIfNeeded: seq) &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// One subscriber connection: sends the `GET`, reads the response head, then scans the event
/// stream for events and their timestamps. No per-event allocation.
final class SubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let index: Int
    /// Which broker URL it is connected to (an index into the harness's endpoints).
    let endpointIndex: Int
    /// A non-reader (slow workload) stops reading once its stream has started.
    let reads: Bool
    private let request: ByteBuffer
    private let state: LoopState
    private let counters: RunCounters
    private let ready: EventLoopPromise<Void>
    private var reader = ResponseReader()
    private var scanner = EventScanner()
    private var headSeen = false
    private var failed = false
    private(set) var received = 0
    /// Fingerprint of the sequence numbers received (see ``sequenceFingerprint(_:)``).
    private(set) var fingerprint: UInt64 = 0
    /// Events whose broker id was not above the previous one's: equal (a duplicate) or below (out of order).
    private(set) var duplicateIDs = 0
    private(set) var idsOutOfOrder = 0
    /// Events of one publisher that arrived before an event it had published earlier (each publisher
    /// has one request in flight, so its events are causally ordered).
    private(set) var publisherOrderViolations = 0
    private var lastID: UInt64?
    private var lastSeqByPublisher: [Int] = []
    private(set) var bodyBytes = 0
    private(set) var closed = false
    /// When the connection closed (monotonic ns), 0 while open.
    private(set) var closedAt: UInt64 = 0
    private var channel: (any Channel)?

    init(
        index: Int, endpointIndex: Int, reads: Bool, request: ByteBuffer, state: LoopState, counters: RunCounters,
        ready: EventLoopPromise<Void>
    ) {
        self.index = index
        self.endpointIndex = endpointIndex
        self.reads = reads
        self.request = request
        self.state = state
        self.counters = counters
        self.ready = ready
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.channel = context.channel
        self.state.subscribers.append(self)
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(self.request), promise: nil)
        if !self.reads { context.read() }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        self.bodyBytes += buffer.readableBytes
        var now: UInt64 = 0
        var events = 0
        do {
            try buffer.withUnsafeReadableBytes { bytes throws(ResponseReader.Failure) in
                try self.reader.feed(
                    bytes,
                    onHead: { status in
                        self.headSeen = true
                        if status == 200 {
                            self.ready.succeed()
                        } else {
                            self.failed = true
                            self.ready.fail(BenchError.subscribeRefused(status: status))
                        }
                    },
                    onBody: { body in
                        self.scanner.scan(body) { event in
                            events += 1
                            self.check(event)
                            let stamp = event.stamp
                            guard stamp != 0 else { return }
                            if now == 0 { now = monotonicNanos() }
                            // A non-reader's events sat in buffers on purpose: not a latency.
                            if now > stamp && self.reads {
                                let micros = (now - stamp) / 1000
                                _ = self.state.latency.record(micros)
                                _ = self.state.latencyByEndpoint[self.endpointIndex].record(micros)
                            }
                        }
                    },
                    onEnd: {}
                )
            }
        } catch {
            self.failed = true
            self.ready.fail(BenchError.malformedResponse)
            context.close(promise: nil)
            return
        }
        if events > 0 {
            self.received += events
            self.counters.delivered.add(events, ordering: .relaxed)
            if now == 0 { now = monotonicNanos() }
            self.counters.lastDelivery.max(now, ordering: .relaxed)
        }
    }

    /// Completeness and order: the set of sequence numbers, the broker's ids strictly increasing,
    /// and each publisher's events in the order it published them.
    @inline(__always)
    private func check(_ event: ScannedEvent) {
        if let id = event.id {
            if let last = self.lastID {
                if id == last {
                    self.duplicateIDs += 1
                } else if id < last {
                    self.idsOutOfOrder += 1
                }
            }
            self.lastID = max(self.lastID ?? 0, id)
        }
        guard event.seq >= 0 else { return }
        self.fingerprint &+= sequenceFingerprint(event.seq)
        self.state.sequenceCounts?.add(event.seq)
        let publisher = event.publisher
        guard publisher >= 0 else { return }
        if publisher >= self.lastSeqByPublisher.count {
            self.lastSeqByPublisher += Array(repeating: -1, count: publisher + 1 - self.lastSeqByPublisher.count)
        }
        if event.seq <= self.lastSeqByPublisher[publisher] {
            self.publisherOrderViolations += 1
        } else {
            self.lastSeqByPublisher[publisher] = event.seq
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // A non-reader reads only until its response head is in.
        if !self.reads && !self.headSeen && !self.closed { context.read() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.closed = true
        self.closedAt = monotonicNanos()
        self.counters.subscribersClosed.add(1, ordering: .relaxed)
        self.ready.fail(BenchError.closedBeforeReady)  // no-op once succeeded
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Starts reading (a non-reader, at the end of the slow workload) to find out whether the broker
    /// closed it: the close is only seen once the bytes queued before it are read.
    func startReading() {
        guard let channel = self.channel, !self.closed else { return }
        channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in channel.read() }
    }

    func close() {
        guard !self.closed else { return }
        self.channel?.close(promise: nil)
    }

    /// Closes with `SO_LINGER {1, 0}`: the kernel drops the connection with a RST, so the server sees
    /// a reset rather than an orderly FIN. Call on the channel's loop (the option is set at once there).
    func reset() {
        guard !self.closed, let channel = self.channel else { return }
        if let provider = channel as? any SocketOptionProvider {
            _ = provider.setSoLinger(linger(l_onoff: 1, l_linger: 0))
        }
        channel.close(promise: nil)
    }
}

/// Shared by all publishers: how many events, until when, at what pace.
final class PublishPlan: Sendable {
    let maxEvents: Int
    let durationNanos: UInt64
    /// Nanoseconds between events across all publishers; 0 = as fast as responses come back.
    let intervalNanos: UInt64
    private let next = Atomic<Int>(0)
    private let startTime = Atomic<UInt64>(0)

    init(maxEvents: Int, duration: Double, rate: Double) {
        self.maxEvents = maxEvents
        self.durationNanos = UInt64(max(duration, 0) * 1e9)
        self.intervalNanos = rate > 0 ? UInt64(1e9 / rate) : 0
    }

    func start(at time: UInt64) { self.startTime.store(time, ordering: .releasing) }
    var start: UInt64 { self.startTime.load(ordering: .acquiring) }

    /// The next sequence number and when to send it (monotonic ns), or `nil` once the run is over.
    func claim(now: UInt64) -> (seq: Int, at: UInt64)? {
        let start = self.start
        guard now < start + self.durationNanos else { return nil }
        let seq = self.next.add(1, ordering: .relaxed).oldValue
        guard seq < self.maxEvents else { return nil }
        let at = start + UInt64(seq) * self.intervalNanos
        guard at < start + self.durationNanos else { return nil }
        return (seq, at)
    }
}

/// One keep-alive publisher: one request in flight; the next is sent when the answer is in (or
/// when the rate schedule says so). Any 2xx counts as published (nchan answers 201 or 202).
final class PublisherHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let plan: PublishPlan
    private let counters: RunCounters
    private let heads: [[UInt8]]
    private let size: Int
    /// This publisher's index, written into every event (per-publisher order checks).
    private let index: Int
    private let state: LoopState
    private let finished: EventLoopPromise<Void>
    private var reader = ResponseReader()
    private var context: ChannelHandlerContext?
    private var rng: UInt64
    private var inFlight = false
    private var done = false
    /// Published (2xx) count per target index (targeted runs; one slot for broadcasts).
    private(set) var perTarget: [Int]
    /// Fingerprint of the accepted sequence numbers per target (see ``sequenceFingerprint(_:)``).
    private(set) var perTargetFingerprint: [UInt64]
    private var currentTarget = 0
    private var currentSeq = 0
    private(set) var failures = 0
    private(set) var lastStatus = 0

    /// - Parameter heads: the request head (through the blank line) for each target; one for a broadcast.
    init(
        plan: PublishPlan, counters: RunCounters, heads: [[UInt8]], size: Int, index: Int, seed: UInt64, state: LoopState,
        finished: EventLoopPromise<Void>
    ) {
        self.plan = plan
        self.counters = counters
        self.heads = heads
        self.size = size
        self.index = index
        self.rng = seed | 1
        self.state = state
        self.finished = finished
        self.perTarget = Array(repeating: 0, count: heads.count)
        self.perTargetFingerprint = Array(repeating: 0, count: heads.count)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.state.publishers.append(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Called on the loop when the run starts.
    func begin() {
        self.sendNext()
    }

    private func sendNext() {
        guard !self.done, let context else { return }
        let now = monotonicNanos()
        guard let (seq, at) = self.plan.claim(now: now) else {
            self.finish()
            return
        }
        if at > now + 50_000 {
            context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(at - now))) {
                self.send(seq: seq)
            }
        } else {
            self.send(seq: seq)
        }
    }

    private func send(seq: Int) {
        guard !self.done, let context else { return }
        // xorshift64: cheap, good enough to spread targets.
        self.rng ^= self.rng << 13
        self.rng ^= self.rng >> 7
        self.rng ^= self.rng << 17
        self.currentTarget = self.heads.count == 1 ? 0 : Int(self.rng % UInt64(self.heads.count))
        let head = self.heads[self.currentTarget]
        var buffer = context.channel.allocator.buffer(capacity: head.count + self.size)
        buffer.writeBytes(head)
        // The send time, sequence and publisher go into the data, padded to `size` bytes.
        self.currentSeq = seq
        let prefix = "\(monotonicNanos()) \(seq) \(self.index) "
        let bodyStart = buffer.writerIndex
        buffer.writeString(prefix)
        let padding = self.size - (buffer.writerIndex - bodyStart)
        if padding > 0 { buffer.writeRepeatingByte(UInt8(ascii: "x"), count: padding) }
        precondition(buffer.writerIndex - bodyStart == max(self.size, prefix.utf8.count))
        self.inFlight = true
        context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        var completed = 0
        do {
            try buffer.withUnsafeReadableBytes { bytes throws(ResponseReader.Failure) in
                try self.reader.feed(bytes, onHead: { _ in }, onBody: { _ in }, onEnd: { completed += 1 })
            }
        } catch {
            self.fail(context: context)
            return
        }
        for _ in 0..<completed {
            self.inFlight = false
            self.lastStatus = self.reader.status
            if (200..<300).contains(self.reader.status) {
                self.perTarget[self.currentTarget] += 1
                self.perTargetFingerprint[self.currentTarget] &+= sequenceFingerprint(self.currentSeq)
                self.counters.published.add(1, ordering: .relaxed)
            } else {
                self.failures += 1
                self.counters.publishFailures.add(1, ordering: .relaxed)
            }
            if self.reader.closesAfter {
                // The server ends keep-alive here; this publisher stops (its count stands).
                self.finish()
                context.close(promise: nil)
                return
            }
            self.sendNext()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if self.inFlight {
            self.failures += 1
            self.counters.publishFailures.add(1, ordering: .relaxed)
            self.inFlight = false
        }
        self.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(context: context)
    }

    private func fail(context: ChannelHandlerContext) {
        context.close(promise: nil)
    }

    private func finish() {
        guard !self.done else { return }
        self.done = true
        self.counters.publishersFinished.add(1, ordering: .relaxed)
        self.finished.succeed()
    }
}

enum BenchError: Error, CustomStringConvertible {
    case subscribeRefused(status: Int)
    case malformedResponse
    case closedBeforeReady
    case notLoopback(String)
    case connectFailed(String)
    case timeout(String)
    case badURL(String)

    var description: String {
        switch self {
        case .subscribeRefused(let status): "subscribe answered \(status), not 200"
        case .malformedResponse: "malformed HTTP response"
        case .closedBeforeReady: "connection closed before the stream started"
        case .notLoopback(let host): "\(host) is not a loopback address; sse-bench only loads this machine"
        case .connectFailed(let why): "connect failed: \(why)"
        case .timeout(let what): "timed out: \(what)"
        case .badURL(let text): "\(text) is not http://HOST:PORT"
        }
    }
}
