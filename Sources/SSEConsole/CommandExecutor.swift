import Foundation
import NIOConcurrencyHelpers
import SSEBroker
import SSEConsoleCore

/// Carries out console commands against the broker. Shared by the terminal console and the
/// headless (stdin) mode, so both speak exactly the same language.
struct CommandExecutor {
    let broker: Broker
    /// The cluster as of now, on a cluster node (`nodes`); `nil` for a stand-alone broker.
    var cluster: (@Sendable () -> ClusterView)? = nil

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
                let closed = try self.broker.kick(clientID)
                return .ok("kicked \(clientID) (\(Self.connections(closed)))")
            case .ban(let clientID, let duration):
                let closed = try self.broker.ban(clientID, for: duration)
                let span = duration.map { "for \(Format.durationToken($0))" } ?? "until unban"
                return .ok("banned \(clientID) \(span) (\(Self.connections(closed)) closed); it gets 204 No Content")
            case .unban(let clientID):
                return self.broker.unban(clientID) ? .ok("unbanned \(clientID)") : .error("unban: \(clientID) is not banned")
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
        let since = ISO8601DateFormatter().string(from: client.connectedAt)
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
