import Logging
import NIOCore
import NIOPosix
import SSEBroker
import SSEBrokerServer
import SSEClient
import SSETestSupport
import Testing

@Suite(.timeLimit(.minutes(1)))
struct ShutdownTests {
    @Test func eventsAcceptedBeforeShutdown_areDeliveredFirst_thenTheFarewell() async throws {
        let broker = try Broker(logger: quietLogger)
        let server = BrokerServer(broker: broker, port: 0, group: MultiThreadedEventLoopGroup.singleton, logger: quietLogger)
        let port = try #require(try await server.start().port)
        let testServer = TestServer(broker: broker, server: server, port: port)
        var readers: [StreamReader] = []
        for index in 0..<20 {
            readers.append(try await testServer.connectedReader("/connect?id=c\(index)"))
        }
        let publisher = try await testServer.publisher()
        for index in 1...50 {
            #expect(try await publisher.post("/broadcast", body: "e\(index)").status == .accepted)
        }
        // Two concurrent callers: the second returns only once the first is done.
        async let first: Void = server.shutdown()
        async let second: Void = server.shutdown()
        _ = try await (first, second)
        await TestServer.expectEventsThenFarewell(&readers, data: (1...50).map { "e\($0)" })
        #expect(broker.recentDisconnections.allSatisfy { $0.reason == .shutdown })
        // The producer's connection was closed too.
        await #expect(throws: (any Error).self) { try await publisher.post("/broadcast", body: "late") }
    }

    @Test func newConnections_areRefusedAfterShutdown() async throws {
        let broker = try Broker(logger: quietLogger)
        let server = BrokerServer(broker: broker, port: 0, group: MultiThreadedEventLoopGroup.singleton, logger: quietLogger)
        let port = try #require(try await server.start().port)
        try await server.shutdown()
        await #expect(throws: (any Error).self) {
            _ = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port).post("/broadcast", body: "x")
        }
    }
}
