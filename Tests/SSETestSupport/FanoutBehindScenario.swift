import NIOCore
import SSEBroker

/// The overload storm's failure, reduced, for any server that serves a broker on one loop: a
/// fan-out more than a turn behind, each event of a turn causing a task that runs after it (as the
/// answers to producers the turn made room for do), together far longer than a drain's 250 µs
/// fallback yield, and a request waiting in its socket meanwhile. With the loop's poll signal in
/// place the request is read between turns, not once the queue is empty.
///
/// The server must answer `GET /ready` by succeeding `ready`, and `GET /delivered` with the events
/// written to `counted` so far, as plain text.
public enum FanoutBehindScenario {
    /// How many subscribers are on the loop: enough for 1,000 events to take several turns.
    public static let subscribers = 300
    /// How many events are published while the loop is held.
    public static let events = 1000

    /// Subscribes `counted` and more sinks on `loop` (one with a 100 µs follow-up per event),
    /// holds the loop, publishes ``events``, sends `GET /delivered` and lets the loop go.
    /// - Returns: the events `counted` had been written when the request was read.
    public static func eventsWrittenWhenARequestWasRead(
        broker: Broker,
        loop: any EventLoop,
        port: Int,
        counted: SinkTransport,
        ready: EventLoopFuture<Void>
    ) async throws -> Int {
        let transports: [SinkTransport] =
            [counted, SinkTransport(eventLoop: loop, followUp: .microseconds(100))]
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
        try await ready.get()

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
