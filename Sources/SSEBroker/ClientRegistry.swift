import Foundation
import NIOCore

/// Everything the broker shares between threads, kept under one lock by ``Broker``.
///
/// Subscribers are grouped by event loop so a broadcast costs one task per loop. Their arrays are
/// copy-on-write: a broadcast captures them by reference in O(1) and hands them to the loop, so the
/// lock is held for a few pointer operations per loop, never per subscriber.
struct ClientRegistry {
    struct LoopBucket {
        var fanout: LoopFanout
        var subscribers: [Subscription] = []
        var heartbeat: RepeatedTask?
    }

    var buckets: [ObjectIdentifier: LoopBucket] = [:]
    var byClientID: [String: [Subscription]] = [:]
    var nextEventID: UInt64 = 0
    var history: ReplayHistory
    var listeners: [UInt64: AsyncStream<Event>.Continuation] = [:]
    var activityListeners: [UInt64: AsyncStream<BrokerActivity>.Continuation] = [:]
    var nextListenerKey: UInt64 = 0
    var bans: [String: NIODeadline] = [:]
    var recentDisconnections = CircularBuffer<Disconnection>(initialCapacity: 256)
    var isShutDown = false
    /// Set when a backplane is attached: ids come from a log shared by several nodes.
    var backplane: (any EventBackplane)?

    var connectionCount: Int {
        self.buckets.values.reduce(0) { $0 + $1.subscribers.count }
    }

    mutating func insert(_ subscription: Subscription) {
        let key = ObjectIdentifier(subscription.eventLoop)
        subscription.slot = self.buckets[key]!.subscribers.count
        self.buckets[key]!.subscribers.append(subscription)
        self.byClientID[subscription.clientID, default: []].append(subscription)
    }

    /// Removes exactly this connection (never another one with the same client id).
    /// - Returns: whether it was registered.
    mutating func remove(_ subscription: Subscription) -> Bool {
        let key = ObjectIdentifier(subscription.eventLoop)
        let slot = subscription.slot
        guard slot >= 0, var bucket = self.buckets[key], slot < bucket.subscribers.count,
            bucket.subscribers[slot] === subscription
        else { return false }
        // Swap-remove: O(1), order within a loop does not matter.
        let last = bucket.subscribers.removeLast()
        if last !== subscription {
            bucket.subscribers[slot] = last
            last.slot = slot
        }
        subscription.slot = -1
        self.buckets[key] = bucket
        if var sameID = self.byClientID[subscription.clientID] {
            sameID.removeAll { $0 === subscription }
            self.byClientID[subscription.clientID] = sameID.isEmpty ? nil : sameID
        }
        return true
    }

    /// The subscribers of `clientID` grouped by their loop's fan-out.
    func targets(of clientID: String) -> [(LoopFanout, [Subscription])] {
        guard let subscriptions = self.byClientID[clientID] else { return [] }
        var groups: [(LoopFanout, [Subscription])] = []
        for subscription in subscriptions {
            if let index = groups.firstIndex(where: { $0.0 === subscription.fanout }) {
                groups[index].1.append(subscription)
            } else {
                groups.append((subscription.fanout, [subscription]))
            }
        }
        return groups
    }

    /// Whether `clientID` is banned now; forgets bans that ran out.
    mutating func isBanned(_ clientID: String, now: NIODeadline) -> Bool {
        guard let until = self.bans[clientID] else { return false }
        if until <= now {
            self.bans[clientID] = nil
            return false
        }
        return true
    }

    mutating func record(_ disconnection: Disconnection) {
        if self.recentDisconnections.count == 256 {
            self.recentDisconnections.removeFirst()
        }
        self.recentDisconnections.append(disconnection)
    }

    func notify(_ activity: BrokerActivity) {
        for continuation in self.activityListeners.values {
            continuation.yield(activity)
        }
    }
}

/// A connection that ended, kept in ``Broker/recentDisconnections``.
public struct Disconnection: Sendable, Hashable {
    public var client: ClientInfo
    public var reason: DisconnectReason
    public var at: Date
}
