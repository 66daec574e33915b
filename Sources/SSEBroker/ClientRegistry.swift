import Foundation
import NIOCore

/// Everything the broker shares between threads, kept under one lock by ``Broker``.
///
/// Nothing here is proportional to the number of connections per operation: a connect or a
/// disconnect is a few dictionary operations, a broadcast one queue append per event loop. The
/// subscribers themselves live with their loop's ``LoopFanout``, confined to that loop, so a
/// storm of disconnects on one loop never copies another's list, or its own, under this lock.
struct ClientRegistry {
    /// One per event loop with subscribers, keyed by the loop.
    var fanouts: [ObjectIdentifier: LoopFanout] = [:]
    /// The connections of each client id (usually one): for `broadcastTo`, `kick`, presence.
    var byClientID: [String: [Subscription]] = [:]
    private(set) var connectionCount = 0
    var nextEventID: UInt64
    var history: ReplayHistory
    var listeners: [UInt64: AsyncStream<Event>.Continuation] = [:]
    var activityListeners: [UInt64: AsyncStream<BrokerActivity>.Continuation] = [:]
    var nextListenerKey: UInt64 = 0
    /// Bans by client id: the monotonic deadline checked at each connect, and the ban as it is shown and stored.
    var bans: [String: (deadline: NIODeadline, ban: Ban)] = [:]
    /// Where bans are kept across a restart, stand-alone (``Broker/useBanStore(_:)``).
    var banStore: (any BanStore)?
    var recentDisconnections = CircularBuffer<Disconnection>(initialCapacity: 256)
    var isShutDown = false
    /// Set when a backplane is attached: ids come from a log shared by several nodes.
    var backplane: (any EventBackplane)?
    /// The counts behind the per-topic metrics (``BrokerConfiguration/metricsTopics``).
    var topicMetrics: TopicMetricCounts

    init(history: ReplayHistory, nextEventID: UInt64, metricsTopics: [Topic] = []) {
        self.topicMetrics = TopicMetricCounts(topics: metricsTopics)
        self.history = history
        self.nextEventID = nextEventID
    }

    /// Registers `subscription` (its loop's fan-out must be in ``fanouts``).
    mutating func insert(_ subscription: Subscription) {
        subscription.fanout.registeredCount += 1
        subscription.fanout.recipientCounts.add(subscription.topics)
        self.topicMetrics.subscribed(subscription.topics, by: 1)
        self.connectionCount += 1
        self.byClientID[subscription.clientID, default: []].append(subscription)
    }

    /// Removes exactly this connection (never another one with the same client id).
    /// - Returns: whether it was registered, and its loop's fan-out if that has no subscriber left
    ///   (it is dropped from ``fanouts``: a loop without subscribers keeps nothing).
    mutating func remove(_ subscription: Subscription) -> (removed: Bool, idle: LoopFanout?) {
        let clientID = subscription.clientID
        // In place: the dictionary's storage and the (short) array are mutated, never copied.
        guard let index = self.byClientID[clientID]?.firstIndex(where: { $0 === subscription }) else {
            return (false, nil)
        }
        self.byClientID[clientID]!.remove(at: index)
        if self.byClientID[clientID]!.isEmpty {
            self.byClientID[clientID] = nil
        }
        self.connectionCount -= 1
        let fanout = subscription.fanout
        fanout.registeredCount -= 1
        fanout.recipientCounts.remove(subscription.topics)
        self.topicMetrics.subscribed(subscription.topics, by: -1)
        guard fanout.registeredCount == 0 else { return (true, nil) }
        let key = ObjectIdentifier(fanout.eventLoop)
        if self.fanouts[key] === fanout {
            self.fanouts[key] = nil
        }
        return (true, fanout)
    }

    /// Whether any loop has more accepted and undelivered work than its bounds allow: O(loops).
    var isOverloaded: Bool {
        self.fanouts.values.contains { $0.isOverloaded }
    }

    /// Every open connection: O(connections), for snapshots and shutdown, never per event.
    var allSubscriptions: [Subscription] {
        var all: [Subscription] = []
        all.reserveCapacity(self.connectionCount)
        for subscriptions in self.byClientID.values {
            all.append(contentsOf: subscriptions)
        }
        return all
    }

    /// Whether `clientID` is banned now; forgets bans that ran out.
    mutating func isBanned(_ clientID: String, now: NIODeadline) -> Bool {
        guard let until = self.bans[clientID]?.deadline else { return false }
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

/// Subscriptions and deliveries of the few topics an operator chose for metrics
/// (``BrokerConfiguration/metricsTopics``), kept under the registry lock: O(those topics) per
/// event, O(a connection's topics) per connect — never anything per client-sent topic.
struct TopicMetricCounts {
    let topics: [Topic]
    private let index: [String: Int]
    /// Connections that subscribed to each topic (the same string).
    private(set) var subscriptions: [Int]
    /// Event copies handed to connections, of events whose type each topic matches.
    private(set) var deliveries: [Int]

    init(topics: [Topic]) {
        self.topics = topics
        self.index = Dictionary(topics.enumerated().map { ($1.rawValue, $0) }, uniquingKeysWith: { first, _ in first })
        self.subscriptions = Array(repeating: 0, count: topics.count)
        self.deliveries = Array(repeating: 0, count: topics.count)
    }

    mutating func subscribed(_ filter: TopicFilter, by change: Int) {
        guard !self.topics.isEmpty else { return }
        for topic in filter.topics {
            if let position = self.index[topic.rawValue] {
                self.subscriptions[position] += change
            }
        }
    }

    /// An event of `type` (normalised) was handed to `recipients` connections.
    mutating func delivered(type: String, recipients: Int) {
        guard !self.topics.isEmpty, recipients > 0 else { return }
        for (position, topic) in self.topics.enumerated() where topic.matches(type) {
            self.deliveries[position] += recipients
        }
    }
}
