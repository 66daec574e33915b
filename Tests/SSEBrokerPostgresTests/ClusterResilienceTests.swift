import Foundation
import NIOCore
import NIOHTTP1
import SSEBroker
import SSEClient
import SSETestSupport
import Testing

@testable import SSEBrokerPostgres

/// What happens when things fail: the database restarts, a node dies. Healthy subscribers lose nothing
/// that a producer was told was accepted.
@Suite(.timeLimit(.minutes(3))) struct ClusterResilienceTests {
    /// Publishes `count` events, alternating over `ports`, retrying an event that gets `503` (its
    /// node cannot reach the log) until it is accepted; `midway` runs once, after `count / 3` events.
    /// - Returns: the accepted ids, in publish order.
    func produce(_ count: Int, over ports: [Int], midway: @Sendable () async throws -> Void) async throws -> (ids: [UInt64], refused: Int) {
        var ids: [UInt64] = []
        var refused = 0
        let deadline = ContinuousClock.now + .seconds(60)
        for index in 0..<count {
            if index == count / 3 { try await midway() }
            while true {
                let port = ports[(index + refused) % ports.count]
                let response = try? await TestNode.post(port: port, "e\(index)")
                if let response, response.status == .accepted, let id = response.eventID {
                    ids.append(id)
                    break
                }
                if let response {
                    #expect(response.status == .serviceUnavailable, "\(response.status): \(response.text)")
                    #expect(response.text.contains("retry later"))
                }
                refused += 1
                #expect(ContinuousClock.now < deadline, "the cluster did not accept event \(index) again within a minute")
                guard ContinuousClock.now < deadline else { throw StreamEnded.ended }
                try await Task.sleep(for: .milliseconds(20))  // a producer's backoff, not synchronisation
            }
        }
        return (ids, refused)
    }

    @Test func databaseRestartedMidStream_healthySubscribersLoseNothing_andIDsStayInOrder() async throws {
        // A private server: restarting the shared one would disturb the other tests.
        let database = try await PostgresServer.start()
        defer { database.destroy() }
        let prefix = TestDatabase.prefix()
        let nodes = [
            try await TestNode.start("r1", url: database.url, prefix: prefix),
            try await TestNode.start("r2", url: database.url, prefix: prefix),
        ]
        var readers: [StreamReader] = []
        for node in nodes {
            readers.append(try await node.connect())
            readers.append(try await node.connect())
        }
        let count = 90
        let (ids, _) = try await self.produce(count, over: nodes.map(\.port)) {
            try await database.restart()
        }
        #expect(ids == ids.sorted() && Set(ids).count == count)
        for index in readers.indices {
            var received: [ServerSentEvent] = []
            for _ in 0..<count { received.append(try await readers[index].nextEvent()) }
            #expect(received.map(\.data) == (0..<count).map { "e\($0)" }, "reader \(index)")
            #expect(received.map(\.lastEventID) == ids.map { String($0) }, "reader \(index)")
        }
        for node in nodes {
            let status = node.cluster.status
            #expect(status.reconnects >= 1, "\(status.nodeName) never noticed the restart")
            #expect(status.state == .online)
        }
        for var reader in readers { await reader.client.close(); _ = await reader.untilEnd() }
        for node in nodes { await node.stop() }
    }

    @Test func databaseDown_publishesGet503_andTheNodeComesBackAndCatchesUp() async throws {
        let database = try await PostgresServer.start()
        defer { database.destroy() }
        let prefix = TestDatabase.prefix()
        let node = try await TestNode.start("d1", url: database.url, prefix: prefix)
        var reader = try await node.connect()
        #expect(try await node.post("before").status == .accepted)
        database.stop()
        try await eventually("the node reports the database offline") {
            if case .offline = node.cluster.status.state { return true }
            return false
        }
        let refused = try await node.post("while down")
        #expect(refused.status == .serviceUnavailable)
        #expect(refused.text.contains("cannot reach the shared log"))
        #expect(refused.headers.first(name: "retry-after") != nil)
        try await database.restart()
        #expect(await node.cluster.waitUntilOnline(timeout: .seconds(30)))
        #expect(try await node.post("after").status == .accepted)
        #expect(try await reader.data(2) == ["before", "after"])
        await reader.client.close()
        await node.stop()
    }

    @Test func nodeKilledAndRestarted_presenceExpires_andItsClientResumesWhereItLeftOff() async throws {
        let url = try await TestDatabase.url()
        let prefix = TestDatabase.prefix()
        let binary = try builtExecutable("sse-console")
        func launch(_ name: String) async throws -> (ChildProcess, Int) {
            let process = try ChildProcess.launch([
                binary, "--no-tui", "--port", "0", "--cluster", url, "--cluster-prefix", prefix, "--node-name", name,
                "--log-level", "warning",
            ])
            let line = try await process.waitForLine { $0.hasPrefix("listening on ") }
            let port = try #require(line.split(separator: ":").last.flatMap { Int($0) })
            return (process, port)
        }
        let (survivor, survivorPort) = try await launch("survivor")
        defer { survivor.terminate() }
        var (victim, victimPort) = try await launch("victim")
        defer { victim.terminate() }

        let watcherClient = try await SSEClient.connect(host: "127.0.0.1", port: survivorPort, path: "/connect?id=watcher")
        var watcher = StreamReader(watcherClient)
        let frankClient = try await SSEClient.connect(host: "127.0.0.1", port: victimPort, path: "/connect?id=frank")
        var frank = StreamReader(frankClient)
        try await presenceVisible("frank", url: url, prefix: prefix)
        let first = try await TestNode.post(port: survivorPort, "one", to: "frank")
        #expect(first.status == .accepted)
        let seen = try await frank.nextEvent()
        #expect(seen.data == "one")

        #expect(victim.terminate(signal: SIGKILL) == -SIGKILL)
        _ = await frank.untilEnd()
        // The dead node's presence stops counting once it has been silent for the node timeout.
        // Until then, events for frank are accepted (and kept for when he comes back).
        var probes = 0
        try await eventually("broadcastTo frank is refused with 404 after its node died") {
            let status = try await TestNode.post(port: survivorPort, "probe", to: "frank").status
            if status == .accepted { probes += 1 }
            return status == .notFound
        }
        var missed: [String] = []
        for index in 1...3 {
            #expect(try await TestNode.post(port: survivorPort, "missed \(index)").status == .accepted)
            missed.append("missed \(index)")
        }
        #expect(try await watcher.data(3) == missed)  // targeted events never reached the watcher

        // The node comes back under the same name; frank reconnects to it as an EventSource would.
        (victim, victimPort) = try await launch("victim")
        var headers = HTTPHeaders()
        headers.add(name: "Last-Event-ID", value: seen.lastEventID)
        let resumedClient = try await SSEClient.connect(host: "127.0.0.1", port: victimPort, path: "/connect?id=frank", headers: headers)
        var resumed = StreamReader(resumedClient)
        #expect(try await resumed.data(probes + 3) == Array(repeating: "probe", count: probes) + missed)
        try await presenceVisible("frank", url: url, prefix: prefix)
        #expect(try await TestNode.post(port: survivorPort, "welcome back", to: "frank").status == .accepted)
        #expect(try await resumed.data(1) == ["welcome back"])

        // /healthz of a cluster node describes the cluster.
        let health = try await HTTPClientConnection.connect(host: "127.0.0.1", port: victimPort)
        let answer = try await health.send(.GET, "/healthz")
        #expect(answer.status == .ok)
        #expect(answer.text.contains(#""state":"online""#) && answer.text.contains(#""name":"survivor""#))
        await health.close()
        for client in [watcherClient, resumedClient] { await client.close() }
        victim.terminate()
        survivor.terminate()
        await TestDatabase.drop(prefix: prefix, url: url)
    }
}
