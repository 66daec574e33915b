import NIOCore
import NIOPosix
import SSEBroker
import SSEBrokerServer
import ServiceLifecycle

/// Runs beside a Hummingbird application that serves a broker: keeps its event loops reading while
/// the fan-out is behind, and shuts the broker down when the group shuts down, so the application
/// can stop (an event stream never ends by itself, and Hummingbird's graceful shutdown waits for
/// open responses).
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
///
/// While it runs, the broker's fan-out waits for each loop's next poll through a pipe on it
/// (``SSEBrokerServer/PipePollSignal``, as the embedded server sets up): NIO runs every runnable
/// task before it polls, so a fan-out behind on its queue that only yielded for a moment could keep
/// a loop from reading its sockets for seconds (producers' requests unread until their connections
/// timed out).
public struct BrokerService: Service {
    /// The broker to shut down.
    public let broker: Broker
    /// The loops the application serves on (its `eventLoopGroup`); `nil`: no poll signal.
    public let eventLoopGroup: (any EventLoopGroup)?
    /// Called once the poll signal is in place (tests).
    let onSignalReady: @Sendable () -> Void

    /// - Parameters:
    ///   - broker: the broker to shut down with the group.
    ///   - eventLoopGroup: the loops the application serves on: Hummingbird's default,
    ///     `MultiThreadedEventLoopGroup.singleton`, unless it was given another
    ///     (`Application(…, eventLoopGroupProvider: .shared(group))`). A pipe (two file
    ///     descriptors) is opened on each of its loops. `nil`: none; a fan-out behind then yields
    ///     for a moment only. The broker has one poll signal at a time: serve it from one server's
    ///     loops.
    public init(broker: Broker, eventLoopGroup: (any EventLoopGroup)? = MultiThreadedEventLoopGroup.singleton) {
        self.init(broker: broker, eventLoopGroup: eventLoopGroup, onSignalReady: {})
    }

    init(broker: Broker, eventLoopGroup: (any EventLoopGroup)?, onSignalReady: @escaping @Sendable () -> Void) {
        self.broker = broker
        self.eventLoopGroup = eventLoopGroup
        self.onSignalReady = onSignalReady
    }

    /// Sets up the poll signal, waits for the group's graceful shutdown (or cancellation), then
    /// shuts the broker down, which closes every stream after a last comment, and closes the pipes.
    /// Throws only if the pipes cannot be opened (out of file descriptors).
    public func run() async throws {
        var signal: PipePollSignal?
        if let group = self.eventLoopGroup {
            signal = try await PipePollSignal.make(on: group)
            self.broker.useLoopPollSignal(signal)
        }
        self.onSignalReady()
        try? await gracefulShutdown()
        self.broker.shutdown()
        if let signal {
            // What waited on a pipe runs as it closes; a later drain yields for a moment instead.
            self.broker.useLoopPollSignal(nil)
            await signal.closePipes()
        }
    }
}
