import Logging
import NIOCore
import NIOPosix
import SSEBroker
import SSEBrokerServer
import SSEClient
import SSETestSupport
import ServiceLifecycle
import Testing

/// `BrokerServer` as a swift-service-lifecycle `Service` in a `ServiceGroup`, as an app runs it.
@Suite(.timeLimit(.minutes(1)))
struct ServiceTests {
    /// Runs `server` in a group of its own; returns the group and the task running it.
    private func runInGroup(_ server: BrokerServer) -> (ServiceGroup, Task<Void, any Error>) {
        let group = ServiceGroup(configuration: .init(services: [server], logger: quietLogger))
        return (group, Task { try await group.run() })
    }

    @Test func gracefulShutdownOfTheGroup_deliversAcceptedEvents_saysFarewell_andEndsTheGroup() async throws {
        let broker = try Broker(logger: quietLogger)
        let server = BrokerServer(broker: broker, port: 0, group: MultiThreadedEventLoopGroup.singleton, logger: quietLogger)
        // Started before the group, as an app does to learn the port: run() then only serves.
        let port = try #require(try await server.start().port)
        let (group, running) = self.runInGroup(server)
        let testServer = TestServer(broker: broker, server: server, port: port)
        var readers: [StreamReader] = []
        for index in 0..<5 {
            readers.append(try await testServer.connectedReader("/connect?id=s\(index)"))
        }
        let publisher = try await testServer.publisher()
        for index in 1...20 {
            #expect(try await publisher.post("/broadcast", body: "e\(index)").status == .accepted)
        }
        await group.triggerGracefulShutdown()
        try await running.value
        await TestServer.expectEventsThenFarewell(&readers, data: (1...20).map { "e\($0)" })
        #expect(broker.isShuttingDown)
        await #expect(throws: (any Error).self) {
            _ = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port).post("/broadcast", body: "late")
        }
    }

    @Test func cancellingTheGroup_shutsTheServerDown_streamsGetTheFarewell() async throws {
        let broker = try Broker(logger: quietLogger)
        let server = BrokerServer(broker: broker, port: 0, group: MultiThreadedEventLoopGroup.singleton, logger: quietLogger)
        let port = try #require(try await server.start().port)
        let (_, running) = self.runInGroup(server)
        let testServer = TestServer(broker: broker, server: server, port: port)
        var reader = try await testServer.connectedReader("/connect?id=cancelled")
        running.cancel()
        try await running.value
        #expect(await reader.untilEnd().last == .comment("broker shutting down"))
        #expect(broker.isShuttingDown)
    }
}
