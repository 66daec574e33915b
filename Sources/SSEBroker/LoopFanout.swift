import CoreMetrics
import NIOCore
import Synchronization

/// Delivers encoded events to the subscribers of one event loop.
///
/// The broker appends each event to this loop's queue (never one task per subscriber, nor one per
/// event): a single drain task on the loop writes every queued event to every subscriber and
/// flushes, so when events arrive faster than a loop turn several go to a client in one `writev` —
/// on loopback the per-write syscall dominates fan-out — and when traffic is light each event is
/// flushed as soon as it is written. A drain writes at most ``writesPerTurn`` before it flushes and
/// yields the loop to its sockets, so a loop behind on its queue still flushes and still reads.
///
/// The queue is bounded: ``isOverloaded`` tells the broker to push publishers back (see
/// ``BrokerConfiguration/maxQueuedEvents``) instead of accepting work the loop cannot do, which
/// would make healthy clients look slow to the tolerance policy and grow memory without limit.
///
/// Threading: `enqueue` and the pending counters are thread-safe; ``registeredCount`` is guarded by
/// the broker's registry lock; everything else (the subscriber list, the heartbeat) is confined to
/// ``eventLoop``.
final class LoopFanout: @unchecked Sendable {
    /// What the queue holds.
    enum Item {
        /// An event for every subscriber of the loop. `work` is its size times the subscribers
        /// it was queued for, as counted in ``pendingBytes``.
        case broadcast(ByteBuffer, eventID: UInt64, publishedAt: UInt64, work: Int)
        /// An event for one connection.
        case targeted(ByteBuffer, eventID: UInt64, Subscription, publishedAt: UInt64)
        /// The broker is shutting down: a last comment to every subscriber, then close them, spread
        /// evenly over `spread` (zero: at once).
        case close(farewell: ByteBuffer, spread: Duration)
    }

    /// Writes one drain task does before it flushes and gives the loop back to its sockets.
    static let writesPerTurn = 262_144

    let eventLoop: any EventLoop
    private let policy: TolerancePolicy
    private let counters: BrokerCounters
    /// Publish-to-written latency, recorded once per event per loop (never per subscriber).
    private let fanoutTimer: CoreMetrics.Timer
    private let maxQueuedEvents: Int
    private let maxQueuedBytes: Int
    /// Called (on the loop) after a drain brought the queue under half its bounds, with about how
    /// many events of the kind just drained there is room for: for publishers waiting for room.
    private let onRoom: @Sendable (Int) -> Void

    /// Connections registered on this loop. Guarded by the broker's registry lock.
    var registeredCount = 0

    // Shared with publishers, under `queue`'s lock.
    private struct Queue {
        var items: [Item] = []
        var drainScheduled = false
    }
    private let queue: Locked<Queue>
    /// Events accepted and not yet written (read without the queue lock for admission).
    private let pendingEvents = Atomic<Int>(0)
    /// Their bytes times their recipients: the writes this loop owes.
    private let pendingBytes = Atomic<Int>(0)

    // Loop-confined.
    private var subscribers: [Subscription] = []
    /// Set while iterating ``subscribers``: a subscriber closed meanwhile is removed afterwards.
    private var isIterating = false
    private var deferredRemovals: [Subscription] = []
    /// Subscribers written to since the last flush.
    private var dirty: [Subscription] = []
    /// The items being drained (swapped with the queue's, so neither array is reallocated).
    private var draining: [Item] = []
    private var drainIndex = 0
    private var heartbeatTask: RepeatedTask?
    private var closing: Scheduled<Void>?

    init(
        eventLoop: any EventLoop,
        policy: TolerancePolicy,
        counters: BrokerCounters,
        fanoutTimer: CoreMetrics.Timer,
        maxQueuedEvents: Int,
        maxQueuedBytes: Int,
        onRoom: @escaping @Sendable (Int) -> Void
    ) {
        self.eventLoop = eventLoop
        self.policy = policy
        self.counters = counters
        self.fanoutTimer = fanoutTimer
        self.maxQueuedEvents = maxQueuedEvents
        self.maxQueuedBytes = maxQueuedBytes
        self.onRoom = onRoom
        self.queue = Locked(Queue())
    }

    // MARK: Admission (any thread)

    /// Whether this loop has more accepted and unwritten work than its bounds allow. An idle loop
    /// is never overloaded, so any one event is accepted, whatever its size.
    var isOverloaded: Bool {
        let events = self.pendingEvents.load(ordering: .relaxed)
        return events > 0
            && (events >= self.maxQueuedEvents || self.pendingBytes.load(ordering: .relaxed) >= self.maxQueuedBytes)
    }

    /// Whether the queue is under half its bounds: room enough to wake waiting publishers.
    private var hasRoom: Bool {
        self.pendingEvents.load(ordering: .relaxed) <= self.maxQueuedEvents / 2
            && self.pendingBytes.load(ordering: .relaxed) <= self.maxQueuedBytes / 2
    }

    // MARK: Queueing (any thread)

    /// Queues an event for every subscriber of this loop. Callable from any thread; items are
    /// written in the order they were queued, which the broker makes the event id order.
    /// - Parameter recipients: the subscribers registered now, for the work estimate.
    func enqueue(_ buffer: ByteBuffer, eventID: UInt64, publishedAt: UInt64, recipients: Int) {
        let work = buffer.readableBytes * max(recipients, 1)
        self.pendingEvents.add(1, ordering: .relaxed)
        self.pendingBytes.add(work, ordering: .relaxed)
        self.append(.broadcast(buffer, eventID: eventID, publishedAt: publishedAt, work: work))
    }

    /// Queues an event for one connection of this loop.
    func enqueue(_ buffer: ByteBuffer, eventID: UInt64, to subscription: Subscription, publishedAt: UInt64) {
        self.pendingEvents.add(1, ordering: .relaxed)
        self.pendingBytes.add(buffer.readableBytes, ordering: .relaxed)
        self.append(.targeted(buffer, eventID: eventID, subscription, publishedAt: publishedAt))
    }

    /// Queues the shutdown of every subscriber, after everything queued before.
    func enqueueClose(farewell: ByteBuffer, spread: Duration) {
        self.append(.close(farewell: farewell, spread: spread))
    }

    private func append(_ item: Item) {
        let schedule = self.queue.withLock { queue -> Bool in
            queue.items.append(item)
            guard !queue.drainScheduled else { return false }
            queue.drainScheduled = true
            return true
        }
        if schedule {
            self.eventLoop.execute { self.drain() }
        }
    }

    // MARK: Subscribers (on the loop)

    /// Adds a connection to the loop's list; the broker registered it already.
    func add(_ subscription: Subscription) {
        self.eventLoop.assertInEventLoop()
        subscription.slot = self.subscribers.count
        self.subscribers.append(subscription)
    }

    /// Removes a connection from the loop's list: O(1) (swap with the last; order within a loop
    /// does not matter), deferred while a delivery iterates the list.
    func remove(_ subscription: Subscription) {
        self.eventLoop.assertInEventLoop()
        guard subscription.slot >= 0 else { return }
        if self.isIterating {
            self.deferredRemovals.append(subscription)
            return
        }
        let slot = subscription.slot
        guard slot < self.subscribers.count, self.subscribers[slot] === subscription else { return }
        let last = self.subscribers.removeLast()
        if last !== subscription {
            self.subscribers[slot] = last
            last.slot = slot
        }
        subscription.slot = -1
    }

    /// Sends a comment to every subscriber every `interval`, so proxies keep idle streams open and
    /// dead or stalled clients are found. Loop-local: no lock, no broker.
    func startHeartbeat(every interval: Duration, comment: ByteBuffer) {
        self.eventLoop.assertInEventLoop()
        guard self.heartbeatTask == nil else { return }
        let amount = TimeAmount(interval)
        self.heartbeatTask = self.eventLoop.scheduleRepeatedTask(initialDelay: amount, delay: amount) { [weak self] _ in
            guard let self else { return }
            self.writeToAll(comment, eventID: 0, publishedAt: nil)
            self.flushDirty()
        }
    }

    /// Stops the heartbeat: the loop has no subscriber left, or the broker is shutting down.
    func stop() {
        self.eventLoop.execute {
            self.heartbeatTask?.cancel()
            self.heartbeatTask = nil
        }
    }

    // MARK: Draining (on the loop)

    private func drain() {
        var writes = 0
        var eventsDone = 0
        var bytesDone = 0
        while writes < Self.writesPerTurn {
            if self.drainIndex == self.draining.count {
                self.draining.removeAll(keepingCapacity: true)
                self.drainIndex = 0
                let more = self.queue.withLock { queue -> Bool in
                    if queue.items.isEmpty {
                        queue.drainScheduled = false
                        return false
                    }
                    swap(&queue.items, &self.draining)
                    return true
                }
                guard more else {
                    self.finishTurn(events: eventsDone, bytes: bytesDone)
                    return
                }
            }
            let item = self.draining[self.drainIndex]
            self.drainIndex += 1
            switch item {
            case .broadcast(let buffer, let eventID, let publishedAt, let work):
                writes += self.writeToAll(buffer, eventID: eventID, publishedAt: publishedAt)
                eventsDone += 1
                bytesDone += work
            case .targeted(let buffer, let eventID, let subscription, let publishedAt):
                writes += 1
                self.write(buffer, eventID: eventID, to: subscription, publishedAt: publishedAt)
                eventsDone += 1
                bytesDone += buffer.readableBytes
            case .close(let farewell, let spread):
                self.flushDirty()
                self.closeAll(farewell: farewell, spread: spread)
            }
        }
        self.finishTurn(events: eventsDone, bytes: bytesDone)
        // The turn's budget is spent and more is queued: let the loop serve its sockets (reads,
        // writes, closes) first. A task queued with `execute` would not do: NIO runs tasks until
        // none is left before it polls again, so a loop fed faster than it drains would never read
        // (its producers' requests would time out) nor notice a closed socket. A task scheduled a
        // moment ahead runs after the next poll.
        self.eventLoop.scheduleTask(in: Self.yieldDelay) { self.drain() }
    }

    /// How far ahead a drain that used its turn's budget schedules the rest: long enough that the
    /// loop polls its sockets first (the rest of the current tick's tasks take less), short next
    /// to the turn itself (tens of milliseconds).
    static let yieldDelay = TimeAmount.microseconds(250)

    /// Flushes what the turn wrote and releases its share of the queue bounds.
    private func finishTurn(events: Int, bytes: Int) {
        self.flushDirty()
        guard events > 0 else { return }
        let pendingEvents = self.pendingEvents.subtract(events, ordering: .relaxed).newValue
        let pendingBytes = self.pendingBytes.subtract(bytes, ordering: .relaxed).newValue
        guard self.hasRoom else { return }
        // Room in events, and in bytes at this turn's average size per event; an empty queue has
        // room for everyone waiting (no later drain would wake them).
        let averageWork = max(1, bytes / events)
        let room = min(self.maxQueuedEvents - pendingEvents, (self.maxQueuedBytes - pendingBytes) / averageWork)
        self.onRoom(pendingEvents == 0 ? .max : max(1, room))
    }

    /// Offers `buffer` to every subscriber. - Returns: the subscribers it was offered to.
    @discardableResult
    private func writeToAll(_ buffer: ByteBuffer, eventID: UInt64, publishedAt: UInt64?) -> Int {
        let isEvent = publishedAt != nil
        var written = 0
        var missed = 0
        let count = self.subscribers.count
        self.isIterating = true
        for index in 0..<count {
            let subscriber = self.subscribers[index]
            switch subscriber.offer(buffer, eventID: eventID, isEvent: isEvent, policy: self.policy) {
            case .written:
                written += 1
                self.markDirty(subscriber)
            case .missed:
                missed += 1
            case .skipped:
                break
            }
        }
        self.isIterating = false
        self.applyDeferredRemovals()
        if let publishedAt {
            self.record(written: written, bytes: written * buffer.readableBytes, missed: missed, publishedAt: publishedAt)
        }
        return count
    }

    private func write(_ buffer: ByteBuffer, eventID: UInt64, to subscriber: Subscription, publishedAt: UInt64) {
        guard subscriber.slot >= 0 else { return }  // gone since the event was queued
        switch subscriber.offer(buffer, eventID: eventID, isEvent: true, policy: self.policy) {
        case .written:
            self.markDirty(subscriber)
            self.record(written: 1, bytes: buffer.readableBytes, missed: 0, publishedAt: publishedAt)
        case .missed:
            self.record(written: 0, bytes: 0, missed: 1, publishedAt: publishedAt)
        case .skipped:
            break
        }
    }

    @inline(__always)
    private func markDirty(_ subscriber: Subscription) {
        if !subscriber.needsFlush {
            subscriber.needsFlush = true
            self.dirty.append(subscriber)
        }
    }

    private func record(written: Int, bytes: Int, missed: Int, publishedAt: UInt64) {
        self.counters.recordDelivery(written: written, bytes: bytes, missed: missed)
        let now = NIODeadline.now().uptimeNanoseconds
        self.fanoutTimer.recordNanoseconds(Int64(truncatingIfNeeded: now &- publishedAt))
    }

    private func applyDeferredRemovals() {
        guard !self.deferredRemovals.isEmpty else { return }
        let removals = self.deferredRemovals
        self.deferredRemovals.removeAll(keepingCapacity: true)
        for subscription in removals {
            self.remove(subscription)
        }
    }

    private func flushDirty() {
        guard !self.dirty.isEmpty else { return }
        self.isIterating = true
        for subscriber in self.dirty {
            subscriber.flush()
        }
        self.isIterating = false
        self.dirty.removeAll(keepingCapacity: true)
        self.applyDeferredRemovals()
    }

    /// Closes every subscriber after `farewell`; with a `spread`, a slice at a time so that they
    /// reconnect elsewhere gradually.
    private func closeAll(farewell: ByteBuffer, spread: Duration) {
        self.heartbeatTask?.cancel()
        self.heartbeatTask = nil
        var remaining = self.subscribers
        guard !remaining.isEmpty else { return }
        let tick = Duration.milliseconds(10)
        let ticks = max(1, Int(spread / tick))
        let perTick = max(1, (remaining.count + ticks - 1) / ticks)
        func closeSlice() {
            let slice = remaining.suffix(perTick)
            remaining.removeLast(slice.count)
            for subscription in slice {
                subscription.close(reason: .shutdown, farewell: farewell)
            }
            if !remaining.isEmpty {
                self.closing = self.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(tick)) {
                    closeSlice()
                }
            }
        }
        closeSlice()
    }
}

/// Broker-wide counters, updated once per delivery batch, read by ``Broker/statistics``.
final class BrokerCounters: Sendable {
    let published = Atomic<Int>(0)
    let delivered = Atomic<Int>(0)
    let bytesDelivered = Atomic<Int>(0)
    let dropped = Atomic<Int>(0)
    let kicked = Atomic<Int>(0)
    let banned = Atomic<Int>(0)
    let overTolerance = Atomic<Int>(0)
    let listenerDrops = Atomic<Int>(0)
    let accepted = Atomic<Int>(0)
    /// Publishes that waited for room.
    let delayed = Atomic<Int>(0)
    /// Refused HTTP requests by status code. Refusals are rare (and cheap next to the socket work
    /// of one), so one small lock will do.
    let refusals = Locked<[UInt: Int]>([:])

    func recordDelivery(written: Int, bytes: Int, missed: Int) {
        if written > 0 {
            self.delivered.add(written, ordering: .relaxed)
            self.bytesDelivered.add(bytes, ordering: .relaxed)
        }
        if missed > 0 {
            self.dropped.add(missed, ordering: .relaxed)
        }
    }
}
