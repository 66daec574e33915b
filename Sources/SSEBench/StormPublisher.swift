import Histogram
import NIOCore
import NIOPosix
import Synchronization

/// Receipts per publish sequence number, over the subscribers of one loop (storm overload): which
/// events arrived how often, to compare with the set the broker accepted. Grows as sequence
/// numbers arrive, up to `limit` (the plan's bound).
struct SequenceCounts {
    private(set) var counts: [UInt32] = []
    let limit: Int

    init(limit: Int) { self.limit = limit }

    @inline(__always)
    mutating func add(_ seq: Int) {
        guard seq >= 0, seq < self.limit else { return }
        if seq >= self.counts.count {
            self.counts += repeatElement(0, count: min(self.limit, max(seq + 1, self.counts.count * 2, 1024)) - self.counts.count)
        }
        self.counts[seq] &+= 1
    }
}

/// What the storm publishers answered, shared by every loop (atomics; the details are collected at the end).
final class PublishTally: Sendable {
    let sent = Atomic<Int>(0)
    let accepted = Atomic<Int>(0)
    let finished = Atomic<Int>(0)
    /// Connections the server closed with requests of ours unanswered.
    let closedByServer = Atomic<Int>(0)
    /// Connections closed because a response could not be read.
    let malformed = Atomic<Int>(0)
    /// When the latest answer arrived (monotonic ns).
    let lastAnswer = Atomic<UInt64>(0)
}

/// A keep-alive publisher that keeps up to `depth` requests in flight (HTTP/1.1 pipelining) and
/// records, per response in order, its status and how long it took. Depth 1 with a paced plan is
/// the storms' probe publisher. Event data is `<send time> <seq> <publisher> <padding>`, as the
/// other workloads write it, so ``SubscriberHandler`` reads it back.
final class PipelinedPublisher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let plan: PublishPlan
    private let depth: Int
    private let head: [UInt8]
    private let size: Int
    private let index: Int
    private let tally: PublishTally
    private let list: LoopList<PipelinedPublisher>
    private let finished: EventLoopPromise<Void>
    private var reader = ResponseReader()
    private var context: ChannelHandlerContext?
    /// Sent and not answered yet, oldest first.
    private var pending = CircularBuffer<(seq: Int, sentAt: UInt64)>()
    private var planOver = false
    private var waitingForSchedule = false
    private var done = false
    private var closing = false
    /// The status of the response being read.
    private var headStatus = 0

    /// Responses by status (0: none came before the connection closed).
    private(set) var statuses: [Int: Int] = [:]
    /// Sequence numbers answered 2xx.
    private(set) var acceptedSeqs: [Int] = []
    private(set) var acceptedFingerprint: UInt64 = 0
    /// Sequence numbers answered with anything but 2xx, and those never answered.
    private(set) var refusedSeqs: [Int] = []
    private(set) var unansweredSeqs: [Int] = []
    /// Send to response, in microseconds (since the last ``takeWindow()``).
    private(set) var answerLatency = LoopState.histogram()
    /// The most a send came after its scheduled time (a paced plan), in ns (since the last ``takeWindow()``).
    private(set) var maxLateness: UInt64 = 0
    private(set) var sentInWindow = 0

    init(
        plan: PublishPlan, depth: Int, head: [UInt8], size: Int, index: Int, tally: PublishTally, list: LoopList<PipelinedPublisher>,
        finished: EventLoopPromise<Void>
    ) {
        self.plan = plan
        self.depth = max(1, depth)
        self.head = head
        self.size = size
        self.index = index
        self.tally = tally
        self.list = list
        self.finished = finished
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.list.items.append(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Called on the loop when the run starts.
    func begin() { self.fill() }

    /// The answer latency, lateness and sends since the last call; starts a new window.
    func takeWindow() -> (answers: Histogram<UInt64>, maxLateness: UInt64, sent: Int) {
        defer {
            self.answerLatency = LoopState.histogram()
            self.maxLateness = 0
            self.sentInWindow = 0
        }
        return (self.answerLatency, self.maxLateness, self.sentInWindow)
    }

    /// Sends until `depth` requests are in flight or the plan says wait (or is over).
    private func fill() {
        guard !self.done, !self.waitingForSchedule, let context else { return }
        var wrote = false
        while self.pending.count < self.depth && !self.planOver {
            let now = monotonicNanos()
            guard let (seq, at) = self.plan.claim(now: now) else {
                self.planOver = true
                break
            }
            if at > now + 50_000 {
                self.waitingForSchedule = true
                context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(at - now))) {
                    self.waitingForSchedule = false
                    guard !self.done, let context = self.context else { return }
                    self.write(seq: seq, scheduled: at, context: context)
                    context.flush()
                    self.fill()
                }
                break
            }
            self.write(seq: seq, scheduled: at, context: context)
            wrote = true
        }
        if wrote { context.flush() }
        if self.planOver && self.pending.isEmpty && !self.waitingForSchedule {
            self.finish()
            context.close(promise: nil)
        }
    }

    private func write(seq: Int, scheduled: UInt64, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: self.head.count + self.size + 32)
        buffer.writeBytes(self.head)
        let now = monotonicNanos()
        if self.plan.intervalNanos > 0 && now > scheduled { self.maxLateness = max(self.maxLateness, now - scheduled) }
        let prefix = "\(now) \(seq) \(self.index) "
        let bodyStart = buffer.writerIndex
        buffer.writeString(prefix)
        let padding = self.size - (buffer.writerIndex - bodyStart)
        if padding > 0 { buffer.writeRepeatingByte(UInt8(ascii: "x"), count: padding) }
        self.pending.append((seq, now))
        self.sentInWindow += 1
        self.tally.sent.add(1, ordering: .relaxed)
        context.write(self.wrapOutboundOut(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        var ended: [Int] = []
        do {
            // A response's head and end may come in different reads: the status is kept in between.
            try buffer.withUnsafeReadableBytes { bytes throws(ResponseReader.Failure) in
                try self.reader.feed(
                    bytes, onHead: { self.headStatus = $0 }, onBody: { _ in }, onEnd: { ended.append(self.headStatus) }
                )
            }
        } catch {
            self.closing = true  // ours, not the server's: a response we cannot read
            self.tally.malformed.add(1, ordering: .relaxed)
            context.close(promise: nil)
            return
        }
        let now = monotonicNanos()
        if !ended.isEmpty { self.tally.lastAnswer.max(now, ordering: .relaxed) }
        for status in ended {
            guard let (seq, sentAt) = self.pending.popFirst() else { continue }
            self.statuses[status, default: 0] += 1
            _ = self.answerLatency.record(now > sentAt ? (now - sentAt) / 1000 : 0)
            if (200..<300).contains(status) {
                self.acceptedSeqs.append(seq)
                self.acceptedFingerprint &+= sequenceFingerprint(seq)
                self.tally.accepted.add(1, ordering: .relaxed)
            } else {
                self.refusedSeqs.append(seq)
            }
        }
        if !ended.isEmpty && self.reader.closesAfter {
            // The server ends keep-alive: what was pipelined behind that response stays unanswered.
            self.planOver = true
            self.closing = true
            context.close(promise: nil)
            return
        }
        self.fill()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !self.pending.isEmpty {
            self.statuses[0, default: 0] += self.pending.count
            self.unansweredSeqs += self.pending.map(\.seq)
            if !self.closing { self.tally.closedByServer.add(1, ordering: .relaxed) }
        }
        self.pending.removeAll()
        self.planOver = true
        self.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Stops sending (requests in flight may still be answered); closes once they are, or now if `force`.
    func stop(force: Bool) {
        self.planOver = true
        if force || self.pending.isEmpty {
            self.closing = true
            self.context?.close(promise: nil)
        }
    }

    private func finish() {
        guard !self.done else { return }
        self.done = true
        self.tally.finished.add(1, ordering: .relaxed)
        self.finished.succeed()
    }
}

/// Objects of one event loop, touched only on it (hence `@unchecked Sendable`).
final class LoopList<Item>: @unchecked Sendable {
    let loop: any EventLoop
    var items: [Item] = []

    init(loop: any EventLoop) { self.loop = loop }
}

/// A set of pipelined publishers spread over some event loops.
final class PipelinedPublishers: Sendable {
    let lists: [LoopList<PipelinedPublisher>]
    let tally = PublishTally()

    init(loops: [any EventLoop]) {
        self.lists = loops.map { LoopList(loop: $0) }
    }

    /// Connects `count` publishers to `endpoint` (events to `targetIndex`, or broadcasts if `nil`).
    /// - Returns: a future per publisher, done when it stops.
    func connect(
        count: Int, endpoint: Endpoint, targetIndex: Int?, depth: Int, size: Int, plan: PublishPlan, firstIndex: Int = 0
    ) async throws -> [EventLoopFuture<Void>] {
        let head = endpoint.publishHead(targetIndex: targetIndex, size: size)
        var finished: [EventLoopFuture<Void>] = []
        for index in 0..<count {
            let list = self.lists[index % self.lists.count]
            let promise = list.loop.makePromise(of: Void.self)
            let tally = self.tally
            let publisherIndex = firstIndex + index
            _ = try await ClientBootstrap(group: list.loop)
                .connectTimeout(.seconds(10))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = PipelinedPublisher(
                            plan: plan, depth: depth, head: head, size: size, index: publisherIndex, tally: tally, list: list,
                            finished: promise
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

    func start(_ plan: PublishPlan) {
        plan.start(at: monotonicNanos())
        for list in self.lists {
            list.loop.execute { list.items.forEach { $0.begin() } }
        }
    }

    func stop(force: Bool) async {
        for list in self.lists {
            try? await list.loop.submit { list.items.forEach { $0.stop(force: force) } }.get()
        }
    }

    struct Window {
        var answers = LoopState.histogram()
        var maxLatenessNanos: UInt64 = 0
        var sent = 0
    }

    /// Answer latency, lateness and sends since the last call, over all publishers.
    func takeWindow() async -> Window {
        var window = Window()
        for list in self.lists {
            guard let parts = try? await list.loop.submit({ list.items.map { $0.takeWindow() } }).get() else { continue }
            for part in parts {
                window.answers.add(part.answers)
                window.maxLatenessNanos = max(window.maxLatenessNanos, part.maxLateness)
                window.sent += part.sent
            }
        }
        return window
    }

    struct Totals {
        var statuses: [Int: Int] = [:]
        var acceptedSeqs: [Int] = []
        var acceptedFingerprint: UInt64 = 0
        var refusedSeqs: [Int] = []
        var unansweredSeqs: [Int] = []
    }

    func totals() async -> Totals {
        var totals = Totals()
        for list in self.lists {
            let parts = try? await list.loop.submit {
                list.items.map { ($0.statuses, $0.acceptedSeqs, $0.acceptedFingerprint, $0.refusedSeqs, $0.unansweredSeqs) }
            }.get()
            for (statuses, seqs, fingerprint, refused, unanswered) in parts ?? [] {
                totals.statuses.merge(statuses, uniquingKeysWith: +)
                totals.acceptedSeqs += seqs
                totals.acceptedFingerprint &+= fingerprint
                totals.refusedSeqs += refused
                totals.unansweredSeqs += unanswered
            }
        }
        return totals
    }
}
