import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import SSEBroker

// The LISTEN connection: connecting with backoff, catching up from the events table, delivering notifications.
extension PostgresCluster {
    // MARK: Listening and catching up

    func runListener() async {
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
                    // Bans and unbans made while this node was away were not notified to it.
                    try await self.loadBans(on: listening)
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

    func wentOffline(reason: String, retryIn: Duration) {
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
    /// Delivers what was committed since the broker's last event; on the first connection, seeds the
    /// replay history with the newest events instead (a new node has no one to deliver old events to).
    func catchUp(on connection: PostgresConnection) async throws {
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
    func deliver(_ notifications: PostgresNotificationSequence, on connection: PostgresConnection) async throws {
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

    func handle(_ payloads: [String], on connection: PostgresConnection) async throws {
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
            case .control(let message):
                self.apply(message)
            case nil:
                self.logger.warning("ignored a notification this version does not understand", metadata: ["payload": "\(payload.prefix(80))"])
            }
        }
        self.broker.deliver(contentsOf: events)
    }

    static func loggedEvent(_ row: PostgresRow) throws -> LoggedEvent {
        let (id, type, target, origin, data) = try row.decode((Int64, String?, String?, String, ByteBuffer).self)
        return LoggedEvent(id: UInt64(id), type: type, data: data, target: target, origin: EventOrigin(rawValue: origin))
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
