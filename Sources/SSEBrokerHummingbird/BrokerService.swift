import SSEBroker
import ServiceLifecycle

/// Shuts the broker down when its service group shuts down, so the application can stop: an event
/// stream never ends by itself, and Hummingbird's graceful shutdown waits for open responses.
///
/// Put it *after* the application in the group — a group shuts its services down in reverse order,
/// so the streams close first and the server then stops:
/// ```swift
/// let group = ServiceGroup(configuration: .init(
///     services: [app, BrokerService(broker: broker)],
///     gracefulShutdownSignals: [.sigterm, .sigint],
///     logger: logger
/// ))
/// try await group.run()
/// ```
public struct BrokerService: Service {
    /// The broker to shut down.
    public let broker: Broker

    /// - Parameter broker: the broker to shut down with the group.
    public init(broker: Broker) {
        self.broker = broker
    }

    /// Waits for the group's graceful shutdown (or cancellation), then shuts the broker down,
    /// which closes every stream after a last comment.
    public func run() async throws {
        try? await gracefulShutdown()
        self.broker.shutdown()
    }
}
