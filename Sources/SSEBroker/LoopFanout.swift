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
/// yields the loop to its sockets (until the loop's next poll, ``LoopPollSignal``), so a loop behind
/// on its queue still flushes and still reads.
///
/// Subscribers are indexed by topic (``TopicFilter``): those that asked for no topic in one list,
/// those with exact topics only in a list per topic, those with a pattern in one more list. An
/// event visits the first list, the list of its type (one dictionary lookup) and the patterns, so
/// an event for a topic with 10 subscribers among 10,000 costs O(10 + patterns), not O(10,000).
/// ``recipientCounts`` mirrors the index as counts for the broker, under its lock.
///
/// The queue is bounded: ``isOverloaded`` tells the broker to push publishers back (see
/// ``BrokerConfiguration/maxQueuedEvents``) instead of accepting work the loop cannot do, which
/// would make healthy clients look slow to the tolerance policy and grow memory without limit.
///
/// Threading: `enqueue` and the pending counters are thread-safe; ``registeredCount`` and
/// ``recipientCounts`` are guarded by the broker's registry lock; everything else (the subscriber
/// lists, the heartbeat) is confined to ``eventLoop``.
final class LoopFanout: @unchecked Sendable {
    /// What the queue holds.
    enum Item {
        /// An event for every subscriber of the loop whose topics match `type` (normalised:
        /// `message` for an untyped event). `work` is its size times the subscribers it was
        /// queued for, as counted in ``pendingBytes``.
        case broadcast(ByteBuffer, eventID: UInt64, type: String, publishedAt: UInt64, work: Int)
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
    /// The broker's ``LoopPollSignal``, if it has one now.
    private let pollSignal: @Sendable () -> (any LoopPollSignal)?

    /// Connections registered on this loop. Guarded by the broker's registry lock.
    var registeredCount = 0
    /// How many of them each event type reaches. Guarded by the broker's registry lock.
    var recipientCounts = RecipientCounts()

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
    /// Every subscriber (heartbeats, shutdown).
    private var subscribers: [Subscription] = []
    /// The subscribers that asked for no topic: every event.
    private var unfiltered: [Subscription] = []
    /// The subscribers with a pattern among their topics, matched one by one.
    private var patterned: [Subscription] = []
    /// The subscribers with exact topics only, by topic (one entry per topic they have).
    private var byTopic: [String: [Subscription]] = [:]
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
    /// Connections events were offered to, and pattern subscribers matched against, since start
    /// (heartbeats not counted): what the topic index saves, for tests. Loop-confined.
    private(set) var eventVisits = 0

    init(
        eventLoop: any EventLoop,
        policy: TolerancePolicy,
        counters: BrokerCounters,
        fanoutTimer: CoreMetrics.Timer,
        maxQueuedEvents: Int,
        maxQueuedBytes: Int,
        onRoom: @escaping @Sendable (Int) -> Void,
        pollSignal: @escaping @Sendable () -> (any LoopPollSignal)? = { nil }
    ) {
        self.eventLoop = eventLoop
        self.policy = policy
        self.counters = counters
        self.fanoutTimer = fanoutTimer
        self.maxQueuedEvents = maxQueuedEvents
        self.maxQueuedBytes = maxQueuedBytes
        self.onRoom = onRoom
        self.pollSignal = pollSignal
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

    /// Queues an event for every subscriber of this loop whose topics match `type`. Callable from
    /// any thread; items are written in the order they were queued, which the broker makes the
    /// event id order.
    /// - Parameters:
    ///   - type: the event's type, normalised (``TopicFilter/normalize(_:)``).
    ///   - recipients: the subscribers it is for now (``recipientCounts``), for the work estimate.
    func enqueue(_ buffer: ByteBuffer, eventID: UInt64, type: String, publishedAt: UInt64, recipients: Int) {
        let work = buffer.readableBytes * max(recipients, 1)
        self.pendingEvents.add(1, ordering: .relaxed)
        self.pendingBytes.add(work, ordering: .relaxed)
        self.append(.broadcast(buffer, eventID: eventID, type: type, publishedAt: publishedAt, work: work))
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

    /// Adds a connection to the loop's lists; the broker registered it already.
    func add(_ subscription: Subscription) {
        self.eventLoop.assertInEventLoop()
        subscription.slot = self.subscribers.count
        self.subscribers.append(subscription)
        let topics = subscription.topics
        if topics.isEverything {
            subscription.groupSlot = self.unfiltered.count
            self.unfiltered.append(subscription)
        } else if topics.hasPatterns {
            subscription.groupSlot = self.patterned.count
            self.patterned.append(subscription)
        } else {
            subscription.topicSlots = topics.topics.map { topic in
                let slot = self.byTopic[topic.rawValue]?.count ?? 0
                self.byTopic[topic.rawValue, default: []].append(subscription)
                return slot
            }
        }
    }

    /// Removes a connection from the loop's lists: O(its topics) (swap with the last; order within
    /// a loop does not matter), deferred while a delivery iterates the lists.
    func remove(_ subscription: Subscription) {
        self.eventLoop.assertInEventLoop()
        guard subscription.slot >= 0 else { return }
        if self.isIterating {
            self.deferredRemovals.append(subscription)
            return
        }
        let slot = subscription.slot
        guard slot < self.subscribers.count, self.subscribers[slot] === subscription else { return }
        Self.remove(subscription, from: &self.subscribers, slot: \.slot)
        let topics = subscription.topics
        if topics.isEverything {
            Self.remove(subscription, from: &self.unfiltered, slot: \.groupSlot)
        } else if topics.hasPatterns {
            Self.remove(subscription, from: &self.patterned, slot: \.groupSlot)
        } else {
            for (index, topic) in topics.topics.enumerated() where index < subscription.topicSlots.count {
                let key = topic.rawValue
                let slot = subscription.topicSlots[index]
                guard let list = self.byTopic[key], slot < list.count, list[slot] === subscription else { continue }
                // In place: the dictionary's storage and the list are mutated, never copied.
                let last = self.byTopic[key]!.removeLast()
                if last !== subscription {
                    self.byTopic[key]![slot] = last
                    if let position = last.topics.topics.firstIndex(of: topic) {
                        last.topicSlots[position] = slot
                    }
                }
                if self.byTopic[key]!.isEmpty {
                    self.byTopic[key] = nil
                }
            }
            subscription.topicSlots = []
        }
    }

    /// Swaps `subscription` with the last of `list` and drops it; `slot` is where each keeps its position.
    private static func remove(
        _ subscription: Subscription,
        from list: inout [Subscription],
        slot: ReferenceWritableKeyPath<Subscription, Int>
    ) {
        let position = subscription[keyPath: slot]
        guard position >= 0, position < list.count, list[position] === subscription else { return }
        let last = list.removeLast()
        if last !== subscription {
            list[position] = last
            last[keyPath: slot] = position
        }
        subscription[keyPath: slot] = -1
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
            // The batch's last event is the last write of this turn to any connection: each
            // connection it reaches is flushed as soon as it is written (with what earlier events of
            // the batch left for it: still one write per connection), instead of after all of them.
            // A lone event at a low rate reached its first subscriber only once the whole fan-out had
            // been buffered (p50 +30% against nchan to 1,000).
            let flushing = self.drainIndex == self.draining.count
            switch item {
            case .broadcast(let buffer, let eventID, let type, let publishedAt, let work):
                writes += self.writeToMatching(buffer, eventID: eventID, type: type, publishedAt: publishedAt, flushing: flushing)
                eventsDone += 1
                bytesDone += work
            case .targeted(let buffer, let eventID, let subscription, let publishedAt):
                writes += 1
                self.write(buffer, eventID: eventID, to: subscription, publishedAt: publishedAt, flushing: flushing)
                eventsDone += 1
                bytesDone += buffer.readableBytes
            case .close(let farewell, let spread):
                self.flushDirty()
                self.closeAll(farewell: farewell, spread: spread)
            }
        }
        self.finishTurn(events: eventsDone, bytes: bytesDone)
        // The turn's budget is spent and more is queued: let the loop serve its sockets (reads,
        // writes, closes) first. NIO runs tasks until none is runnable before it polls again, so a
        // loop fed faster than it drains would never read (its producers' requests would sit in
        // their sockets until the keep-alive timeout closed them) nor notice a closed socket.
        // Neither `execute` nor a task scheduled a moment ahead waits for the poll: the tasks this
        // turn caused (answers to the producers it made room for) can outlast the moment, and the
        // rest of the drain then runs before any poll, turn after turn. An I/O event does wait:
        // the broker's poll signal, if it has one for this loop.
        if let signal = self.pollSignal(), signal.afterNextPoll(on: self.eventLoop, { self.drain() }) {
            return
        }
        self.eventLoop.scheduleTask(in: Self.yieldDelay) { self.drain() }
    }

    /// Without a ``LoopPollSignal``, how far ahead a drain that used its turn's budget schedules the
    /// rest: the loop polls first if the tasks queued meanwhile take less (not guaranteed, see
    /// above), and it is short next to the turn itself (tens of milliseconds).
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

    /// What offering one buffer to a list of subscribers did.
    private struct Tally {
        var offered = 0
        var written = 0
        var missed = 0
    }

    /// Offers `buffer` to every subscriber (heartbeats). - Returns: the subscribers it was offered to.
    @discardableResult
    private func writeToAll(_ buffer: ByteBuffer, eventID: UInt64, publishedAt: UInt64?) -> Int {
        var tally = Tally()
        self.isIterating = true
        self.offer(buffer, eventID: eventID, isEvent: publishedAt != nil, to: self.subscribers, flushing: false, tally: &tally)
        self.isIterating = false
        self.applyDeferredRemovals()
        if let publishedAt {
            self.record(tally, size: buffer.readableBytes, publishedAt: publishedAt)
        }
        return tally.offered
    }

    /// Offers an event to the subscribers whose topics match `type`: the unfiltered ones, the list
    /// of `type` and the pattern subscribers that match — never the others.
    /// - Returns: the subscribers it was offered to.
    /// - Parameter flushing: flush each connection written to at once (the turn's last event).
    private func writeToMatching(
        _ buffer: ByteBuffer,
        eventID: UInt64,
        type: String,
        publishedAt: UInt64,
        flushing: Bool
    ) -> Int {
        var tally = Tally()
        self.isIterating = true
        self.offer(buffer, eventID: eventID, isEvent: true, to: self.unfiltered, flushing: flushing, tally: &tally)
        if !self.byTopic.isEmpty, let list = self.byTopic[type] {
            self.offer(buffer, eventID: eventID, isEvent: true, to: list, flushing: flushing, tally: &tally)
        }
        // Every pattern subscriber is matched; only those that match are offered the event.
        self.eventVisits += tally.offered + self.patterned.count
        for subscriber in self.patterned where subscriber.topics.matches(normalized: type) {
            self.offer(buffer, eventID: eventID, to: subscriber, flushing: flushing, tally: &tally)
        }
        self.isIterating = false
        self.applyDeferredRemovals()
        self.record(tally, size: buffer.readableBytes, publishedAt: publishedAt)
        return tally.offered
    }

    private func record(_ tally: Tally, size: Int, publishedAt: UInt64) {
        self.record(written: tally.written, bytes: tally.written * size, missed: tally.missed, publishedAt: publishedAt)
    }

    @inline(__always)
    private func offer(
        _ buffer: ByteBuffer,
        eventID: UInt64,
        isEvent: Bool,
        to list: [Subscription],
        flushing: Bool,
        tally: inout Tally
    ) {
        for index in 0..<list.count {
            self.offer(buffer, eventID: eventID, isEvent: isEvent, to: list[index], flushing: flushing, tally: &tally)
        }
    }

    @inline(__always)
    private func offer(
        _ buffer: ByteBuffer,
        eventID: UInt64,
        isEvent: Bool = true,
        to subscriber: Subscription,
        flushing: Bool,
        tally: inout Tally
    ) {
        tally.offered += 1
        switch subscriber.offer(buffer, eventID: eventID, isEvent: isEvent, policy: self.policy, flushing: flushing) {
        case .written:
            tally.written += 1
            if !flushing { self.markDirty(subscriber) }
        case .missed:
            tally.missed += 1
        case .skipped:
            break
        }
    }

    private func write(_ buffer: ByteBuffer, eventID: UInt64, to subscriber: Subscription, publishedAt: UInt64, flushing: Bool) {
        guard subscriber.slot >= 0 else { return }  // gone since the event was queued
        self.isIterating = true  // a flush may close the connection: its removal waits
        let offer = subscriber.offer(buffer, eventID: eventID, isEvent: true, policy: self.policy, flushing: flushing)
        self.isIterating = false
        self.applyDeferredRemovals()
        switch offer {
        case .written:
            if !flushing { self.markDirty(subscriber) }
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
        for subscriber in self.dirty where subscriber.needsFlush {
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

/// How many subscribers of one loop an event of each type reaches: the loop's topic index
/// (``LoopFanout``) as counts, kept by the broker under its registry lock, so that a publish knows
/// how many connections it is for — the `delivered` of a `202`, and the work a loop's queue bound
/// counts — without visiting them: O(1 + distinct pattern filters) per loop.
struct RecipientCounts {
    /// Subscribers that asked for no topic.
    private(set) var unfiltered = 0
    /// Subscribers with exact topics only, per topic.
    private var exact: [String: Int] = [:]
    /// Subscribers with a pattern, by their whole filter: each is counted once, however many of
    /// its topics match, and connections with the same topics are matched once.
    private var patterned: [TopicFilter: Int] = [:]

    mutating func add(_ topics: TopicFilter) {
        if topics.isEverything {
            self.unfiltered += 1
        } else if topics.hasPatterns {
            self.patterned[topics, default: 0] += 1
        } else {
            for topic in topics.exact {
                self.exact[topic, default: 0] += 1
            }
        }
    }

    mutating func remove(_ topics: TopicFilter) {
        if topics.isEverything {
            self.unfiltered -= 1
        } else if topics.hasPatterns {
            Self.decrement(&self.patterned, topics)
        } else {
            for topic in topics.exact {
                Self.decrement(&self.exact, topic)
            }
        }
    }

    private static func decrement<Key: Hashable>(_ counts: inout [Key: Int], _ key: Key) {
        let left = counts[key, default: 1] - 1
        counts[key] = left > 0 ? left : nil
    }

    /// The subscribers an event of `type` (normalised) reaches.
    @inline(__always)
    func recipients(ofType type: String) -> Int {
        if self.exact.isEmpty && self.patterned.isEmpty { return self.unfiltered }
        var count = self.unfiltered + (self.exact[type] ?? 0)
        for (topics, subscribers) in self.patterned where topics.matches(normalized: type) {
            count += subscribers
        }
        return count
    }
}
