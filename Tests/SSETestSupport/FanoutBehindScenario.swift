import Logging
import NIOCore
import NIOPosix
import SSEBroker

/// The overload storm's failure, reduced, for any server that serves a broker on one loop: a
/// fan-out more than a turn behind, each event of a turn causing a task that runs after it (as the
/// answers to producers the turn made room for do), together far longer than a drain's 250 µs
/// fallback yield, and a request waiting in its socket meanwhile. With the loop's poll signal in
/// place the request is read between turns, not once the queue is empty.
///
/// Serve ``broker`` on ``group`` with two routes: `GET /ready`, which succeeds ``ready``, and
/// `GET /delivered`, which answers ``delivered`` as plain text.
public struct FanoutBehindScenario: Sendable {
    /// How many subscribers are on the loop: enough for 1,000 events to take several turns.
    public static let subscribers = 300
    /// How many events are published while the loop is held.
    public static let events = 1000

    /// One loop; shut it down at the end.
    public let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    public var loop: any EventLoop { self.group.next() }
    public let broker: Broker
    /// The first subscriber, whose count `GET /delivered` answers.
    public let counted: SinkTransport
    /// Succeeded by `GET /ready`.
    public let ready: EventLoopPromise<Void>

    public init(logger: Logger) throws {
        var configuration = BrokerConfiguration.predictable
        configuration.maxQueuedEvents = 4096
        self.broker = try Broker(configuration: configuration, logger: logger)
        let loop = self.group.next()
        self.counted = SinkTransport(eventLoop: loop)
        self.ready = loop.makePromise(of: Void.self)
    }

    /// What `GET /delivered` answers: the events written to ``counted`` so far.
    public var delivered: String { "\(self.counted.events.load(ordering: .relaxed))" }

    /// Subscribes ``counted`` and more sinks on the loop (one with a 100 µs follow-up per event),
    /// holds the loop, publishes ``events``, sends `GET /delivered` to the server on `port` and
    /// lets the loop go.
    /// - Returns: the events ``counted`` had been written when the request was read.
    public func eventsWrittenWhenARequestWasRead(port: Int) async throws -> Int {
        let loop = self.loop
        let broker = self.broker
        let transports: [SinkTransport] =
            [self.counted, SinkTransport(eventLoop: loop, followUp: .microseconds(100))]
            + (2..<Self.subscribers).map { _ in SinkTransport(eventLoop: loop) }
        try await loop.submit {
            for (index, transport) in transports.enumerated() {
                transport.subscription = try broker.subscribe(
                    clientID: "s\(index)", lastEventID: nil, remoteAddress: nil, userAgent: nil, transport: transport
                )
            }
        }.get()
        // The connection is registered and read before the loop is held.
        let connection = try await RawConnection.connect(port: port)
        try await connection.send("GET /ready HTTP/1.1\r\nHost: test\r\n\r\n")
        try await self.ready.futureResult.get()

        let release = await hold(loop)
        for index in 0..<Self.events {
            try broker.broadcast(Event(data: "event \(index)"))
        }
        try await connection.send("GET /delivered HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        release()
        let text = try await connection.untilClosed()
        guard let delivered = Int(text.components(separatedBy: "\r\n\r\n").last ?? "") else {
            throw ScenarioError.unexpectedAnswer(text)
        }
        return delivered
    }

    public enum ScenarioError: Error {
        case unexpectedAnswer(String)
    }
}
