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
/// - **Kicks and bans** (``ClusterControl``): announced to every node on the notification channel;
///   bans are kept in a table every node reads when it (re)connects. See PostgresCluster+Bans.swift.
/// - **Every node's clients**: snapshots written on demand for the consoles; see
///   PostgresCluster+Snapshots.swift.
/// - **Losing the database**: the node reports `offline`, refuses publishes with `503`, reconnects with
///   backoff, re-`LISTEN`s and reads what it missed from the table before going back `online` —
///   no gap, no duplicate (events at or below the broker's last id are ignored).
///
/// One file per job: the schema (`+Schema`), the LISTEN connection and catch-up (`+Listener`), the
/// publisher (`+Publisher`), heartbeats and presence (`+Presence`), kicks and bans (`+Bans`), the
/// client snapshots (`+Snapshots`).
public final class PostgresCluster: EventBackplane, Service, Sendable {
    public let configuration: ClusterConfiguration
    let broker: Broker
    let client: PostgresClient
    let logger: Logger
    let quietLogger: Logger
    let shared: NIOLockedValueBox<Shared>
    let names: Names
    /// Wakes the publisher (a queued publish) and the presence sync (a client came or went).
    let publishWakeups: AsyncStream<Void>.Continuation
    let publishSignals: AsyncStream<Void>
    let presenceWakeups: AsyncStream<Void>.Continuation
    let presenceSignals: AsyncStream<Void>
    /// Wakes the client snapshot writer (a console asked, or its interval passed).
    let snapshotWakeups: AsyncStream<Void>.Continuation
    let snapshotSignals: AsyncStream<Void>

    struct Shared {
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
        /// When this node last wrote its demand for client snapshots (to write it at most every 3 s).
        var lastDemand: ContinuousClock.Instant?
        /// Whether another node's console wants every node's clients, as of the last heartbeat.
        var snapshotsWanted = false
        /// Snapshot bodies ``clientSnapshots(reusing:)`` fetched and decoded (the unchanged ones it
        /// reused are not counted).
        var snapshotBodiesDecoded = 0
    }

    struct PendingPublish {
        var event: Event
        var target: String?
        var idempotency: IdempotencyKey?
        var enqueuedAt: ContinuousClock.Instant
        var continuation: CheckedContinuation<Result<IdempotentDelivery, BrokerError>, Never>
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
        (self.snapshotSignals, self.snapshotWakeups) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        broker.attach(self)
    }

    // MARK: Running

    /// Connects, listens, publishes, heartbeats and cleans up until the calling task is cancelled or,
    /// in a `ServiceGroup`, until the group shuts down gracefully; then leaves the cluster (deletes
    /// this node's rows) and closes the connections. Put it before the server in the group: a
    /// group shuts its services down in reverse order, so the node leaves once the server is done.
    public func run() async {
        // The pool runs in a task of its own, detached (a child, or a task inheriting the service
        // group's task-locals, would stop with the workers on cancellation or graceful shutdown):
        // it must stay up until the node has left (a statement on one of its open connections),
        // and is stopped after that.
        let client = self.client
        let pool = Task.detached { await client.run() }
        await withDiscardingTaskGroup { workers in
            workers.addTask { await self.runListener() }
            workers.addTask { await self.runPublisher() }
            workers.addTask { await self.runHeartbeat() }
            workers.addTask { await self.runPresence() }
            workers.addTask { await self.runSnapshots() }
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
        pool.cancel()
        await pool.value
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

    func setState(_ state: ClusterStatus.State) {
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
