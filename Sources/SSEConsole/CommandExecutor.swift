import Foundation
import NIOConcurrencyHelpers
import SSEBroker
import SSEBrokerPostgres
import SSEConsoleCore

/// Carries out console commands against the broker. Shared by the terminal console and the
/// headless (stdin) mode, so both speak exactly the same language.
struct CommandExecutor {
    let broker: Broker
    /// The cluster as of now, on a cluster node (`nodes`); `nil` for a stand-alone broker.
    var cluster: (@Sendable () -> ClusterView)? = nil
    /// The audit trail the broker reports to (`audit`); `nil` lists nothing.
    var audit: AuditLog? = nil
    /// On a cluster node: the backplane, for every node's clients (`clients all`).
    var backplane: PostgresCluster? = nil

    enum Outcome: Equatable {
        case ok(String)
        case error(String)
        case quit
    }

    func execute(_ command: Command) -> Outcome {
        do throws(BrokerError) {
            switch command {
            case .broadcast(let type, let data):
                let delivery = try self.publish(Event(type: type.isEmpty ? nil : type, data: data, origin: .console), to: nil)
                return .ok("broadcast \(type) #\(delivery.eventID) → \(Self.clients(delivery.recipients))")
            case .broadcastTo(let clientID, let type, let data):
                let delivery = try self.publish(Event(type: type.isEmpty ? nil : type, data: data, origin: .console), to: clientID)
                return .ok("broadcastTo \(clientID) \(type) #\(delivery.eventID) → \(Self.connections(delivery.recipients))")
            case .kick(let clientID):
                let broker = self.broker
                // Stand-alone nothing waits: no task, so no thread of the cooperative pool is blocked on one.
                let closed =
                    broker.backplane is any ClusterControl
                    ? try Self.blocking { () async throws(BrokerError) in try await broker.kick(clientID, origin: .console) }
                    : try broker.kickHere(clientID, origin: .console)
                return .ok("kicked \(clientID) (\(closed))")
            case .ban(let clientID, let duration):
                let broker = self.broker
                let closed =
                    broker.backplane is any ClusterControl
                    ? try Self.blocking { () async throws(BrokerError) in try await broker.ban(clientID, for: duration, origin: .console) }
                    : try broker.banHere(clientID, for: duration, origin: .console)
                let span = duration.map { "for \(Format.durationToken($0))" } ?? "until unban"
                let everywhere = broker.backplane == nil ? "" : " from every node"
                return .ok("banned \(clientID) \(span) (\(closed) closed); it gets 204 No Content\(everywhere)")
            case .unban(let clientID):
                let broker = self.broker
                let lifted =
                    broker.backplane is any ClusterControl
                    ? try Self.blocking { () async throws(BrokerError) in try await broker.unban(clientID, origin: .console) }
                    : try broker.unbanHere(clientID, origin: .console)
                return lifted ? .ok("unbanned \(clientID)") : .error("unban: \(clientID) is not banned")
            case .bans:
                let rows = self.broker.bans.map { ban in
                    let until = ban.until.map { $0.formatted(.iso8601) } ?? "until-unban"
                    return "\(ban.clientID)\t\(until)\t\(ban.setAt.formatted(.iso8601))\t\(ban.node ?? "-")\t\(ban.setBy)"
                }
                return .ok((["ID\tUNTIL\tSET_AT\tNODE\tSET_BY"] + rows).joined(separator: "\n"))
            case .audit:
                let rows = (self.audit?.recent ?? []).prefix(200).map { record in
                    let row = AuditRow(record)
                    return "\(record.time.formatted(.iso8601))\t\(row.action)\t\(row.origin)\t\(row.node ?? "-")\t\(row.arguments)"
                }
                return .ok((["TIME\tACTION\tORIGIN\tNODE\tARGUMENTS"] + rows).joined(separator: "\n"))
            case .clientScope(.thisNode):
                return self.execute(.clients)
            case .clientScope(.allNodes):
                guard let backplane = self.backplane else { return .error("clients all: not a cluster node (start with --cluster URL)") }
                let node = backplane.configuration.nodeName
                let snapshots = try Self.blocking { () async throws(BrokerError) in
                    do {
                        return try await Self.freshSnapshots(from: backplane)
                    } catch {
                        throw .unavailable("the cluster's database did not answer (\(error))")
                    }
                }
                let here = self.broker.clients.map { (node, $0) }
                let there = snapshots.flatMap { snapshot in snapshot.clients.map { (snapshot.node, $0) } }
                let lines = (here + there).sorted { ($0.0, $0.1.connectionID) < ($1.0, $1.1.connectionID) }.map { node, client in
                    "\(client.clientID)\t\(node)" + Self.clientLine(client).drop { $0 != "\t" }
                }
                return .ok((["ID\tNODE" + Self.clientHeader.drop { $0 != "\t" }] + lines).joined(separator: "\n"))
            case .clients:
                let clients = self.broker.clients
                return .ok(([Self.clientHeader] + clients.sorted { $0.connectionID < $1.connectionID }.map(Self.clientLine)).joined(separator: "\n"))
            case .topics(nil):
                let clients = self.broker.clients
                return .ok(TopicTable.tsv(TopicTable.rows(clients.lazy.map { ($0.clientID, $0.topics) })))
            case .topics(let topic?):
                let subscribers = self.broker.clients.filter { $0.topics.contains(topic) }
                guard !subscribers.isEmpty else { return .error("topics: no connection subscribed to \"\(topic)\"") }
                let lines = subscribers.sorted { $0.connectionID < $1.connectionID }.map { client in
                    "\(client.clientID)\t\(client.connectionID)\t\(client.remoteAddress ?? "-")\t\(client.topics.joined(separator: ","))"
                }
                return .ok((["ID\tCONNECTION\tADDRESS\tTOPICS"] + lines).joined(separator: "\n"))
            case .nodes:
                guard let cluster = self.cluster else { return .error(ConsoleState.notAClusterNode) }
                return .ok(cluster().table)
            case .quit:
                return .quit
            case .help:
                return .ok(CommandParser.specs.map { spec in "\(spec.usage)  —  \(spec.summary)" }.joined(separator: "\n"))
            case .filter, .clear, .save:
                return .error("\(command.description.split(separator: " ")[0]): only the terminal console has a log pane")
            }
        } catch {
            return .error("\(command.name): \(error)")
        }
    }

    /// Every other live node's snapshot, taken after this call asked for them (or the latest there is
    /// after two snapshot intervals): for `clients all` in the headless mode, which answers once.
    static func freshSnapshots(from backplane: PostgresCluster) async throws -> [NodeClients] {
        let asked = Date()
        try await backplane.requestClientSnapshots()
        let deadline = ContinuousClock.now + backplane.configuration.clientSnapshotInterval * 2
        var snapshots: [NodeClients] = []
        while true {
            snapshots = try await backplane.clientSnapshots(reusing: snapshots)
            let others = Set(backplane.status.nodes.filter { $0.isAlive && $0.name != backplane.configuration.nodeName }.map(\.name))
            let fresh = Set(snapshots.filter { $0.takenAt >= asked.addingTimeInterval(-1) }.map(\.node))
            if others.isSubset(of: fresh) || ContinuousClock.now >= deadline { return snapshots }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Runs `operation` to its end on the calling thread (the UI or stdin thread, never an event
    /// loop): the console's commands answer before the next key is read.
    static func blocking<Value: Sendable>(_ operation: @escaping @Sendable () async throws(BrokerError) -> Value) throws(BrokerError) -> Value {
        let result = NIOLockedValueBox<Result<Value, BrokerError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do throws(BrokerError) {
                let value = try await operation()
                result.withLockedValue { $0 = .success(value) }
            } catch {
                result.withLockedValue { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        return try result.withLockedValue { $0! }.get()
    }

    /// Publishes on the calling thread (the UI or stdin thread, never an event loop). A cluster node
    /// waits for the shared log; its backplane bounds that wait and fails fast while it is offline.
    private func publish(_ event: Event, to target: String?) throws(BrokerError) -> Delivery {
        guard self.broker.backplane != nil else {
            if let target {
                return try self.broker.broadcast(event, to: target)
            }
            return try self.broker.broadcast(event)
        }
        let result = NIOLockedValueBox<Result<Delivery, BrokerError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let broker = self.broker
        Task {
            do throws(BrokerError) {
                let delivery = try await broker.publish(event, to: target)
                result.withLockedValue { $0 = .success(delivery) }
            } catch {
                result.withLockedValue { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        return try result.withLockedValue { $0! }.get()
    }

    private static let clientHeader = "ID\tADDRESS\tCONNECTED\tEVENTS\tERRORS\tTOTAL_ERRORS\tBACKLOG\tTOPICS"

    private static func clientLine(_ client: ClientInfo) -> String {
        // A format style, not a formatter per row: `clients all` may list 30,000 rows.
        let since = client.connectedAt.formatted(Date.ISO8601FormatStyle())
        let topics = client.topics.isEmpty ? TopicTable.allTopicsName : client.topics.joined(separator: ",")
        return "\(client.clientID)\t\(client.remoteAddress ?? "-")\t\(since)\t\(client.eventsSent)\t\(client.consecutiveErrors)"
            + "\t\(client.totalErrors)\t\(client.backlogBytes)\t\(topics)"
    }

    private static func clients(_ count: Int) -> String { count == 1 ? "1 client" : "\(count) clients" }
    private static func connections(_ count: Int) -> String { count == 1 ? "1 connection" : "\(count) connections" }
}

extension Command {
    /// The command word, for messages.
    var name: String { String(self.description.split(separator: " ").first ?? "") }
}
