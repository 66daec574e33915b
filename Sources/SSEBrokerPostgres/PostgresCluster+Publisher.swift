import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import SSEBroker

// Publishing: the queue, group commit through the publish function, the answers to publishers.
extension PostgresCluster {
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

    func enqueue(_ event: Event, to target: String?, idempotency: IdempotencyKey?) async throws(BrokerError)
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

    func runPublisher() async {
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

    func failQueued(with error: BrokerError) {
        let queued = self.shared.withLockedValue { shared -> [PendingPublish] in
            defer { shared.queue = [] }
            return shared.queue
        }
        queued.forEach { $0.continuation.resume(returning: .failure(error)) }
    }

    /// Commits `batch` in one transaction and answers each publisher.
    func commit(_ batch: [PendingPublish]) async {
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

    enum WriteResult: Sendable {
        case published(Delivery)
        /// An earlier publish with the same idempotency key and request.
        case replayed(Delivery)
        /// An earlier publish with the same idempotency key and another request.
        case keyReused
        /// A targeted event no node has a client for.
        case unknownClient
    }

    struct WriteOutcome: Sendable {
        /// What became of each publish of the batch.
        var results: [WriteResult]
    }

    func write(_ batch: [PendingPublish]) async throws -> WriteOutcome {
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
}
