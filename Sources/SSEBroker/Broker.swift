import CoreMetrics
import Foundation
import Logging
import NIOCore
import HTTPTypes
import Synchronization

/// The SSE broker: a registry of subscriber connections and the fan-out of events to them.
///
/// Thread-safe. Publishing takes one short lock to assign the event id, append it to the replay
/// history and to each event loop's queue; the writes happen on the loops, each to its own list of
/// subscribers (see ``LoopFanout``), so nothing under the lock grows with the number of
/// connections. What is queued is bounded: past the bound publishers are pushed back
/// (``BrokerConfiguration/maxQueuedEvents``). A client that does not keep up never slows anyone
/// down: see ``TolerancePolicy``.
public final class Broker: EventBroker {
    /// The configuration in force.
    public let configuration: BrokerConfiguration
    private let policy: TolerancePolicy
    private let logger: Logger
    private let registry: Locked<ClientRegistry>
    private let counters = BrokerCounters()
    private let metrics: BrokerMetrics
    private let connectionIDs = Atomic<UInt64>(0)
    private let heartbeat = EventEncoder.comment("heartbeat")
    private let journal: (any EventJournal)?
    private let auditSink: (any AuditSink)?
    /// Whether a backplane was attached: read on every HTTP publish (``backplane``), which would
    /// otherwise take the registry lock just to find none. Set once, under the lock, never cleared.
    private let hasBackplane = Atomic<Bool>(false)
    /// Publishers waiting for the loops to catch up (``BrokerConfiguration/maxQueuedEvents``).
    let roomWaiters = RoomWaiters()
    /// How a drain behind on its queue lets its loop poll before it goes on (``useLoopPollSignal(_:)``).
    private let pollSignal = Locked<(any LoopPollSignal)?>(nil)

    /// Creates a broker.
    /// - Parameters:
    ///   - configuration: the policy; validated here.
    ///   - logger: where connects, disconnects and kicks are logged. The library never bootstraps logging.
    ///   - metricsFactory: where the broker's metrics go (see ``updateMetrics()``); by default the
    ///     factory the application bootstrapped, a no-op if it bootstrapped none. The library never
    ///     bootstraps metrics.
    ///   - journal: where every event is recorded besides the in-memory replay history, such as a
    ///     durable history on disk; see ``restore(_:)`` for reading it back.
    ///   - audit: where every state-changing action is reported (publishes, kicks, bans, unbans);
    ///     called on the acting thread, an event loop included, so it must not block.
    public init(
        configuration: BrokerConfiguration = BrokerConfiguration(),
        logger: Logger = Logger(label: "sse.broker"),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        journal: (any EventJournal)? = nil,
        audit: (any AuditSink)? = nil
    ) throws(BrokerError) {
        try configuration.validate()
        self.configuration = configuration
        self.policy = TolerancePolicy(configuration)
        self.logger = logger
        self.metrics = BrokerMetrics(factory: metricsFactory)
        self.journal = journal
        self.auditSink = audit
        let base = configuration.eventIDSeed.base
        self.registry = Locked(
            ClientRegistry(
                history: ReplayHistory(
                    maxCount: configuration.historySize,
                    maxBytes: configuration.historyByteLimit,
                    horizon: base
                ),
                nextEventID: base,
                metricsTopics: configuration.metricsTopics.compactMap { try? Topic($0) }
            )
        )
    }

    // MARK: Publishing

    @discardableResult
    public func broadcast(_ event: Event) throws(BrokerError) -> Delivery {
        try self.publishLocally(event, to: nil)
    }

    @discardableResult
    public func broadcast(_ event: Event, to clientID: String) throws(BrokerError) -> Delivery {
        try self.publishLocally(event, to: clientID)
    }

    /// Publishes `event` to every client (`target == nil`) or to every connection of `target`, through
    /// the attached ``EventBackplane`` if there is one (then the id comes from the shared log and
    /// every node delivers the event), else directly as ``broadcast(_:)`` does.
    ///
    /// When the broker is overloaded (more accepted and undelivered events than
    /// ``BrokerConfiguration/maxQueuedEvents`` or ``BrokerConfiguration/maxQueuedBytes`` on a loop)
    /// it waits for room, up to ``BrokerConfiguration/overloadWait``, then throws
    /// ``BrokerError/overloaded(_:)`` without publishing.
    @discardableResult
    public func publish(_ event: Event, to target: String?) async throws(BrokerError) -> Delivery {
        try await self.publish(event, to: target, idempotency: nil).delivery
    }

    /// Publishes `event` as ``publish(_:to:)`` does, under an `Idempotency-Key`: with a backplane the
    /// key goes with the event to the shared log, so a retry on any node gets the first publish's
    /// ``Delivery`` back instead of publishing again (see ``EventBackplane/publish(_:to:idempotency:)``).
    /// Stand-alone there is nothing to share: the event is published, and the server's own store
    /// (``IdempotencyStore`` in SSEBrokerServer) remembers the key.
    /// - Throws: what ``publish(_:to:)`` throws, and ``BrokerError/idempotencyKeyReused(_:)`` when the
    ///   shared log has the key for a different request.
    public func publish(
        _ event: Event,
        to target: String?,
        idempotency: IdempotencyKey?
    ) async throws(BrokerError) -> IdempotentDelivery {
        let deadline = ContinuousClock.now + self.configuration.overloadWait
        var delayed = false
        func noteDelay() {  // counted once per publish, however often it waits
            if !delayed { self.counters.delayed.add(1, ordering: .relaxed) }
            delayed = true
        }
        while true {
            guard let backplane = self.backplane else {
                do throws(BrokerError) {
                    return IdempotentDelivery(delivery: try self.publishLocally(event, to: target), replayed: false)
                } catch {
                    guard case .overloaded = error else { throw error }
                    noteDelay()
                    guard await self.waitForRoom(until: deadline) else { throw error }
                    continue
                }
            }
            try Self.validate(event, target: target)
            guard !self.isShuttingDown else { throw .shuttingDown }
            // The shared log cannot refuse an event on this node's behalf: wait here, before it is
            // committed, for this node's loops (the other nodes' producers wait on theirs).
            if self.registry.withLock({ $0.isOverloaded }) {
                noteDelay()
                guard await self.waitForRoom(until: deadline) else {
                    throw .overloaded(Self.overloadMessage(self.configuration))
                }
                continue
            }
            let published: IdempotentDelivery
            if let idempotency {
                published = try await backplane.publish(event, to: target, idempotency: idempotency)
            } else {
                published = IdempotentDelivery(delivery: try await backplane.publish(event, to: target), replayed: false)
            }
            if !published.replayed {
                self.counters.published.add(1, ordering: .relaxed)
                self.auditPublish(event, to: target, published.delivery)
            }
            return published
        }
    }

    private static func overloadMessage(_ configuration: BrokerConfiguration) -> String {
        "the broker has more events waiting for delivery than it accepts (\(configuration.maxQueuedEvents) events "
            + "or \(configuration.maxQueuedBytes) bytes per event loop); retry later"
    }

    /// Waits until no loop is overloaded (true) or until `deadline` (false).
    private func waitForRoom(until deadline: ContinuousClock.Instant) async -> Bool {
        while ContinuousClock.now < deadline {
            let waiter = RoomWaiters.Waiter()
            // Registered before the check, so a drain that makes room after it wakes this waiter.
            self.roomWaiters.add(waiter)
            if !self.registry.withLock({ $0.isOverloaded }) {
                waiter.wake()  // unused: a drain's wake-ups skip it
                return true
            }
            await waiter.wait(until: deadline)
        }
        return !self.registry.withLock { $0.isOverloaded }
    }

    /// The backplane publishes go through; `nil` for a stand-alone broker.
    public var backplane: (any EventBackplane)? {
        guard self.hasBackplane.load(ordering: .acquiring) else { return nil }
        return self.registry.withLock { $0.backplane }
    }

    /// Routes every ``publish(_:to:)`` through `backplane` from now on. The synchronous
    /// ``broadcast(_:)`` then throws ``BrokerError/unavailable(_:)``: only the backplane can assign ids,
    /// so the broker's own id seed is dropped (ids start from the shared log's). Attach it before the
    /// server starts.
    public func attach(_ backplane: any EventBackplane) {
        self.registry.withLock { registry in
            registry.backplane = backplane
            self.hasBackplane.store(true, ordering: .releasing)
            if registry.history.count == 0 {
                registry.nextEventID = 0
                registry.history.restart(from: [], floor: 0)
            }
        }
    }

    private static func validate(_ event: Event, target: String?) throws(BrokerError) {
        if let type = event.type {
            try Validation.validateEventType(type)
        }
        if let target {
            try Validation.validateClientID(target)
        }
    }

    private func publishLocally(_ event: Event, to target: String?) throws(BrokerError) -> Delivery {
        try Self.validate(event, target: target)
        let publishedAt = NIODeadline.now().uptimeNanoseconds
        // Encode outside the lock; only the id line is appended under it.
        var encoded = EventEncoder.encodeFields(type: event.type, data: event.data)
        let delivery = try self.registry.withLock { registry throws(BrokerError) -> Delivery in
            guard !registry.isShutDown else { throw .shuttingDown }
            guard registry.backplane == nil else {
                throw .unavailable("this broker is a cluster node: publish with publish(_:to:), which gets the id from the shared log")
            }
            // Looked up once: the fan-out is handed the target's connections.
            var connections: [Subscription]?
            if let target {
                guard let found = registry.byClientID[target] else { throw .unknownClient(target) }
                connections = found
            }
            guard !registry.isOverloaded else { throw .overloaded(Self.overloadMessage(self.configuration)) }
            registry.nextEventID += 1
            let id = registry.nextEventID
            EventEncoder.appendID(id, to: &encoded)
            let logged = LoggedEvent(id: id, type: event.type, data: event.data, target: target, origin: event.origin)
            let recipients = self.fanOut(
                logged, encoded: encoded, publishedAt: publishedAt, to: connections, in: &registry
            )
            return Delivery(eventID: id, recipients: recipients)
        }
        self.counters.published.add(1, ordering: .relaxed)
        self.auditPublish(event, to: target, delivery)
        return delivery
    }

    /// Delivers an event whose id was assigned elsewhere — by a cluster's shared log — to this broker's
    /// clients and listeners, and keeps it for replay. Call it with ids in increasing order, from
    /// one task; an id not above ``lastEventID`` was delivered already and is ignored.
    /// - Returns: how many connections it was handed to (0 for a targeted event whose client is not here).
    @discardableResult
    public func deliver(_ event: LoggedEvent) -> Int {
        self.deliver(contentsOf: [event])
    }

    /// Delivers several events with ids assigned elsewhere, in order, as ``deliver(_:)`` does — but as
    /// one task per event loop, so each client gets them in one write. For events that arrived
    /// together (the notifications of one commit).
    /// - Returns: how many deliveries to connections were made, all events together.
    @discardableResult
    public func deliver(contentsOf events: [LoggedEvent]) -> Int {
        guard !events.isEmpty else { return 0 }
        let publishedAt = NIODeadline.now().uptimeNanoseconds
        let encoded = events.map { event in
            var buffer = EventEncoder.encodeFields(type: event.type, data: event.data)
            EventEncoder.appendID(event.id, to: &buffer)
            return buffer
        }
        return self.registry.withLock { registry in
            guard !registry.isShutDown else { return 0 }
            var recipients = 0
            // Queued under the lock, like single events, so every loop receives events in id order;
            // the loop writes all that arrived together before it flushes.
            for (event, buffer) in zip(events, encoded) where event.id > registry.nextEventID {
                registry.nextEventID = event.id
                recipients += self.fanOut(event, encoded: buffer, publishedAt: publishedAt, in: &registry)
            }
            return recipients
        }
    }

    /// Seeds the replay history with events published before this broker started — from a durable
    /// history or a cluster's shared log — so clients resume across a restart. Ids continue after the
    /// newest. Call it before the server accepts connections, with events in increasing id order.
    /// - Parameter floor: ids continue after this one at least: after a crash, the ids of events that
    ///   were handed out but never stored must not be given to new events (a client that saw one
    ///   would skip the new one when it resumes).
    ///
    /// A resume from before the first restored event (or from between the last one and `floor`)
    /// is announced as a gap (``ReplayStatus``). Ids continue after the newest of the restored ids,
    /// `floor` and the broker's own seed (``BrokerConfiguration/eventIDSeed``).
    public func restore(_ events: some Sequence<LoggedEvent>, continuingAfter floor: UInt64 = 0) {
        var entries: [ReplayHistory.Entry] = []
        var last: UInt64 = 0
        for event in events where event.id > last {
            var encoded = EventEncoder.encodeFields(type: event.type, data: event.data)
            EventEncoder.appendID(event.id, to: &encoded)
            let type = TopicFilter.normalize(event.type)
            entries.append(ReplayHistory.Entry(id: event.id, type: type, target: event.target, encoded: encoded))
            last = event.id
        }
        self.registry.withLock { registry in
            let seed = registry.backplane == nil ? registry.nextEventID : 0
            registry.history.restart(from: entries, floor: floor)
            registry.nextEventID = max(seed, last, floor)
        }
    }

    /// Under the registry lock: hands `encoded` to every loop with a recipient (a connection whose
    /// topics match the event's type), keeps it for replay, journals it and tells the listeners.
    /// Queued under the lock so every loop receives events in id order.
    /// - Parameter connections: a targeted event's recipients, when the caller looked them up
    ///   already (`nil`: looked up here).
    /// - Returns: the number of connections it was handed to.
    private func fanOut(
        _ event: LoggedEvent,
        encoded: ByteBuffer,
        publishedAt: UInt64,
        to connections: [Subscription]? = nil,
        in registry: inout ClientRegistry
    ) -> Int {
        let type = TopicFilter.normalize(event.type)
        registry.history.append(id: event.id, type: type, target: event.target, encoded: encoded)
        self.journal?.record(event)
        var recipients = 0
        if let target = event.target {
            // O(connections of the target): usually one.
            let connections = connections ?? registry.byClientID[target] ?? []
            for subscription in connections where subscription.topics.matches(normalized: type) {
                subscription.fanout.enqueue(encoded, eventID: event.id, to: subscription, publishedAt: publishedAt)
                recipients += 1
            }
        } else {
            // O(loops + pattern filters), whatever the number of connections: each loop writes to its
            // own lists, and counts its recipients from its topic index. A loop with none gets
            // nothing queued (its queue bound counts only work it will do).
            for fanout in registry.fanouts.values {
                let count = fanout.recipientCounts.recipients(ofType: type)
                guard count > 0 else { continue }
                fanout.enqueue(encoded, eventID: event.id, type: type, publishedAt: publishedAt, recipients: count)
                recipients += count
            }
        }
        registry.topicMetrics.delivered(type: type, recipients: recipients)
        if !registry.listeners.isEmpty {
            var published = event.event
            published.recipients = recipients
            for continuation in registry.listeners.values {
                if case .dropped = continuation.yield(published) {
                    self.counters.listenerDrops.add(1, ordering: .relaxed)
                }
            }
        }
        return recipients
    }

    // MARK: Listening

    public func listen() -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: Event.self,
            bufferingPolicy: .bufferingNewest(self.configuration.listenerBufferSize)
        )
        self.register(continuation, in: \.listeners)
        return stream
    }

    /// A stream of connects and disconnects (with the reason), for consoles and logs. Like
    /// ``listen()`` it is bounded and never slows the broker down.
    public func activity() -> AsyncStream<BrokerActivity> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: BrokerActivity.self,
            bufferingPolicy: .bufferingNewest(self.configuration.listenerBufferSize)
        )
        self.register(continuation, in: \.activityListeners)
        return stream
    }

    private func register<Element>(
        _ continuation: AsyncStream<Element>.Continuation,
        in listeners: WritableKeyPath<ClientRegistry, [UInt64: AsyncStream<Element>.Continuation]> & Sendable
    ) {
        let key: UInt64? = self.registry.withLock { registry in
            guard !registry.isShutDown else { return nil }
            registry.nextListenerKey += 1
            registry[keyPath: listeners][registry.nextListenerKey] = continuation
            return registry.nextListenerKey
        }
        guard let key else {
            continuation.finish()
            return
        }
        continuation.onTermination = { [weak self] _ in
            self?.registry.withLock { $0[keyPath: listeners][key] = nil }
        }
    }

    // MARK: Subscribers

    /// Registers a subscriber connection and writes the start of its stream: a comment (so a
    /// browser's `open` fires at once), the `retry:` hint, then the events it missed since
    /// `lastEventID`, in order, before any live event.
    ///
    /// Call it on `transport.eventLoop`, after the transport has sent its response head.
    /// - Parameters:
    ///   - clientID: the requested id; `nil` generates one.
    ///   - lastEventID: the `Last-Event-ID` the client sent, if any.
    ///   - topics: the event types it receives (live and replayed); ``TopicFilter/everything`` by default.
    ///   - remoteAddress: the peer, for the console.
    ///   - userAgent: the peer's `User-Agent`.
    ///   - transport: the connection to write into.
    /// - Throws: ``BrokerError/invalidClientID(_:)``, ``BrokerError/banned(_:)`` or ``BrokerError/shuttingDown``.
    public func subscribe(
        clientID: String?,
        lastEventID: String?,
        topics: TopicFilter = .everything,
        remoteAddress: String?,
        userAgent: String?,
        transport: any SubscriberTransport
    ) throws(BrokerError) -> Subscription {
        let loop = transport.eventLoop
        loop.preconditionInEventLoop()
        let clientID = clientID ?? Self.generateClientID()
        try Validation.validateClientID(clientID)

        let connectionID = self.connectionIDs.add(1, ordering: .relaxed).newValue
        let (subscription, replay, newFanout) = try self.registry.withLock {
            registry throws(BrokerError) -> (Subscription, ReplayHistory.Replay, Bool) in
            guard !registry.isShutDown else { throw .shuttingDown }
            guard !registry.isBanned(clientID, now: .now()) else { throw .banned(clientID) }
            let key = ObjectIdentifier(loop)
            let existing = registry.fanouts[key]
            let fanout = existing ?? self.makeFanout(on: loop)
            registry.fanouts[key] = fanout
            let subscription = Subscription(
                connectionID: connectionID,
                clientID: clientID,
                remoteAddress: remoteAddress,
                userAgent: userAgent,
                topics: topics,
                transport: transport,
                fanout: fanout,
                broker: self
            )
            registry.insert(subscription)
            // Taken under the same lock as the registration: every later event is delivered live,
            // every earlier one is in this list or skipped (its delivery may still be queued on the
            // loop) — no gap, no duplicate.
            let isClusterNode = registry.backplane != nil
            let replay = registry.history.replay(
                after: lastEventID,
                newestID: registry.nextEventID,
                for: clientID,
                topics: topics,
                idsAheadAreLive: isClusterNode
            )
            subscription.skipThrough = registry.nextEventID
            if let lastEventID {
                subscription.recordResume(from: lastEventID, replayed: replay.events.count)
            }
            if isClusterNode, let resumeAfter = lastEventID.flatMap({ UInt64($0.trimmingCharacters(in: .whitespaces)) }) {
                // Ids are cluster-wide: another node may already have sent this client events that
                // this node has yet to deliver. Never send them twice.
                subscription.skipThrough = max(subscription.skipThrough, resumeAfter)
            }
            registry.notify(.connected(subscription.info()))
            return (subscription, replay, existing == nil)
        }
        // On the loop, which is the only place its list is touched: queued deliveries see it next.
        let fanout = subscription.fanout
        if newFanout {
            fanout.startHeartbeat(every: self.configuration.heartbeatInterval, comment: self.heartbeat)
        }
        fanout.add(subscription)
        self.counters.accepted.add(1, ordering: .relaxed)
        transport.streamWillStart(replay: replay.status)
        var gap: ByteBuffer?
        if case .gap(let oldestID) = replay.status, let lastEventID {
            gap = ReplayStatus.gapEvent(lastEventID: lastEventID, oldestID: oldestID, newestID: subscription.skipThrough)
        }
        subscription.start(
            preamble: EventEncoder.preamble(clientID: clientID, retry: self.jitteredRetry()),
            gap: gap,
            replay: replay.events,
            policy: self.policy
        )
        // At debug: a line per connection is written on the event loop, and in a storm (10,000
        // clients at once) those writes alone held events back by a hundred milliseconds.
        self.logger.debug(
            "client connected",
            metadata: [
                "client": "\(clientID)", "connection": "\(connectionID)",
                "remote": "\(remoteAddress ?? "-")", "replayed": "\(replay.events.count)",
                "topics": "\(topics.isEverything ? "(all)" : topics.names.joined(separator: ","))",
                "replay": "\(replay.status?.headerValue ?? "-")",
            ]
        )
        return subscription
    }

    /// What a resume from `lastEventID` would find now, for a server that must send its response
    /// head before it subscribes (``subscribe(clientID:lastEventID:topics:remoteAddress:userAgent:transport:)``
    /// decides again, and announces a gap in the stream in any case). `nil` without a `lastEventID`.
    public func replayStatus(after lastEventID: String?) -> ReplayStatus? {
        self.registry.withLock { registry in
            registry.history.replay(
                after: lastEventID,
                newestID: registry.nextEventID,
                for: "",
                topics: .everything,
                idsAheadAreLive: registry.backplane != nil
            ).status
        }
    }

    private func makeFanout(on loop: any EventLoop) -> LoopFanout {
        LoopFanout(
            eventLoop: loop,
            policy: self.policy,
            counters: self.counters,
            fanoutTimer: self.metrics.fanoutTimer,
            maxQueuedEvents: self.configuration.maxQueuedEvents,
            maxQueuedBytes: self.configuration.maxQueuedBytes,
            onRoom: { [roomWaiters] room in roomWaiters.wake(first: room) },
            pollSignal: { [pollSignal] in pollSignal.withLock { $0 } }
        )
    }

    /// Has a fan-out that used its turn wait for its loop's next poll through `signal` before it
    /// goes on, so that a loop behind on its queue still reads its sockets (see ``LoopPollSignal``);
    /// `nil` goes back to a task scheduled a moment ahead. `BrokerServer` sets one for its loops
    /// when it starts.
    public func useLoopPollSignal(_ signal: (any LoopPollSignal)?) {
        self.pollSignal.withLock { $0 = signal }
    }

    /// The `retry:` hint for one connection: ``BrokerConfiguration/retry`` plus up to
    /// ``BrokerConfiguration/retryJitter`` of it, drawn per connection.
    private func jitteredRetry() -> Duration? {
        guard let retry = self.configuration.retry else { return nil }
        let jitter = self.configuration.retryJitter
        guard jitter > 0, retry > .zero else { return retry }
        return retry * (1 + Double.random(in: 0...jitter))
    }

    /// Called by ``Subscription/transportClosed()``, on the subscription's loop.
    func remove(_ subscription: Subscription, reason: DisconnectReason) {
        subscription.fanout.remove(subscription)
        let info = subscription.info()
        let (removed, idle) = self.registry.withLock { registry -> (Bool, LoopFanout?) in
            let (removed, idle) = registry.remove(subscription)
            guard removed else { return (false, nil) }
            registry.record(Disconnection(client: info, reason: reason, at: Date()))
            registry.notify(.disconnected(info, reason))
            return (true, idle)
        }
        // A loop without subscribers keeps nothing: otherwise its heartbeat would keep a short-lived
        // loop (tests, a restarted group) alive for ever.
        idle?.stop()
        guard removed else { return }
        switch reason {
        case .kicked: self.counters.kicked.add(1, ordering: .relaxed)
        case .banned:
            self.counters.kicked.add(1, ordering: .relaxed)
            self.counters.banned.add(1, ordering: .relaxed)
        case .overTolerance: self.counters.overTolerance.add(1, ordering: .relaxed)
        case .closed, .shutdown, .expired: break
        }
        // Ordinary ends at debug, like connects; what an operator or the policy did at notice.
        let level: Logger.Level = reason == .closed || reason == .shutdown || reason == .expired ? .debug : .notice
        self.logger.log(
            level: level,
            "client disconnected",
            metadata: [
                "client": "\(info.clientID)", "connection": "\(info.connectionID)", "reason": "\(reason)",
                "events": "\(info.eventsSent)", "errors": "\(info.totalErrors)",
            ]
        )
    }

    /// A fresh random client id (12 hex digits) for a subscriber that did not ask for one.
    public static func generateClientID() -> String {
        let value = UInt64.random(in: 0..<(1 << 48))
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 12 - hex.count) + hex
    }

    // MARK: Control

    /// Disconnects every connection of `clientID`; each `EventSource` reconnects after its retry delay.
    @discardableResult
    public func kick(_ clientID: String) throws(BrokerError) -> Int {
        let closed = try self.close(clientID, reason: .kicked)
        self.audit("kick", origin: .api, ["client": clientID, "closed": "\(closed)", "nodes": "1"])
        return closed
    }

    /// Disconnects `clientID` and refuses it with `204 No Content` (which tells an `EventSource` to
    /// stop reconnecting) until `duration` has passed, or until ``unban(_:)`` if `duration` is `nil`.
    /// Banning an id that is not connected is allowed. On this broker only, and kept in the
    /// ``BanStore`` if there is one; a cluster node bans everywhere with ``ban(_:for:origin:)``.
    /// - Returns: how many connections were closed.
    @discardableResult
    public func ban(_ clientID: String, for duration: Duration? = nil) throws(BrokerError) -> Int {
        let ban = try self.makeBan(clientID, for: duration, origin: .api)
        try self.store(ban)
        let closed = self.enforce(ban)
        self.audit("ban", origin: .api, Self.banArguments(ban, duration: duration, closed: ClosedConnections(connections: closed, nodes: closed > 0 ? 1 : 0)))
        return closed
    }

    /// Lifts a ban on this broker (and in its ``BanStore``). - Returns: whether `clientID` was banned.
    @discardableResult
    public func unban(_ clientID: String) -> Bool {
        let lifted = self.unbanLocally(clientID)
        if lifted { self.audit("unban", origin: .api, ["client": clientID]) }
        return lifted
    }

    private func unbanLocally(_ clientID: String) -> Bool {
        let (lifted, store) = self.registry.withLock { ($0.bans.removeValue(forKey: clientID) != nil, $0.banStore) }
        do {
            try store?.deleteBan(clientID: clientID)
        } catch {
            self.logger.error("could not delete a stored ban", metadata: ["client": "\(clientID)", "error": "\(error)"])
        }
        return lifted
    }

    /// The ids banned now.
    public var bannedClientIDs: [String] {
        self.bans.map(\.clientID)
    }

    /// The bans in force now, by client id.
    public var bans: [Ban] {
        self.registry.withLock { registry in
            let now = NIODeadline.now()
            return registry.bans.values.filter { $0.deadline > now }.map { $0.ban }.sorted { $0.clientID < $1.clientID }
        }
    }

    // MARK: Control everywhere

    /// Disconnects every connection of `clientID` — on every node when the backplane is a
    /// ``ClusterControl`` — and records the kick in the audit trail.
    /// - Throws: ``BrokerError/unknownClient(_:)`` when no connection (on no node) has that id.
    @discardableResult
    public func kick(_ clientID: String, origin: ActionOrigin) async throws(BrokerError) -> ClosedConnections {
        guard let control = self.backplane as? any ClusterControl else { return try self.kickHere(clientID, origin: origin) }
        try Validation.validateClientID(clientID)
        let closed = try await control.kickEverywhere(clientID)
        guard closed.connections > 0 else { throw .unknownClient(clientID) }
        self.audit("kick", origin: origin, ["client": clientID, "closed": "\(closed.connections)", "nodes": "\(closed.nodes)"])
        return closed
    }

    /// Bans `clientID` as ``ban(_:for:)`` does — on every node, in the cluster's database, when the
    /// backplane is a ``ClusterControl`` — and records it, with `origin`, in the ban and the audit trail.
    @discardableResult
    public func ban(_ clientID: String, for duration: Duration?, origin: ActionOrigin) async throws(BrokerError)
        -> ClosedConnections
    {
        guard let control = self.backplane as? any ClusterControl else {
            return try self.banHere(clientID, for: duration, origin: origin)
        }
        let ban = try self.makeBan(clientID, for: duration, origin: origin)
        let closed = try await control.banEverywhere(ban)
        self.audit("ban", origin: origin, Self.banArguments(ban, duration: duration, closed: closed))
        return closed
    }

    /// Lifts the ban on `clientID`, on every node with a ``ClusterControl`` backplane.
    /// - Returns: whether it was banned.
    @discardableResult
    public func unban(_ clientID: String, origin: ActionOrigin) async throws(BrokerError) -> Bool {
        guard let control = self.backplane as? any ClusterControl else { return try self.unbanHere(clientID, origin: origin) }
        try Validation.validateClientID(clientID)
        let lifted = try await control.unbanEverywhere(clientID)
        _ = self.lift(banOf: clientID)
        if lifted { self.audit("unban", origin: origin, ["client": clientID]) }
        return lifted
    }

    /// What ``kick(_:origin:)`` does on a broker without a ``ClusterControl`` backplane, synchronously:
    /// for a caller that must not wait (a console's UI thread, which blocks on nothing stand-alone).
    @discardableResult
    public func kickHere(_ clientID: String, origin: ActionOrigin) throws(BrokerError) -> ClosedConnections {
        try Validation.validateClientID(clientID)
        let closed = ClosedConnections(connections: try self.close(clientID, reason: .kicked), nodes: 1)
        self.audit("kick", origin: origin, ["client": clientID, "closed": "\(closed.connections)", "nodes": "\(closed.nodes)"])
        return closed
    }

    /// What ``ban(_:for:origin:)`` does on a broker without a ``ClusterControl`` backplane, synchronously.
    @discardableResult
    public func banHere(_ clientID: String, for duration: Duration?, origin: ActionOrigin) throws(BrokerError) -> ClosedConnections {
        let ban = try self.makeBan(clientID, for: duration, origin: origin)
        try self.store(ban)
        let count = self.enforce(ban)
        let closed = ClosedConnections(connections: count, nodes: count > 0 ? 1 : 0)
        self.audit("ban", origin: origin, Self.banArguments(ban, duration: duration, closed: closed))
        return closed
    }

    /// What ``unban(_:origin:)`` does on a broker without a ``ClusterControl`` backplane, synchronously.
    @discardableResult
    public func unbanHere(_ clientID: String, origin: ActionOrigin) throws(BrokerError) -> Bool {
        try Validation.validateClientID(clientID)
        let lifted = self.unbanLocally(clientID)
        if lifted { self.audit("unban", origin: origin, ["client": clientID]) }
        return lifted
    }

    /// Keeps bans in `store` from now on, and enforces the ones it holds (expired ones are skipped).
    /// Stand-alone only: a cluster node's bans are the cluster's. Call it before the server starts.
    /// - Returns: how many bans in force were loaded.
    @discardableResult
    public func useBanStore(_ store: any BanStore) throws -> Int {
        let now = Date()
        let stored = try store.loadBans().filter { $0.isActive(at: now) }
        self.registry.withLock { $0.banStore = store }
        stored.forEach { self.enforce($0) }
        return stored.count
    }

    /// Enforces a ban decided elsewhere (a cluster's store, a ``BanStore``) on this broker only:
    /// refuses the id from now on and closes its connections here.
    /// - Returns: how many connections were closed.
    @discardableResult
    public func enforce(_ ban: Ban) -> Int {
        let remaining = ban.until.map { $0.timeIntervalSinceNow } ?? .infinity
        guard remaining > 0 else { return 0 }
        let deadline = remaining.isFinite ? NIODeadline.now() + .nanoseconds(Int64(min(remaining, 1e9) * 1e9)) : .distantFuture
        self.registry.withLock { $0.bans[ban.clientID] = (deadline, ban) }
        self.logger.notice(
            "client banned",
            metadata: ["client": "\(ban.clientID)", "until": "\(ban.until.map { "\($0)" } ?? "unban")", "by": "\(ban.setBy)"]
        )
        return (try? self.close(ban.clientID, reason: .banned)) ?? 0
    }

    /// Lifts a ban on this broker only (not in any store): for a backplane relaying an unban.
    /// - Returns: whether it was banned.
    @discardableResult
    public func lift(banOf clientID: String) -> Bool {
        self.registry.withLock { $0.bans.removeValue(forKey: clientID) != nil }
    }

    /// Replaces every ban with `bans` (those in force), closing the connections of newly banned ids:
    /// for a cluster node reading its cluster's bans when it (re)connects, which may have missed
    /// bans and unbans meanwhile.
    public func replaceBans(with bans: [Ban]) {
        let now = Date()
        let active = bans.filter { $0.isActive(at: now) }
        let known = self.registry.withLock { registry in
            let keep = Set(active.map(\.clientID))
            registry.bans = registry.bans.filter { keep.contains($0.key) }
            return registry.bans.mapValues { $0.ban }
        }
        for ban in active where known[ban.clientID] != ban {
            self.enforce(ban)
        }
    }

    /// Closes the connections of `clientID` on this broker only, for a backplane relaying a kick
    /// from another node. - Returns: how many were closed.
    @discardableResult
    public func kickLocally(_ clientID: String) -> Int {
        (try? self.close(clientID, reason: .kicked)) ?? 0
    }

    private func makeBan(_ clientID: String, for duration: Duration?, origin: ActionOrigin) throws(BrokerError) -> Ban {
        try Validation.validateClientID(clientID)
        let now = Date()
        let until = duration.map { now.addingTimeInterval(Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18) }
        return Ban(clientID: clientID, until: until, setAt: now, setBy: origin.description)
    }

    private func store(_ ban: Ban) throws(BrokerError) {
        guard let store = self.registry.withLock({ $0.banStore }) else { return }
        do {
            try store.saveBan(ban)
        } catch {
            throw .unavailable("the ban could not be stored (\(error)); nothing was banned")
        }
    }

    private static func banArguments(_ ban: Ban, duration: Duration?, closed: ClosedConnections) -> [String: String] {
        var arguments = ["client": ban.clientID, "closed": "\(closed.connections)", "nodes": "\(closed.nodes)"]
        arguments["duration"] = duration.map { "\($0.components.seconds)s" } ?? "until unban"
        if let until = ban.until { arguments["until"] = until.formatted(.iso8601) }
        return arguments
    }

    /// Reports an action to the audit sink, if any.
    func audit(_ action: String, origin: ActionOrigin, _ arguments: [String: String]) {
        guard let sink = self.auditSink else { return }
        sink.record(
            AuditRecord(action: action, origin: origin.name, remoteAddress: origin.remoteAddress, arguments: arguments)
        )
    }

    /// Reports a publish that took effect: a record of values, formatted only by whoever reads it
    /// (see ``AuditRecord``), since this runs on the publisher's loop for every event.
    @inline(__always)
    private func auditPublish(_ event: Event, to target: String?, _ delivery: Delivery) {
        guard let sink = self.auditSink else { return }
        sink.record(
            AuditRecord(
                publishOfType: event.type, to: target, bytes: event.data.readableBytes, eventID: delivery.eventID,
                recipients: delivery.recipients, origin: event.origin.rawValue, remoteAddress: event.publisherAddress
            )
        )
    }

    /// Throws what ``subscribe(clientID:lastEventID:topics:remoteAddress:userAgent:transport:)`` would for
    /// `clientID` (banned, shutting down), so a server can answer with a plain HTTP response before
    /// it starts the stream.
    public func checkAdmission(of clientID: String) throws(BrokerError) {
        try self.registry.withLock { registry throws(BrokerError) in
            guard !registry.isShutDown else { throw .shuttingDown }
            guard !registry.isBanned(clientID, now: .now()) else { throw .banned(clientID) }
        }
    }

    private func close(_ clientID: String, reason: DisconnectReason) throws(BrokerError) -> Int {
        let subscriptions = self.registry.withLock { $0.byClientID[clientID] ?? [] }
        guard !subscriptions.isEmpty else { throw .unknownClient(clientID) }
        for subscription in subscriptions {
            subscription.eventLoop.execute { subscription.close(reason: reason) }
        }
        return subscriptions.count
    }

    /// Closes every connection (after a last comment telling the client why) and finishes every
    /// listener stream. Every event accepted before is written first. Publishing afterwards throws
    /// ``BrokerError/shuttingDown``. Idempotent.
    /// - Parameter spread: closes the streams gradually, evenly over this period, so that clients
    ///   reconnect to the other nodes behind a load balancer a few at a time rather than all at once.
    public func shutdown(spread: Duration = .zero) {
        let (fanouts, listeners, activityListeners, wasShutDown) = self.registry.withLock { registry in
            let wasShutDown = registry.isShutDown
            registry.isShutDown = true
            let listeners = Array(registry.listeners.values)
            let activityListeners = Array(registry.activityListeners.values)
            registry.listeners = [:]
            registry.activityListeners = [:]
            return (Array(registry.fanouts.values), listeners, activityListeners, wasShutDown)
        }
        guard !wasShutDown else { return }
        // After the lock: no event can be queued any more, so the close follows every accepted one.
        let farewell = EventEncoder.comment("broker shutting down")
        for fanout in fanouts {
            fanout.enqueueClose(farewell: farewell, spread: spread)
        }
        listeners.forEach { $0.finish() }
        activityListeners.forEach { $0.finish() }
        self.roomWaiters.wakeAll()
    }

    // MARK: Observing

    /// A snapshot of every open connection. Reads atomics and, per connection, one uncontended lock
    /// (its diagnostics for the console); never waits for an event loop.
    public var clients: [ClientInfo] {
        let subscriptions = self.registry.withLock { $0.allSubscriptions }
        return subscriptions.map { $0.info() }
    }

    /// The open connections of one client id.
    public func clients(withID clientID: String) -> [ClientInfo] {
        let subscriptions = self.registry.withLock { $0.byClientID[clientID] ?? [] }
        return subscriptions.map { $0.info() }
    }

    /// How many connections each connected client id has: what a cluster node announces as its presence.
    public var connectionsByClientID: [String: Int] {
        self.registry.withLock { $0.byClientID.mapValues(\.count) }
    }

    /// The topics of each connection of each connected client id (``TopicFilter/everything`` for a
    /// connection without topics): what a cluster node announces, so that another node can count
    /// the recipients of a `broadcastTo` exactly.
    public var topicsByClientID: [String: [TopicFilter]] {
        self.registry.withLock { $0.byClientID.mapValues { $0.map(\.topics) } }
    }

    /// How many of this broker's connections an event of `type` for `target` (`nil`: everyone) would
    /// be handed to now: those whose topics match. O(event loops + pattern filters), or O(the
    /// target's connections) — for a cluster node's count of the recipients of a publish.
    public func recipientCount(ofType type: String?, to target: String?) -> Int {
        let type = TopicFilter.normalize(type)
        return self.registry.withLock { registry in
            if let target {
                return (registry.byClientID[target] ?? []).count { $0.topics.matches(normalized: type) }
            }
            return registry.fanouts.values.reduce(0) { $0 + $1.recipientCounts.recipients(ofType: type) }
        }
    }

    /// The subscriptions and deliveries of each of ``BrokerConfiguration/metricsTopics``, in order.
    public var topicStatistics: [TopicStatistics] {
        self.registry.withLock { registry in
            let counts = registry.topicMetrics
            return counts.topics.indices.map { position in
                TopicStatistics(
                    topic: counts.topics[position].rawValue,
                    subscriptions: counts.subscriptions[position],
                    deliveries: counts.deliveries[position]
                )
            }
        }
    }

    /// How many connections are open.
    public var connectionCount: Int {
        self.registry.withLock { $0.connectionCount }
    }

    /// The last 256 connections that ended, oldest first, with the reason.
    public var recentDisconnections: [Disconnection] {
        self.registry.withLock { Array($0.recentDisconnections) }
    }

    /// The id of the newest event published; before the first, the id it will follow (see
    /// ``BrokerConfiguration/eventIDSeed``; 0 for `.after(0)` and for a cluster node).
    public var lastEventID: UInt64 {
        self.registry.withLock { $0.nextEventID }
    }

    /// Counters since start.
    public var statistics: BrokerStatistics {
        BrokerStatistics(
            published: self.counters.published.load(ordering: .relaxed),
            delivered: self.counters.delivered.load(ordering: .relaxed),
            bytesDelivered: self.counters.bytesDelivered.load(ordering: .relaxed),
            dropped: self.counters.dropped.load(ordering: .relaxed),
            kicked: self.counters.kicked.load(ordering: .relaxed),
            banned: self.counters.banned.load(ordering: .relaxed),
            disconnectedOverTolerance: self.counters.overTolerance.load(ordering: .relaxed),
            listenerDrops: self.counters.listenerDrops.load(ordering: .relaxed),
            connected: self.connectionCount,
            connectionsAccepted: self.counters.accepted.load(ordering: .relaxed),
            refusals: self.counters.refusals.withLock { $0 },
            publishesDelayed: self.counters.delayed.load(ordering: .relaxed)
        )
    }

    /// Whether ``shutdown()`` was called (health checks answer `503` from then on).
    public var isShuttingDown: Bool {
        self.registry.withLock { $0.isShutDown }
    }

    /// Counts a refused request in ``BrokerStatistics/refusals`` and the `sse_requests_refused_total`
    /// metric. The servers in this package call it once per refusal (the broker itself never sees
    /// the ones made before a request reaches it: bad tokens, limits); call it from your own server too.
    public func recordRefusal(status: HTTPResponse.Status) {
        self.counters.refusals.withLock { $0[UInt(status.code), default: 0] += 1 }
    }

    /// Counts a refusal for `error`, answered with `error.status`.
    public func recordRefusal(_ error: BrokerError) {
        self.recordRefusal(status: error.status)
    }

    // MARK: Metrics

    /// Mirrors ``statistics`` into the metrics factory now: counters grow by what happened since the
    /// last call, gauges are set. Cheap (a few atomic loads and one lock); call it before a scrape,
    /// or let ``reportMetrics(every:)`` call it. Nothing is counted per client on the fan-out path:
    /// only the fan-out latency timer is recorded there, once per event per event loop.
    public func updateMetrics() {
        self.metrics.update(from: self.statistics, topics: self.topicStatistics)
    }

    /// Calls ``updateMetrics()`` every `interval` until the calling task is cancelled (and once more then).
    public func reportMetrics(every interval: Duration = .seconds(5)) async {
        while !Task.isCancelled {
            self.updateMetrics()
            try? await Task.sleep(for: interval)
        }
        self.updateMetrics()
    }
}
