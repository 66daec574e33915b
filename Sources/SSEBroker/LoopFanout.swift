import CoreMetrics
import NIOCore
import Synchronization

/// Delivers encoded events to the subscribers of one event loop.
///
/// The broker hands it one task per event (never one per subscriber): the task writes the shared
/// buffer to each subscriber and the loop flushes once no further delivery is queued behind it.
/// So when events arrive faster than a loop turn, several events go to a client in one `writev`
/// — on loopback the per-write syscall dominates fan-out — and when traffic is light each event is
/// flushed as soon as it is written.
final class LoopFanout: @unchecked Sendable {
    let eventLoop: any EventLoop
    private let policy: TolerancePolicy
    private let counters: BrokerCounters
    /// Publish-to-written latency, recorded once per event per loop (never per subscriber).
    private let fanoutTimer: CoreMetrics.Timer
    /// Deliveries queued on the loop and not yet run. The last one to finish flushes.
    private let pendingDeliveries = Atomic<Int>(0)
    /// Loop-confined: subscribers written to since the last flush.
    private var dirty: [Subscription] = []

    init(eventLoop: any EventLoop, policy: TolerancePolicy, counters: BrokerCounters, fanoutTimer: CoreMetrics.Timer) {
        self.eventLoop = eventLoop
        self.policy = policy
        self.counters = counters
        self.fanoutTimer = fanoutTimer
    }

    /// Queues `buffer` for `subscribers` (all on this loop). Callable from any thread; tasks run in
    /// the order they were queued, which the broker makes the event id order.
    /// - Parameters:
    ///   - eventID: the event's id (a subscriber that resumed past it skips it); 0 for heartbeats.
    ///   - publishedAt: for events, when the event was published (`uptimeNanoseconds`);
    ///     `nil` for heartbeats, which are neither counted nor timed.
    func enqueue(_ buffer: ByteBuffer, eventID: UInt64, to subscribers: [Subscription], publishedAt: UInt64?) {
        self.pendingDeliveries.add(1, ordering: .relaxed)
        self.eventLoop.execute {
            self.deliver(buffer, eventID: eventID, to: subscribers, publishedAt: publishedAt)
        }
    }

    /// One event of a batch: what ``enqueue(_:eventID:to:publishedAt:)`` takes.
    struct Delivery {
        var buffer: ByteBuffer
        var eventID: UInt64
        var subscribers: [Subscription]
        var publishedAt: UInt64
    }

    /// Queues several events as one task, so the loop writes them all before it flushes: each
    /// subscriber gets them in one `writev`. For events that arrive together (a cluster's
    /// notifications of one commit).
    func enqueue(_ batch: [Delivery]) {
        self.pendingDeliveries.add(1, ordering: .relaxed)
        self.eventLoop.execute {
            for delivery in batch {
                self.write(delivery.buffer, eventID: delivery.eventID, to: delivery.subscribers, publishedAt: delivery.publishedAt)
            }
            if self.pendingDeliveries.subtract(1, ordering: .relaxed).newValue == 0 {
                self.flushDirty()
            }
        }
    }

    private func deliver(_ buffer: ByteBuffer, eventID: UInt64, to subscribers: [Subscription], publishedAt: UInt64?) {
        self.write(buffer, eventID: eventID, to: subscribers, publishedAt: publishedAt)
        if self.pendingDeliveries.subtract(1, ordering: .relaxed).newValue == 0 {
            self.flushDirty()
        }
    }

    private func write(_ buffer: ByteBuffer, eventID: UInt64, to subscribers: [Subscription], publishedAt: UInt64?) {
        let isEvent = publishedAt != nil
        var written = 0
        var missed = 0
        for subscriber in subscribers {
            switch subscriber.offer(buffer, eventID: eventID, isEvent: isEvent, policy: self.policy) {
            case .written:
                written += 1
                if !subscriber.needsFlush {
                    subscriber.needsFlush = true
                    self.dirty.append(subscriber)
                }
            case .missed:
                missed += 1
            case .skipped:
                break
            }
        }
        if let publishedAt {
            self.counters.recordDelivery(written: written, bytes: written * buffer.readableBytes, missed: missed)
            let now = NIODeadline.now().uptimeNanoseconds
            self.fanoutTimer.recordNanoseconds(Int64(truncatingIfNeeded: now &- publishedAt))
        }
    }

    private func flushDirty() {
        for subscriber in self.dirty {
            subscriber.flush()
        }
        self.dirty.removeAll(keepingCapacity: true)
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
    /// Refused HTTP requests by status code. Refusals are rare; a lock is cheaper than a slot per code.
    // Refusals are rare (and cheap next to the socket work of one), so one small lock will do.
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
