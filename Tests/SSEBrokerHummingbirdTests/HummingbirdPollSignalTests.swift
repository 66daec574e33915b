import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOPosix
import SSEBroker
@testable import SSEBrokerHummingbird
import SSETestSupport
import Testing

/// On Hummingbird's loops too, a loop behind on the broker's fan-out still reads its sockets, once
/// `BrokerService` runs: it puts a poll signal on the application's loops, as the embedded server
/// does on its own (without one, the fan-out's rest ran before the loop read anything).
@Suite(.timeLimit(.minutes(1)))
struct HummingbirdPollSignalTests {
    @Test func withBrokerService_aRequestIsReadBetweenTurns_whileTheFanoutIsBehind() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        var configuration = BrokerConfiguration.predictable
        configuration.maxQueuedEvents = 4096
        let broker = try Broker(configuration: configuration, logger: quietLogger)
        let counted = SinkTransport(eventLoop: loop)
        let ready = loop.makePromise(of: Void.self)
        let router = Router(context: BasicBrokerRequestContext.self)
        router.addSSEBroker(broker)
        router.get("/ready") { _, _ in
            ready.succeed()
            return "ready"
        }
        // What the subscribers had been written when this request was read.
        router.get("/delivered") { _, _ in "\(counted.events.load(ordering: .relaxed))" }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            eventLoopGroupProvider: .shared(group),
            logger: quietLogger
        )
        let (signalReady, signalled) = AsyncStream.makeStream(of: Void.self)
        let service = BrokerService(broker: broker, eventLoopGroup: group, onSignalReady: { signalled.finish() })
        let running = Task { try await service.run() }
        for await _ in signalReady {}

        try await app.test(.live) { client in
            let delivered = try await FanoutBehindScenario.eventsWrittenWhenARequestWasRead(
                broker: broker, loop: loop, port: try #require(client.port), counted: counted, ready: ready.futureResult
            )
            #expect(delivered > 0)
            #expect(
                delivered < FanoutBehindScenario.events,
                "the request waited for the whole queue: \(delivered) events written first"
            )
        }
        // Cancelled outside a service group: it shuts the broker down and closes the pipes.
        running.cancel()
        try await running.value
        try await group.shutdownGracefully()
    }
}
