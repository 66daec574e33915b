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
        let scenario = try FanoutBehindScenario(logger: quietLogger)
        let router = Router(context: BasicBrokerRequestContext.self)
        router.addSSEBroker(scenario.broker)
        router.get("/ready") { _, _ in
            scenario.ready.succeed()
            return "ready"
        }
        // What the subscribers had been written when this request was read.
        router.get("/delivered") { _, _ in scenario.delivered }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            eventLoopGroupProvider: .shared(scenario.group),
            logger: quietLogger
        )
        let (signalReady, signalled) = AsyncStream.makeStream(of: Void.self)
        let service = BrokerService(
            broker: scenario.broker, eventLoopGroup: scenario.group, onSignalReady: { signalled.finish() }
        )
        let running = Task { try await service.run() }
        for await _ in signalReady {}

        try await app.test(.live) { client in
            let delivered = try await scenario.eventsWrittenWhenARequestWasRead(port: try #require(client.port))
            #expect(delivered > 0)
            #expect(
                delivered < FanoutBehindScenario.events,
                "the request waited for the whole queue: \(delivered) events written first"
            )
        }
        // Cancelled outside a service group: it shuts the broker down and closes the pipes.
        running.cancel()
        try await running.value
        try await scenario.group.shutdownGracefully()
    }
}
