import NIOCore
import NIOPosix
import SSEBroker
@testable import SSEBrokerServer
import SSETestSupport
import Testing

#if TLS
import NIOSSL
#endif

/// HTTP/2 with a real client of another implementation (Python's `h2`, `Tests/Clients/h2client.py`):
/// many subscriber streams on one connection, each a subscriber like an HTTP/1.1 connection, and
/// what a client that misbehaves on one stream, or floods the connection, gets.
@Suite(.timeLimit(.minutes(2)))
struct HTTP2Tests {
    static let h2c = HTTP2Options(cleartext: true)

    private static func publish(_ broker: Broker, _ count: Int, data: String = "event") throws -> [String] {
        try (0..<count).map { index in String(try broker.broadcast(Event(data: "\(data) \(index)")).eventID) }
    }

    /// For each open connection of `server`: whether it speaks HTTP/2, and whether its flushes wait
    /// for the end of the loop's turn (nil: no ``WriteCoalescingHandler``).
    private static func flushDeferral(_ server: BrokerServer) async throws -> [(http2: Bool, defers: Bool?)] {
        var result: [(http2: Bool, defers: Bool?)] = []
        for channel in server.openConnections {
            result.append(
                try await channel.eventLoop.submit {
                    let coalescer = try? channel.pipeline.syncOperations.handler(type: WriteCoalescingHandler.self)
                    return (ConnectionSetup.isHTTP2(channel), coalescer?.defersFlushes)
                }.get()
            )
        }
        return result
    }

    @Test func twentyStreamsOnOneConnection_getEveryEventOnceInOrder_andAKickResetsOnlyItsStream() async throws {
        try await TestServer.with(http2: Self.h2c) { server in
            let client = try await HTTP2TestClient.connect(port: server.port)
            defer { client.close() }
            let ids = (0..<20).map { "s\($0)" }
            for id in ids {
                #expect(try await client.open(id) == 200)
            }
            // The response head goes out once the stream is registered: all 20 are subscribers now.
            let clients = server.broker.clients
            #expect(clients.count == 20)
            #expect(clients.allSatisfy { $0.httpVersion == "h2" })
            #expect(Set(clients.compactMap(\.remoteAddress)).count == 1, "one connection")

            var published = try Self.publish(server.broker, 10)
            try await client.waitForEvents(10)
            var report = try await client.report()
            for id in ids {
                #expect(report.streams[id]?.events == published, "\(id)")
            }

            #expect(try server.broker.kick("s7") == 1)
            #expect(try await client.waitForReset(of: "s7") == 8, "RST_STREAM CANCEL")
            published += try Self.publish(server.broker, 5)
            try await client.waitForEvents(15)
            report = try await client.report()
            #expect(report.streams["s7"]?.events == Array(published.prefix(10)))
            for id in ids where id != "s7" {
                #expect(report.streams[id]?.events == published, "\(id)")
                #expect(report.streams[id]?.reset == nil, "\(id)")
            }
            #expect(report.goaway == nil, "the connection stays")
            #expect(server.broker.clients.count == 19)
        }
    }

    @Test func aStreamThatIsNotRead_isClosedByTheTolerancePolicy_whileTheOthersKeepReceiving() async throws {
        var configuration = BrokerConfiguration.predictable
        configuration.tolerance = 3
        try await TestServer.with(configuration, http2: Self.h2c) { server in
            // Stream windows of 16 KiB; the stuck stream's is never given back (the connection's is).
            let client = try await HTTP2TestClient.connect(port: server.port, window: 16 << 10)
            defer { client.close() }
            let readers = (0..<9).map { "s\($0)" }
            for id in readers {
                try await client.open(id)
            }
            try await client.open("stuck", stall: true)
            // Batches of 10 events of 4 KB: the reading streams drain each batch before the next one
            // is sent, while the stuck stream's backlog grows past the 256 KiB limit (some 70 events),
            // then misses `tolerance` events in a row and is closed.
            let data = String(repeating: "x", count: 4000)
            var published: [String] = []
            while server.broker.clients.contains(where: { $0.clientID == "stuck" }), published.count < 200 {
                published += try Self.publish(server.broker, 10, data: data)
                try await client.waitForEvents(published.count)
            }
            #expect(try await client.waitForReset(of: "stuck") == 8)
            #expect(server.broker.statistics.disconnectedOverTolerance == 1)
            let report = try await client.report()
            for id in readers {
                #expect(report.streams[id]?.events == published, "\(id)")
            }
            let stuck = try #require(report.streams["stuck"]?.events)
            #expect(stuck == Array(published.prefix(stuck.count)), "what it got is in order")
            #expect(stuck.count <= 4, "no more than its 16 KiB window")
            #expect(published.count < 200, "closed by the policy, not by the end of the test")
            #expect(report.goaway == nil)
            #expect(server.broker.clients.count == 9)
        }
    }

    @Test func aConnectionThatReadsNothing_hasItsStreamsClosedByThePolicy_andOthersKeepReceiving() async throws {
        var configuration = BrokerConfiguration.predictable
        configuration.tolerance = 3
        try await TestServer.with(configuration, http2: Self.h2c) { server in
            let reader = try await HTTP2TestClient.connect(port: server.port)
            defer { reader.close() }
            try await reader.open("reader")
            let frozen = try await HTTP2TestClient.connect(port: server.port)
            defer { frozen.close() }
            for index in 0..<5 {
                try await frozen.open("frozen\(index)")
            }
            try await frozen.run("freeze", answer: "frozen")
            // The frozen connection's socket fills, then each stream's share of its backlog passes
            // the limit: each misses `tolerance` events and is reset, while the reading connection
            // gets everything. Batches of 50 events of 4 KB, drained by the reader in between.
            let data = String(repeating: "z", count: 4000)
            var published: [String] = []
            while server.broker.clients.contains(where: { $0.clientID.hasPrefix("frozen") }), published.count < 5000 {
                published += try Self.publish(server.broker, 50, data: data)
                try await reader.waitForEvents(published.count)
            }
            #expect(published.count < 5000, "closed by the policy, not by the end of the test")
            #expect(server.broker.statistics.disconnectedOverTolerance == 5)
            #expect(server.broker.clients.map(\.clientID) == ["reader"])
            #expect(try await reader.report().streams["reader"]?.events == published)
        }
    }

    @Test func rapidResetFlood_getsGOAWAY_andOtherConnectionsKeepStreaming() async throws {
        try await TestServer.with(http2: Self.h2c) { server in
            let steady = try await HTTP2TestClient.connect(port: server.port)
            defer { steady.close() }
            try await steady.open("steady")
            let attacker = try await HTTP2TestClient.connect(port: server.port)
            defer { attacker.close() }
            // Streams opened and reset at once (CVE-2023-44487): ENHANCE_YOUR_CALM after 200.
            #expect(try await attacker.run("rapid-reset 1000", answer: "rapid-reset ") == "rapid-reset 11")

            let published = try Self.publish(server.broker, 3)
            try await steady.waitForEvents(3)
            #expect(try await steady.report().streams["steady"]?.events == published)
            // None of the flood's streams stays registered.
            try await server.server.waitUntil { server.broker.clients.map(\.clientID) == ["steady"] }
        }
    }

    @Test func publishingOverHTTP2_hasTheSameLimitsPerStream() async throws {
        var configuration = BrokerConfiguration.predictable
        configuration.maxBodyBytes = 1024
        try await TestServer.with(configuration, http2: Self.h2c) { server in
            let client = try await HTTP2TestClient.connect(port: server.port)
            defer { client.close() }
            try await client.open("reader")
            let tooLarge = try await client.run("post /broadcast \(String(repeating: "y", count: 2000))", answer: "response ")
            #expect(tooLarge.hasPrefix("response 413 "), "\(tooLarge)")
            let badType = try await client.run("post /broadcast?type=a%0Ab fine", answer: "response ")
            #expect(badType.hasPrefix("response 400 "), "\(badType)")
            let accepted = try await client.run("post /broadcast?type=news fine", answer: "response ")
            #expect(accepted.hasPrefix("response 202 ") && accepted.contains(#""delivered":1"#), "\(accepted)")
            try await client.waitForEvents(1)
            let report = try await client.report()
            #expect(report.streams["reader"]?.events.count == 1)
            #expect(report.goaway == nil, "refusals end their stream only")
        }
    }

    @Test func advertisesItsLimits_andAHeaderFloodIsRefused() async throws {
        let security = ServerSecurity(limits: ServerLimits(maxHeaderBytes: 4096))
        try await TestServer.with(security: security, http2: HTTP2Options(cleartext: true, maxConcurrentStreams: 7)) { server in
            let client = try await HTTP2TestClient.connect(port: server.port)
            defer { client.close() }
            #expect(try await client.run("settings", answer: "settings ") == "settings max_concurrent_streams=7 max_header_list_size=4096")
            let flood = try await client.run("big-header 20000", answer: "big-header ")
            #expect(!flood.contains("status=200"), "\(flood)")
            #expect(server.broker.clients.isEmpty)
        }
    }

    @Test func shutdown_sendsGOAWAY_afterDeliveringTheAcceptedEvents() async throws {
        let broker = try Broker(configuration: .predictable, logger: quietLogger)
        let server = BrokerServer(
            broker: broker, port: 0, group: MultiThreadedEventLoopGroup.singleton, http2: Self.h2c, logger: quietLogger
        )
        let port = try #require(try await server.start().port)
        let client = try await HTTP2TestClient.connect(port: port)
        defer { client.close() }
        for id in ["a", "b", "c"] {
            try await client.open(id)
        }
        let published = try Self.publish(broker, 5)
        try await server.shutdown()
        #expect(try await client.run("goaway", answer: "goaway ") == "goaway 0", "NO_ERROR")
        let report = try await client.report()
        for id in ["a", "b", "c"] {
            #expect(report.streams[id]?.events == published, "\(id)")
        }
    }

    @Test func h2cAndHTTP1_shareThePort() async throws {
        try await TestServer.with(http2: Self.h2c) { server in
            let client = try await HTTP2TestClient.connect(port: server.port)
            defer { client.close() }
            try await client.open("over-h2")
            // An HTTP/1.1 subscriber on the same port, told apart by its first bytes.
            var reader = try await server.connectedReader("/connect?id=over-h1")
            let published = try Self.publish(server.broker, 1)
            try await client.waitForEvents(1)
            #expect(try await reader.nextEvent().lastEventID == published[0])
            #expect(Set(server.broker.clients.map(\.httpVersion)) == ["h2", "HTTP/1.1"])
            // One flush per turn on the h2 connection, whatever its streams wrote; HTTP/1.1 as it was.
            let deferral = try await Self.flushDeferral(server.server)
            #expect(deferral.count == 2)
            #expect(deferral.allSatisfy { $0.http2 ? $0.defers == true : $0.defers == nil }, "\(deferral)")
        }
    }

    #if TLS
    @Test func overTLS_ALPNChoosesH2_forStreamsAndPublishes() async throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        let broker = try Broker(configuration: .predictable, logger: quietLogger)
        let server = BrokerServer(broker: broker, port: 0, group: MultiThreadedEventLoopGroup.singleton, logger: quietLogger)
        try server.useTLS(
            TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: certificate.key, format: .pem))
            )
        )
        let port = try #require(try await server.start().port)
        // The script refuses a connection on which ALPN did not choose h2.
        let client = try await HTTP2TestClient.connect(port: port, tls: true)
        defer { client.close() }
        for id in ["a", "b", "c"] {
            try await client.open(id)
        }
        let accepted = try await client.run("post /broadcast over-tls", answer: "response ")
        #expect(accepted.hasPrefix("response 202 ") && accepted.contains(#""delivered":3"#), "\(accepted)")
        try await client.waitForEvents(1)
        #expect(broker.clients.allSatisfy { $0.httpVersion == "h2" })
        let deferral = try await Self.flushDeferral(server)
        #expect(deferral.count == 1 && deferral[0].http2 && deferral[0].defers == true, "\(deferral)")
        try await server.shutdown()
    }
    #endif
}
