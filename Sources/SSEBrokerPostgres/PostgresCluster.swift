import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import SSEBroker
import ServiceLifecycle

/// Makes several broker nodes one broker, with PostgreSQL as the backplane.
///
/// - **Publishing** (``publish(_:to:)``): the node commits the event to the shared events table and
///   announces it with `NOTIFY`, in one transaction. Transactions take a cluster-wide advisory lock
///   before drawing ids from the sequence, so ids are committed — and notifications delivered — in id
///   order: a node never sees id 12 before id 11. Publishes that wait together are committed together
///   (group commit), so the database is not one transaction per event under load.
/// - **Idempotency keys** (``publish(_:to:idempotency:)``): the key, a fingerprint of the request and
///   the event id are stored in the same transaction as the event, under the same lock; a publish
///   with a stored key returns the stored answer instead, on whichever node it arrives, for
///   ``ClusterConfiguration/idempotencyWindow``. A publish answered `503` at the publish timeout is
///   not withdrawn: a retry with its key waits for its transaction (the lock) and gets its id if it
///   committed, or publishes once if it did not.
/// - **Delivering**: every node `LISTEN`s and hands each event to ``Broker/deliver(_:)``, the normal
///   fan-out. An event too large for a notification is read from the table by id.
/// - **Presence**: each node keeps the client ids connected to it in a presence table, so
///   `broadcastTo` reaches a client on whichever node it is, and is refused with `404` only when no
///   live node has it. A node heartbeats every second; one silent for ``ClusterConfiguration/nodeTimeout``
///   no longer counts, and the cleanup job deletes its rows.
/// - **Replay**: a node seeds its broker's replay history from the table when it starts, and then
///   delivers every event, so a client resumes with `Last-Event-ID` on any node.
/// - **Losing the database**: the node reports `offline`, refuses publishes with `503`, reconnects with
///   backoff, re-`LISTEN`s and reads what it missed from the table before going back `online` —
///   no gap, no duplicate (events at or below the broker's last id are ignored).
public final class PostgresCluster: EventBackplane, Service, Sendable {
    public let configuration: ClusterConfiguration
    private let broker: Broker
    private let client: PostgresClient
    private let logger: Logger
    private let quietLogger: Logger
    private let shared: NIOLockedValueBox<Shared>
    private let names: Names
    /// Wakes the publisher (a queued publish) and the presence sync (a client came or went).
    private let publishWakeups: AsyncStream<Void>.Continuation
    private let publishSignals: AsyncStream<Void>
    private let presenceWakeups: AsyncStream<Void>.Continuation
    private let presenceSignals: AsyncStream<Void>

    private struct Shared {
        var status: ClusterStatus
        var queue: [PendingPublish] = []
        var hasSynced = false
        var advertisedURL: String
        /// Set when this node's rows were deleted while it ran; the presence sync starts over.
        var presenceLost = false
        /// Set by ``abandonOnStop()``: stop without deleting this node's rows.
        var abandon = false
        var schemaReady = false
        /// Set once online: publishes that reach the log while the node is offline would be late.
        var onlineWaiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
    }

    private struct PendingPublish {
        var event: Event
        var target: String?
        var idempotency: IdempotencyKey?
        var enqueuedAt: ContinuousClock.Instant
        var continuation: CheckedContinuation<Result<IdempotentDelivery, BrokerError>, Never>
    }

    /// The database objects of one cluster (see ``ClusterConfiguration/tablePrefix``).
    struct Names {
        let events: String
        let sequence: String
        let nodes: String
        let presence: String
        /// Idempotency keys: key → request fingerprint, event id, recipients, created_at.
        let idempotencyKeys: String
        let channel: String
        /// The advisory lock that orders publishes (and schema creation) cluster-wide.
        let lockKey: Int64
        /// The function that publishes a batch in one statement (its idempotent version: see
        /// ``publishFunctionDefinition``; an older node's 6-argument one may exist beside it).
        let publishFunction: String

        init(prefix: String) {
            self.events = "\(prefix)_events"
            self.sequence = "\(prefix)_event_ids"
            self.nodes = "\(prefix)_nodes"
            self.presence = "\(prefix)_presence"
            self.idempotencyKeys = "\(prefix)_idempotency_keys"
            self.channel = "\(prefix)_events"
            self.publishFunction = "\(prefix)_publish"
            // FNV-1a: stable across processes and versions (Hasher is seeded per process).
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in "sse-broker-publish:\(prefix)".utf8 {
                hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
            }
            self.lockKey = Int64(bitPattern: hash)
        }

        /// `<prefix>_publish(node, types, targets, origins, data, suffixes, keys, hashes, recipients,
        /// lookups, window) RETURNS TABLE (r_id, r_outcome, r_recipients)`.
        ///
        /// The cluster-wide advisory lock is taken before the ids are drawn and held until the commit,
        /// so ids are committed — and their notifications delivered — in id order. An empty type or
        /// target is none; an empty suffix announces the event by id only (it does not fit).
        ///
        /// An event with a key (not empty) is first looked up, under the lock, among the keys younger
        /// than `window` seconds: found, nothing is published and the stored id and recipients come
        /// back with `replayed` (same hash) or `mismatch`; otherwise the key is stored with the new
        /// event, in the same transaction. A `lookup` event (a targeted retry whose client is gone)
        /// is only looked up: `absent` if its key is not there.
        var publishFunctionDefinition: String {
            """
            CREATE OR REPLACE FUNCTION \(self.publishFunction)(
                p_node text, p_types text[], p_targets text[], p_origins text[], p_data bytea[], p_suffixes text[],
                p_keys text[], p_hashes text[], p_recipients int4[], p_lookups boolean[], p_window float8)
            RETURNS TABLE (r_id bigint, r_outcome text, r_recipients integer) LANGUAGE plpgsql AS $body$
            DECLARE
                new_id bigint;
                found_id bigint;
                found_hash text;
                found_recipients integer;
            BEGIN
                PERFORM pg_advisory_xact_lock(\(self.lockKey));
                FOR i IN 1 .. coalesce(array_length(p_types, 1), 0) LOOP
                    IF p_keys[i] <> '' THEN
                        SELECT k.event_id, k.request_hash, k.recipients INTO found_id, found_hash, found_recipients
                            FROM \(self.idempotencyKeys) k
                            WHERE k.key = p_keys[i] AND k.created_at > now() - make_interval(secs => p_window);
                        IF FOUND THEN
                            r_id := found_id;
                            r_outcome := CASE WHEN found_hash = p_hashes[i] THEN 'replayed' ELSE 'mismatch' END;
                            r_recipients := found_recipients;
                            RETURN NEXT;
                            CONTINUE;
                        END IF;
                    END IF;
                    IF p_lookups[i] THEN
                        r_id := 0;
                        r_outcome := 'absent';
                        r_recipients := 0;
                        RETURN NEXT;
                        CONTINUE;
                    END IF;
                    new_id := nextval('\(self.sequence)');
                    INSERT INTO \(self.events) (id, type, target, origin, node, data)
                        VALUES (new_id, NULLIF(p_types[i], ''), NULLIF(p_targets[i], ''), p_origins[i], p_node, p_data[i]);
                    PERFORM pg_notify('\(self.channel)', new_id::text || p_suffixes[i]);
                    IF p_keys[i] <> '' THEN
                        -- An expired row of the key may still be there (cleanup runs now and then).
                        INSERT INTO \(self.idempotencyKeys) AS k (key, request_hash, event_id, recipients)
                            VALUES (p_keys[i], p_hashes[i], new_id, p_recipients[i])
                            ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash,
                                event_id = excluded.event_id, recipients = excluded.recipients, created_at = now();
                    END IF;
                    r_id := new_id;
                    r_outcome := 'published';
                    r_recipients := p_recipients[i];
                    RETURN NEXT;
                END LOOP;
            END
            $body$
            """
        }
    }

    /// Creates a node of the cluster and attaches it to `broker` as its backplane. Nothing connects
    /// until ``run()``.
    /// - Throws: ``ClusterConfigurationError`` for an invalid configuration.
    public init(configuration: ClusterConfiguration, broker: Broker, logger: Logger = Logger(label: "sse.cluster")) throws(ClusterConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.broker = broker
        self.logger = logger
        self.names = Names(prefix: configuration.tablePrefix)
        var quietLogger = logger
        quietLogger.logLevel = max(logger.logLevel, .error)  // the driver's own reconnect chatter
        self.quietLogger = quietLogger
        self.client = PostgresClient(configuration: configuration.database, backgroundLogger: quietLogger)
        self.shared = NIOLockedValueBox(
            Shared(
                status: ClusterStatus(
                    state: .connecting,
                    nodeName: configuration.nodeName,
                    nodes: [],
                    head: 0,
                    lastDelivered: 0,
                    reconnects: 0,
                    published: 0,
                    failedPublishes: 0
                ),
                advertisedURL: configuration.advertisedURL
            )
        )
        (self.publishSignals, self.publishWakeups) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (self.presenceSignals, self.presenceWakeups) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        broker.attach(self)
    }

    // MARK: Running

    /// Connects, listens, publishes, heartbeats and cleans up until the calling task is cancelled or,
    /// in a `ServiceGroup`, until the group shuts down gracefully; then leaves the cluster (deletes
    /// this node's rows) and closes the connections. Put it before the server in the group: a
    /// group shuts its services down in reverse order, so the node leaves once the server is done.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.client.run() }
            await withDiscardingTaskGroup { workers in
                workers.addTask { await self.runListener() }
                workers.addTask { await self.runPublisher() }
                workers.addTask { await self.runHeartbeat() }
                workers.addTask { await self.runPresence() }
                workers.addTask {
                    for await _ in self.broker.activity() {
                        self.presenceWakeups.yield()
                    }
                }
                // Park until a graceful shutdown or cancellation, then stop the workers (their
                // loops check cancellation).
                try? await gracefulShutdown()
                workers.cancelAll()
            }
            if !self.shared.withLockedValue({ $0.abandon }) {
                await self.leave()
            }
            self.failQueued(with: .shuttingDown)
            group.cancelAll()
        }
    }

    /// The URL this node serves, shown to the other nodes; initially
    /// ``ClusterConfiguration/advertisedURL``. Set it once the server is bound (say, to a port the
    /// system picked); the next heartbeat announces it.
    public var advertisedURL: String {
        get { self.shared.withLockedValue { $0.advertisedURL } }
        set { self.shared.withLockedValue { $0.advertisedURL = newValue } }
    }

    /// Makes ``run()`` stop without deleting this node's rows, as a crashed node would: the others
    /// keep counting its clients until it has been silent for the node timeout. For tests and drills.
    public func abandonOnStop() {
        self.shared.withLockedValue { $0.abandon = true }
    }

    /// Waits until the node is online (listening and caught up), or `timeout` passes.
    /// - Returns: whether it is online.
    public func waitUntilOnline(timeout: Duration) async -> Bool {
        let key = UInt64.random(in: 0 ... .max)
        return await withCheckedContinuation { continuation in
            let isOnline = self.shared.withLockedValue { shared in
                if shared.status.state == .online { return true }
                shared.onlineWaiters[key] = continuation
                return false
            }
            if isOnline {
                continuation.resume(returning: true)
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                self.shared.withLockedValue { $0.onlineWaiters.removeValue(forKey: key) }?.resume(returning: false)
            }
        }
    }

    /// The node's view of the cluster now.
    public var status: ClusterStatus {
        var status = self.shared.withLockedValue { $0.status }
        status.lastDelivered = self.broker.lastEventID
        return status
    }

    private func setState(_ state: ClusterStatus.State) {
        let waiters = self.shared.withLockedValue { shared -> [CheckedContinuation<Bool, Never>] in
            let previous = shared.status.state
            shared.status.state = state
            if case .offline = state, previous == .online {
                shared.status.reconnects += 1
            }
            guard state == .online else { return [] }
            defer { shared.onlineWaiters = [:] }
            return Array(shared.onlineWaiters.values)
        }
        waiters.forEach { $0.resume(returning: true) }
    }

    // MARK: Listening and catching up

    private func runListener() async {
        var delay = self.configuration.reconnectDelay.lowerBound
        var connectionIDs = 0
        while !Task.isCancelled {
            var connection: PostgresConnection?
            do {
                connectionIDs += 1
                let listening = try await PostgresConnection.connect(
                    on: MultiThreadedEventLoopGroup.singleton.any(),
                    configuration: self.configuration.listenConnectionConfiguration(),
                    id: connectionIDs,
                    logger: self.quietLogger
                ).get()
                connection = listening
                try await self.prepare(on: listening)
                try await listening.listen(on: self.names.channel) { notifications in
                    // LISTEN is active: anything committed from now on is notified, so reading
                    // the table now leaves no gap; ids already delivered are ignored.
                    try await self.catchUp(on: listening)
                    try await self.readClusterView(on: listening)
                    self.setState(.online)
                    self.logger.notice("cluster online", metadata: ["node": "\(self.configuration.nodeName)", "lastEventId": "\(self.broker.lastEventID)"])
                    delay = self.configuration.reconnectDelay.lowerBound
                    try await self.deliver(notifications, on: listening)
                }
                try? await listening.close()
                if Task.isCancelled { return }
                self.wentOffline(reason: "the database closed the connection", retryIn: delay)
            } catch {
                try? await connection?.close()
                if Task.isCancelled { return }
                self.wentOffline(reason: Self.describe(error), retryIn: delay)
            }
            // Backoff with jitter (so nodes do not reconnect in lockstep after a database restart).
            let jittered = delay * Double.random(in: 0.5...1.0)
            try? await Task.sleep(for: jittered)
            delay = min(delay * 2, self.configuration.reconnectDelay.upperBound)
        }
    }

    private func wentOffline(reason: String, retryIn: Duration) {
        let wasOffline: Bool = self.shared.withLockedValue {
            if case .offline = $0.status.state { return true }
            return false
        }
        self.setState(.offline(reason: reason, retryIn: retryIn))
        // A warning when the outage starts; each failed retry only at debug level.
        self.logger.log(
            level: wasOffline ? .debug : .warning,
            wasOffline ? "cluster still offline" : "cluster offline",
            metadata: ["reason": "\(reason)", "retryIn": "\(retryIn)"]
        )
    }

    /// Creates the tables once (under the advisory lock, so nodes starting together do not race) and
    /// registers this node, replacing the presence rows of an earlier run with the same name.
    private func prepare(on connection: PostgresConnection) async throws {
        if !self.shared.withLockedValue({ $0.schemaReady }) {
            let n = self.names
            try await connection.withTransaction(logger: self.logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(n.lockKey))", logger: self.logger)
                for statement in [
                    "CREATE SEQUENCE IF NOT EXISTS \(n.sequence)",
                    """
                    CREATE TABLE IF NOT EXISTS \(n.events) (
                        id bigint PRIMARY KEY, type text, target text, origin text NOT NULL, node text NOT NULL,
                        data bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())
                    """,
                    "CREATE INDEX IF NOT EXISTS \(n.events)_created_at ON \(n.events) (created_at)",
                    """
                    CREATE TABLE IF NOT EXISTS \(n.nodes) (
                        node_id text PRIMARY KEY, url text NOT NULL DEFAULT '', started_at timestamptz NOT NULL DEFAULT now(),
                        seen_at timestamptz NOT NULL DEFAULT now(), clients integer NOT NULL DEFAULT 0,
                        last_event_id bigint NOT NULL DEFAULT 0)
                    """,
                    """
                    CREATE TABLE IF NOT EXISTS \(n.presence) (
                        node_id text NOT NULL REFERENCES \(n.nodes) ON DELETE CASCADE, client_id text NOT NULL,
                        connections integer NOT NULL, PRIMARY KEY (node_id, client_id))
                    """,
                    "CREATE INDEX IF NOT EXISTS \(n.presence)_client ON \(n.presence) (client_id)",
                    // The topics of each connection (PresenceTopics), for exact broadcastTo counts;
                    // added to the tables of earlier versions too.
                    "ALTER TABLE \(n.presence) ADD COLUMN IF NOT EXISTS topics text NOT NULL DEFAULT ''",
                    """
                    CREATE TABLE IF NOT EXISTS \(n.idempotencyKeys) (
                        key text PRIMARY KEY, request_hash text NOT NULL, event_id bigint NOT NULL,
                        recipients integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())
                    """,
                    "CREATE INDEX IF NOT EXISTS \(n.idempotencyKeys)_created_at ON \(n.idempotencyKeys) (created_at)",
                    n.publishFunctionDefinition,
                ] {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
            }
            self.shared.withLockedValue { $0.schemaReady = true }
        }
        try await self.register(on: connection, fresh: !self.shared.withLockedValue { $0.hasSynced })
    }

    /// Upserts this node's row; a fresh start also drops the presence rows of an earlier run.
    private func register(on connection: PostgresConnection, fresh: Bool) async throws {
        let n = self.names
        let name = self.configuration.nodeName
        if fresh {
            try await connection.query("DELETE FROM \(unescaped: n.presence) WHERE node_id = \(name)", logger: self.logger)
        }
        let clients = self.broker.connectionCount
        let last = Int64(self.broker.lastEventID)
        let rows = try await connection.query(
            """
            INSERT INTO \(unescaped: n.nodes) (node_id, url, clients, last_event_id) VALUES (\(name), \(self.advertisedURL), \(clients), \(last))
            ON CONFLICT (node_id) DO UPDATE SET url = excluded.url, seen_at = now(), clients = excluded.clients,
                last_event_id = excluded.last_event_id
            RETURNING (xmax = 0)
            """,
            logger: self.logger
        )
        for try await inserted in rows.decode(Bool.self) where inserted && !fresh {
            // The row was gone: the others' cleanup took this node for dead (it was silent too
            // long), and its presence went with it. Announce every client again.
            self.shared.withLockedValue { $0.presenceLost = true }
            self.presenceWakeups.yield()
            self.logger.warning("the cluster had dropped this node (silent too long); re-announcing its clients")
        }
    }

    /// Delivers what was committed since the broker's last event; on the first connection, seeds the
    /// replay history with the newest events instead (a new node has no one to deliver old events to).
    private func catchUp(on connection: PostgresConnection) async throws {
        let n = self.names
        let firstSync = !self.shared.withLockedValue { $0.hasSynced }
        if firstSync {
            let limit = max(self.broker.configuration.historySize, 1)
            let rows = try await connection.query(
                """
                SELECT id, type, target, origin, data FROM (
                    SELECT id, type, target, origin, data FROM \(unescaped: n.events) ORDER BY id DESC LIMIT \(limit)) newest
                ORDER BY id
                """,
                logger: self.logger
            )
            var events: [LoggedEvent] = []
            for try await row in rows {
                events.append(try Self.loggedEvent(row))
            }
            self.broker.restore(events)
            // An empty log still fixes where this node starts: ids restart nowhere.
            self.shared.withLockedValue { $0.hasSynced = true }
            self.logger.info("replay history restored from the shared log", metadata: ["events": "\(events.count)", "lastEventId": "\(self.broker.lastEventID)"])
            return
        }
        var caughtUp = 0
        while true {
            let after = Int64(self.broker.lastEventID)
            let rows = try await connection.query(
                "SELECT id, type, target, origin, data FROM \(unescaped: n.events) WHERE id > \(after) ORDER BY id LIMIT 1000",
                logger: self.logger
            )
            var count = 0
            for try await row in rows {
                self.broker.deliver(try Self.loggedEvent(row))
                count += 1
            }
            caughtUp += count
            if count < 1000 { break }
        }
        if caughtUp > 0 {
            self.logger.notice("caught up from the shared log", metadata: ["events": "\(caughtUp)", "lastEventId": "\(self.broker.lastEventID)"])
        }
    }

    /// Delivers the notifications as they come, in order. One task reads them into an inbox, another
    /// delivers what has gathered there as one batch (``Broker/deliver(contentsOf:)``): under load the
    /// notifications of a commit arrive together and each client gets them in one write.
    private func deliver(_ notifications: PostgresNotificationSequence, on connection: PostgresConnection) async throws {
        let inbox = NotificationInbox()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { inbox.finish() }
                for try await notification in notifications {
                    inbox.append(notification.payload)
                }
            }
            group.addTask {
                while let payloads = await inbox.next() {
                    do {
                        try await self.handle(payloads, on: connection)
                    } catch {
                        // The reader is waiting on this connection: closing it ends both.
                        try? await connection.close()
                        throw error
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private func handle(_ payloads: [String], on connection: PostgresConnection) async throws {
        var events: [LoggedEvent] = []
        events.reserveCapacity(payloads.count)
        for payload in payloads {
            switch NotificationPayload.decode(payload) {
            case .event(let event):
                events.append(event)
            case .reference(let id):
                guard id > (events.last?.id ?? self.broker.lastEventID) else { continue }
                let rows = try await connection.query(
                    "SELECT id, type, target, origin, data FROM \(unescaped: self.names.events) WHERE id = \(Int64(id))",
                    logger: self.logger
                )
                for try await row in rows {
                    events.append(try Self.loggedEvent(row))
                }
            case nil:
                self.logger.warning("ignored a notification this version does not understand", metadata: ["payload": "\(payload.prefix(80))"])
            }
        }
        self.broker.deliver(contentsOf: events)
    }

    private static func loggedEvent(_ row: PostgresRow) throws -> LoggedEvent {
        let (id, type, target, origin, data) = try row.decode((Int64, String?, String?, String, ByteBuffer).self)
        return LoggedEvent(id: UInt64(id), type: type, data: data, target: target, origin: EventOrigin(rawValue: origin))
    }

    // MARK: Publishing

    public func publish(_ event: Event, to target: String?) async throws(BrokerError) -> Delivery {
        try await self.enqueue(event, to: target, idempotency: nil).delivery
    }

    /// Publishes `event` once per key across the cluster: see the type's documentation.
    public func publish(_ event: Event, to target: String?, idempotency: IdempotencyKey) async throws(BrokerError)
        -> IdempotentDelivery
    {
        try await self.enqueue(event, to: target, idempotency: idempotency)
    }

    private func enqueue(_ event: Event, to target: String?, idempotency: IdempotencyKey?) async throws(BrokerError)
        -> IdempotentDelivery
    {
        let state = self.shared.withLockedValue { $0.status.state }
        guard state == .online else {
            self.shared.withLockedValue { $0.status.failedPublishes += 1 }
            throw .unavailable("this cluster node cannot reach the shared log (\(state)); retry later")
        }
        let result = await withCheckedContinuation { continuation in
            self.shared.withLockedValue {
                $0.queue.append(
                    PendingPublish(event: event, target: target, idempotency: idempotency, enqueuedAt: .now, continuation: continuation)
                )
            }
            self.publishWakeups.yield()
        }
        return try result.get()
    }

    private func runPublisher() async {
        for await _ in self.publishSignals {
            while true {
                let batch = self.shared.withLockedValue { shared -> [PendingPublish] in
                    let count = min(shared.queue.count, self.configuration.maxBatch)
                    defer { shared.queue.removeFirst(count) }
                    return Array(shared.queue.prefix(count))
                }
                if batch.isEmpty { break }
                await self.commit(batch)
            }
        }
    }

    private func failQueued(with error: BrokerError) {
        let queued = self.shared.withLockedValue { shared -> [PendingPublish] in
            defer { shared.queue = [] }
            return shared.queue
        }
        queued.forEach { $0.continuation.resume(returning: .failure(error)) }
    }

    /// Commits `batch` in one transaction and answers each publisher.
    private func commit(_ batch: [PendingPublish]) async {
        var batch = batch
        // Publishes that waited past the timeout (the log was slow) are answered, not written late.
        let deadline = ContinuousClock.now - self.configuration.publishTimeout
        batch.removeAll { pending in
            guard pending.enqueuedAt < deadline else { return false }
            pending.continuation.resume(returning: .failure(.unavailable("the shared log did not answer within \(self.configuration.publishTimeout)")))
            return true
        }
        let writing = batch
        do {
            // At the timeout the producers get 503, but the write is not withdrawn (it may be
            // committing): a retry with the same idempotency key waits for its lock and finds its key.
            let outcome = try await withTimeout(self.configuration.publishTimeout) {
                try await self.write(writing)
            }
            self.shared.withLockedValue { shared in
                shared.status.published += outcome.results.filter { if case .published = $0 { true } else { false } }.count
            }
            for (index, pending) in batch.enumerated() {
                switch outcome.results[index] {
                case .published(let delivery):
                    pending.continuation.resume(returning: .success(IdempotentDelivery(delivery: delivery, replayed: false)))
                case .replayed(let delivery):
                    pending.continuation.resume(returning: .success(IdempotentDelivery(delivery: delivery, replayed: true)))
                case .keyReused:
                    let key = pending.idempotency?.key ?? ""
                    pending.continuation.resume(
                        returning: .failure(
                            .idempotencyKeyReused(
                                "the Idempotency-Key \"\(key)\" was already used with a different request "
                                    + "(another event type, target or body); use a new key for a new event"
                            )
                        )
                    )
                case .unknownClient:
                    pending.continuation.resume(returning: .failure(.unknownClient(pending.target ?? "")))
                }
            }
        } catch {
            let reason = Self.describe(error)
            self.shared.withLockedValue { $0.status.failedPublishes += batch.count }
            self.logger.warning("publish failed", metadata: ["events": "\(batch.count)", "error": "\(reason)"])
            for pending in batch {
                pending.continuation.resume(returning: .failure(.unavailable("the event could not be written to the shared log (\(reason)); retry later")))
            }
        }
    }

    private enum WriteResult: Sendable {
        case published(Delivery)
        /// An earlier publish with the same idempotency key and request.
        case replayed(Delivery)
        /// An earlier publish with the same idempotency key and another request.
        case keyReused
        /// A targeted event no node has a client for.
        case unknownClient
    }

    private struct WriteOutcome: Sendable {
        /// What became of each publish of the batch.
        var results: [WriteResult]
    }

    private func write(_ batch: [PendingPublish]) async throws -> WriteOutcome {
        let n = self.names
        let node = self.configuration.nodeName
        let local = self.broker.connectionsByClientID
        let elsewhere = Array(Set(batch.compactMap(\.target)))
        let timeoutSeconds = self.configuration.nodeTimeout / .seconds(1)
        return try await self.client.withConnection { connection in
            // Where the targeted clients are, outside the lock: presence on live nodes other than this
            // one, with the topics of each connection.
            var remote: [String: Int] = [:]
            var remoteTopics: [String: [TopicFilter]] = [:]
            if !elsewhere.isEmpty {
                let rows = try await connection.query(
                    """
                    SELECT p.client_id, p.connections, p.topics FROM \(unescaped: n.presence) p JOIN \(unescaped: n.nodes) n USING (node_id)
                    WHERE p.client_id = ANY(\(elsewhere)) AND p.node_id <> \(node) AND n.seen_at > now() - make_interval(secs => \(timeoutSeconds))
                    """,
                    logger: self.logger
                )
                for try await (client, connections, topics) in rows.decode((String, Int32, String).self) {
                    remote[client, default: 0] += Int(connections)
                    remoteTopics[client, default: []] += PresenceTopics.decode(topics, connections: Int(connections))
                }
            }
            // What each event is expected to reach, counted before the commit (a replay returns the
            // first publish's count, stored with its key).
            let remoteNodes = self.shared.withLockedValue { shared in
                shared.status.nodes.filter { $0.isAlive && $0.name != node }.reduce(0) { $0 + $1.clients }
            }
            var results = [WriteResult](repeating: .unknownClient, count: batch.count)
            // A targeted event no node has is not written; with a key it is looked up (a retry of a
            // publish that reached the client before it left gets the first answer, not 404).
            var sent: [Int] = []
            var types: [String] = []
            var targets: [String] = []
            var origins: [String] = []
            var data: [ByteBuffer] = []
            var suffixes: [String] = []
            var keys: [String] = []
            var hashes: [String] = []
            var recipients: [Int32] = []
            var lookups: [Bool] = []
            for (index, pending) in batch.enumerated() {
                let reachable: Bool
                let expected: Int
                // This node's connections whose topics match, exactly; for a target, the other nodes'
                // too (their presence has each connection's topics); for a broadcast, the other
                // nodes' connections as their heartbeats count them (an upper bound).
                let here = self.broker.recipientCount(ofType: pending.event.type, to: pending.target)
                if let target = pending.target {
                    reachable = local[target] != nil || remote[target] != nil
                    expected = here + (remoteTopics[target] ?? []).count { $0.matches(pending.event.type) }
                } else {
                    reachable = true
                    expected = here + remoteNodes
                }
                guard reachable || pending.idempotency != nil else { continue }
                sent.append(index)
                types.append(pending.event.type ?? "")
                targets.append(pending.target ?? "")
                origins.append(pending.event.origin.rawValue)
                data.append(pending.event.data)
                suffixes.append(
                    NotificationPayload.suffix(
                        type: pending.event.type, target: pending.target, origin: pending.event.origin, data: pending.event.data
                    )
                )
                keys.append(pending.idempotency?.key ?? "")
                hashes.append(pending.idempotency?.fingerprint ?? "")
                recipients.append(Int32(clamping: expected))
                lookups.append(!reachable)
            }
            guard !sent.isEmpty else { return WriteOutcome(results: results) }
            let window = self.configuration.idempotencyWindow / .seconds(1)
            // One statement, so one round trip and one transaction (autocommit): the function takes
            // the advisory lock, checks the keys, draws the ids, inserts and notifies; the lock is
            // released at commit.
            let rows = try await connection.query(
                """
                SELECT r_id, r_outcome, r_recipients FROM \(unescaped: n.publishFunction)(
                    \(node), \(types), \(targets), \(origins), \(data), \(suffixes),
                    \(keys), \(hashes), \(recipients), \(lookups), \(window))
                """,
                logger: self.logger
            )
            var returned: [WriteResult] = []
            for try await (id, outcome, count) in rows.decode((Int64, String, Int32).self) {
                let delivery = Delivery(eventID: UInt64(max(id, 0)), recipients: Int(count))
                switch outcome {
                case "published": returned.append(.published(delivery))
                case "replayed": returned.append(.replayed(delivery))
                case "mismatch": returned.append(.keyReused)
                default: returned.append(.unknownClient)
                }
            }
            guard returned.count == sent.count else {
                throw ClusterConfigurationError(message: "the publish function returned \(returned.count) rows for \(sent.count) events")
            }
            for (offset, index) in sent.enumerated() {
                results[index] = returned[offset]
            }
            return WriteOutcome(results: results)
        }
    }

    // MARK: Heartbeats, presence, cleanup

    private func runHeartbeat() async {
        var beats = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: self.configuration.heartbeatInterval)
            guard !Task.isCancelled, self.shared.withLockedValue({ $0.hasSynced }) else { continue }
            // Every node cleans up, staggered; the statements are idempotent.
            let cleaning = beats % 10 == 0
            beats += 1
            do {
                try await withTimeout(self.configuration.nodeTimeout) {
                    try await self.client.withConnection { connection in
                        try await self.register(on: connection, fresh: false)
                        try await self.readClusterView(on: connection)
                        if cleaning {
                            try await self.cleanUp(on: connection)
                        }
                    }
                }
            } catch {
                self.logger.debug("heartbeat failed", metadata: ["error": "\(Self.describe(error))"])
            }
        }
    }

    private func readClusterView(on connection: PostgresConnection) async throws {
        let n = self.names
        let timeoutSeconds = self.configuration.nodeTimeout / .seconds(1)
        let rows = try await connection.query(
            """
            SELECT node_id, url, clients, last_event_id, EXTRACT(EPOCH FROM now() - seen_at)::float8,
                (SELECT coalesce(max(id), 0) FROM \(unescaped: n.events))
            FROM \(unescaped: n.nodes) ORDER BY node_id
            """,
            logger: self.logger
        )
        var nodes: [ClusterStatus.Node] = []
        var head: UInt64 = 0
        for try await (name, url, clients, last, silence, newest) in rows.decode((String, String, Int32, Int64, Double, Int64).self) {
            nodes.append(
                ClusterStatus.Node(
                    name: name,
                    url: url,
                    clients: Int(clients),
                    lastEventID: UInt64(max(last, 0)),
                    silentFor: silence,
                    isAlive: silence < timeoutSeconds
                )
            )
            head = UInt64(max(newest, 0))
        }
        self.shared.withLockedValue { shared in
            shared.status.nodes = nodes
            shared.status.head = max(head, shared.status.head)
        }
    }

    /// Deletes the rows of nodes silent for three node timeouts (their presence goes with them), the
    /// idempotency keys past their window and the events past retention.
    private func cleanUp(on connection: PostgresConnection) async throws {
        let n = self.names
        let deadSeconds = 3 * (self.configuration.nodeTimeout / .seconds(1))
        let ageSeconds = self.configuration.retentionAge / .seconds(1)
        let keep = Int64(self.configuration.retentionCount)
        try await connection.query(
            "DELETE FROM \(unescaped: n.nodes) WHERE seen_at < now() - make_interval(secs => \(deadSeconds))",
            logger: self.logger
        )
        let windowSeconds = self.configuration.idempotencyWindow / .seconds(1)
        try await connection.query(
            "DELETE FROM \(unescaped: n.idempotencyKeys) WHERE created_at < now() - make_interval(secs => \(windowSeconds))",
            logger: self.logger
        )
        try await connection.query(
            """
            DELETE FROM \(unescaped: n.events)
            WHERE id <= (SELECT coalesce(max(id), 0) FROM \(unescaped: n.events)) - \(keep)
                OR created_at < now() - make_interval(secs => \(ageSeconds))
            """,
            logger: self.logger
        )
    }

    /// Keeps this node's presence rows equal to its connected client ids: woken by every connect and
    /// disconnect (coalesced), and once per heartbeat in case a wakeup was coalesced away.
    private func runPresence() async {
        var announced: [String: PresenceTopics.Entry] = [:]
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.configuration.heartbeatInterval)
                self.presenceWakeups.yield()
            }
        }
        defer { ticker.cancel() }
        for await _ in self.presenceSignals {
            guard !Task.isCancelled else { break }
            guard self.shared.withLockedValue({ $0.status.state == .online }) else {
                // After a reconnect the rows may be gone (the node was declared dead): announce all.
                announced = [:]
                continue
            }
            if self.shared.withLockedValue({ shared in defer { shared.presenceLost = false }; return shared.presenceLost }) {
                announced = [:]
            }
            let current = self.broker.topicsByClientID.mapValues(PresenceTopics.Entry.init)
            let changed = current.filter { announced[$0.key] != $0.value }
            let gone = announced.keys.filter { current[$0] == nil }
            guard !changed.isEmpty || !gone.isEmpty else { continue }
            let n = self.names
            let node = self.configuration.nodeName
            do {
                try await withTimeout(self.configuration.nodeTimeout) {
                    try await self.client.withTransaction(logger: self.logger) { connection in
                        if !changed.isEmpty {
                            try await connection.query(
                                """
                                INSERT INTO \(unescaped: n.presence) (node_id, client_id, connections, topics)
                                SELECT \(node), c.client_id, c.connections, c.topics
                                FROM unnest(\(Array(changed.keys))::text[], \(changed.values.map(\.connections))::int4[], \(changed.values.map(\.topics))::text[])
                                    AS c(client_id, connections, topics)
                                ON CONFLICT (node_id, client_id) DO UPDATE SET connections = excluded.connections, topics = excluded.topics
                                """,
                                logger: self.logger
                            )
                        }
                        if !gone.isEmpty {
                            try await connection.query(
                                "DELETE FROM \(unescaped: n.presence) WHERE node_id = \(node) AND client_id = ANY(\(gone))",
                                logger: self.logger
                            )
                        }
                    }
                }
                announced = current
            } catch {
                announced = [:]
                self.logger.debug("presence sync failed", metadata: ["error": "\(Self.describe(error))"])
            }
        }
    }

    /// Deletes this node's row (and with it its presence) so `broadcastTo` stops counting its clients at once.
    ///
    /// It runs when ``run()`` has been cancelled, pool included: so on a connection of its own, in a
    /// task that is not cancelled.
    private func leave() async {
        let n = self.names
        let name = self.configuration.nodeName
        let logger = self.quietLogger
        let configuration = self.configuration
        let outcome = await Task { () -> (any Error)? in
            do {
                _ = try await withTimeout(.seconds(3)) {
                    let connection = try await PostgresConnection.connect(
                        on: MultiThreadedEventLoopGroup.singleton.any(),
                        configuration: configuration.listenConnectionConfiguration(),
                        id: 0,
                        logger: logger
                    ).get()
                    defer { Task { try? await connection.close() } }
                    try await connection.query("DELETE FROM \(unescaped: n.nodes) WHERE node_id = \(name)", logger: logger)
                }
                return nil
            } catch {
                return error
            }
        }.value
        do {
            if let outcome { throw outcome }
            self.logger.info("left the cluster", metadata: ["node": "\(self.configuration.nodeName)"])
        } catch {
            self.logger.debug("could not leave the cluster cleanly", metadata: ["error": "\(Self.describe(error))"])
        }
    }

    /// A short reason for logs and the console: the server's message, or what the socket said.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return message
            }
            if let underlying = error.underlying {
                return self.describe(underlying)
            }
            return "\(error.code)"
        }
        if let error = error as? NIOConnectionError {
            // The last attempt says it best ("connection refused", "no route to host").
            if let attempt = error.connectionErrors.last {
                return "cannot connect to \(error.host):\(error.port): \(self.describe(attempt.error))"
            }
            return "cannot resolve \(error.host)"
        }
        if let error = error as? IOError {
            return String(cString: strerror(error.errnoCode)).lowercased()
        }
        return "\(error)"
    }
}

/// Notification payloads waiting to be delivered: filled by the task reading the `LISTEN`
/// connection, drained in batches by the task delivering them.
final class NotificationInbox: Sendable {
    private struct State {
        var payloads: [String] = []
        var waiter: CheckedContinuation<[String]?, Never>?
        var finished = false
    }

    private let state = NIOLockedValueBox(State())

    func append(_ payload: String) {
        let waiter = self.state.withLockedValue { state -> CheckedContinuation<[String]?, Never>? in
            guard let waiter = state.waiter else {
                state.payloads.append(payload)
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: [payload])
    }

    /// No more payloads: a waiting or later ``next()`` returns `nil` once the inbox is empty.
    func finish() {
        let waiter = self.state.withLockedValue { state -> CheckedContinuation<[String]?, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// Everything gathered since the last call, waiting for at least one; `nil` when finished.
    func next() async -> [String]? {
        await withCheckedContinuation { continuation in
            let ready = self.state.withLockedValue { state -> [String]?? in
                if !state.payloads.isEmpty {
                    defer { state.payloads = [] }
                    return .some(state.payloads)
                }
                if state.finished { return .some(nil) }
                state.waiter = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    var duration: Duration
    var description: String { "no answer within \(self.duration)" }
}

/// Runs `operation`, throwing ``TimeoutError`` if it has not finished after `duration`. Returns at
/// the deadline even if `operation` ignores its cancellation (a query on a connection that went
/// silent): the operation is cancelled and left to finish on its own.
func withTimeout<Result: Sendable>(_ duration: Duration, _ operation: @escaping @Sendable () async throws -> Result) async throws -> Result {
    let outcome = NIOLockedValueBox<CheckedContinuation<Result, any Error>?>(nil)
    let work = NIOLockedValueBox<Task<Void, Never>?>(nil)
    return try await withCheckedThrowingContinuation { continuation in
        outcome.withLockedValue { $0 = continuation }
        let finish: @Sendable (Swift.Result<Result, any Error>) -> Void = { result in
            outcome.withLockedValue { pending -> CheckedContinuation<Result, any Error>? in
                defer { pending = nil }
                return pending
            }?.resume(with: result)
        }
        let timer = Task {
            try? await Task.sleep(for: duration)
            guard !Task.isCancelled else { return }
            finish(.failure(TimeoutError(duration: duration)))
            work.withLockedValue { $0 }?.cancel()
        }
        work.withLockedValue {
            $0 = Task {
                do {
                    finish(.success(try await operation()))
                } catch {
                    finish(.failure(error))
                }
                timer.cancel()
            }
        }
    }
}

/// The topics of one client's connections on a node, as its presence row keeps them: one line per
/// connection, its topics separated by tabs, an empty line for a connection without topics. Topics
/// have no control characters, so neither separator can occur in one.
enum PresenceTopics {
    struct Entry: Hashable, Sendable {
        var connections: Int32
        var topics: String

        init(_ filters: [TopicFilter]) {
            self.connections = Int32(clamping: filters.count)
            self.topics = filters.map { $0.names.joined(separator: "\t") }.joined(separator: "\n")
        }
    }

    /// The filters of a row; a row of a node that announced no topics (an earlier version) counts
    /// its connections as unfiltered.
    static func decode(_ text: String, connections: Int) -> [TopicFilter] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count == connections else {
            return Array(repeating: .everything, count: max(0, connections))
        }
        return lines.map { line in
            let topics = line.split(separator: "\t").compactMap { try? Topic(String($0)) }
            return (try? TopicFilter(topics)) ?? .everything
        }
    }
}
