import Foundation
import Logging
import PostgresNIO
import SSEBrokerPostgres
import SSEClient
import SSETestSupport
import Testing

/// Two real `sse-console` nodes of one cluster on a real PostgreSQL (`PostgresServer.testDatabaseURL()`:
/// `SSE_TEST_POSTGRES_URL`, else a private server): one in a real terminal (tmux), whose header and
/// cluster pane show both nodes and the clients connected to the other one; one headless, whose
/// kick, ban and unban act on the other node.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ClusterConsoleEndToEndTests {

    @Test func clusterPane_showsBothNodes_andTheOtherNodesClients() async throws {
        // A cluster of its own: its tables never meet another test's or another run's.
        try await ClusterTestDatabase.withPrefix { databaseURL, prefix in
            let binary = try consoleBinary()
            let cluster = ["--cluster", databaseURL, "--cluster-prefix", prefix]

            let other = try ConsoleProcess.start(["--no-tui", "--port", "0", "--heartbeat", "60", "--node-name", "e2e-other"] + cluster)
            defer { other.killIfRunning() }
            let otherPort = try await other.listeningPort()

            let tmux = Tmux()
            defer { tmux.kill() }
            try tmux.run(
                "new-session", "-d", "-s", tmux.session, "-x", "100", "-y", "30",
                "TERM=xterm-256color \(binary) --port 0 --heartbeat 60 --node-name e2e-tui \(cluster.map { "'\($0)'" }.joined(separator: " ")); exec sleep 600"
            )
            try tmux.run("set-option", "-t", tmux.session, "status", "off")

            // The header says which node this is and that it is online; the pane lists both nodes.
            try await tmux.waitForScreen("both nodes in the cluster pane") { screen in
                let lines = screen.split(separator: "\n")
                // At 100 columns the header keeps `e2e-tui online 2 nodes lag 0` (the word `cluster` goes first).
                return lines.first?.contains("e2e-tui online 2 nodes lag 0") == true
                    && lines.contains { $0.hasPrefix("── Cluster e2e-tui ─ online") }
                    && lines.contains { $0.hasPrefix("* e2e-tui ") && $0.hasSuffix("alive") }
                    && lines.contains { $0.hasPrefix("  e2e-other ") && $0.hasSuffix("alive") }
            }

            // Two subscribers on the other node show in its row (CLIENTS is the third column) within a heartbeat or two.
            let carol = try await SSEClient.connect(host: "127.0.0.1", port: otherPort, path: "/connect?id=carol")
            let dave = try await SSEClient.connect(host: "127.0.0.1", port: otherPort, path: "/connect?id=dave")
            let screen = try await tmux.waitForScreen("the other node's two clients") { screen in
                screen.split(separator: "\n").contains { line in
                    line.hasPrefix("  e2e-other ") && line.split(separator: " ", omittingEmptySubsequences: true)[2] == "2"
                }
            }
            #expect(screen.contains("2 clients"))  // the pane title: clients on every live node
            #expect(screen.contains("Clients 0"))  // none on this node

            // `nodes` on the command line focuses the pane and sums the cluster up.
            try tmux.type("nodes")
            try tmux.press("Enter")
            try await tmux.waitForScreen("the nodes summary") { $0.contains("cluster e2e-tui online · 2 nodes · 2 clients") }

            // The other node stops. Its row should go at once, but a stopping node cannot delete it yet
            // (its leave runs in an already cancelled task), so within the node timeout it reads `dead`
            // and the header counts one live node of two; either outcome is right for the console.
            kill(other.pid, SIGTERM)
            #expect(try await other.waitForExit(within: .seconds(15)) == 0)
            try await tmux.waitForScreen("the other node gone or dead") { screen in
                let lines = screen.split(separator: "\n")
                let header = lines.first ?? ""
                let gone = header.contains("e2e-tui online 1 node lag") && !screen.contains("e2e-other")
                let dead = header.contains("e2e-tui online 1/2 nodes lag")
                    && lines.contains { $0.hasPrefix("  e2e-other ") && $0.contains(" dead") }
                return gone || dead
            }
            await carol.close()
            await dave.close()

            try tmux.type("quit")
            try tmux.press("Enter")
            try await tmux.waitForScreen("the console to exit") { $0.contains("sse-console: served") }
        }
    }

    @Test func headless_kickBanAndUnban_actOnTheOtherNode_andCountItsConnections() async throws {
        try await ClusterTestDatabase.withPrefix { databaseURL, prefix in
            let cluster = ["--cluster", databaseURL, "--cluster-prefix", prefix]
            let other = try ConsoleProcess.start(["--no-tui", "--port", "0", "--heartbeat", "60", "--node-name", "cli-other"] + cluster)
            defer { other.killIfRunning() }
            let otherPort = try await other.listeningPort()

            // The operator's node, headless: commands typed on its stdin (a terminal), answers on stdout.
            let headless = Tmux()
            defer { headless.kill() }
            try headless.run(
                "new-session", "-d", "-s", headless.session, "-x", "160", "-y", "30",
                "\(try consoleBinary()) --no-tui --port 0 --heartbeat 60 --node-name cli-ops "
                    + "\(cluster.map { "'\($0)'" }.joined(separator: " ")) 2>/dev/null; exec sleep 600"
            )
            let started = try await headless.waitForScreen("the headless node") { $0.contains("listening on") }
            let port = try #require(started.firstMatch(of: /listening on http:\/\/[^:]+:(\d+)/).flatMap { Int($0.output.1) })
            func answer(_ command: String, _ expected: String) async throws {
                try headless.type(command)
                try headless.press("Enter")
                try await headless.waitForScreen("the answer to \(command)") { screen in
                    screen.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == expected }
                }
            }

            // carol twice on the other node and once on this one; dave on the other node.
            var carols = [
                StreamReader(try await SSEClient.connect(host: "127.0.0.1", port: otherPort, path: "/connect?id=carol")),
                StreamReader(try await SSEClient.connect(host: "127.0.0.1", port: otherPort, path: "/connect?id=carol")),
                StreamReader(try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=carol")),
            ]
            var dave = StreamReader(try await SSEClient.connect(host: "127.0.0.1", port: otherPort, path: "/connect?id=dave"))
            // A kick counts the other nodes' connections from their presence rows: wait until they are there.
            try await ClusterDatabase.waitUntil("both nodes and their clients are in the database") {
                let nodes = try await ClusterDatabase.count("SELECT count(*)::int8 FROM \(prefix)_nodes", url: databaseURL)
                let connections = try await ClusterDatabase.count(
                    "SELECT coalesce(sum(connections), 0)::int8 FROM \(prefix)_presence", url: databaseURL)
                return nodes == 2 && connections == 4
            }

            try await answer("kick carol", "kicked carol (3 connections on 2 nodes)")
            for index in carols.indices { _ = await carols[index].untilEnd() }

            try await answer(
                "ban dave", "banned dave until unban (1 connection on 1 node closed); it gets 204 No Content from every node")
            _ = await dave.untilEnd()  // the other node closed it: it has the ban
            #expect(try await self.status(connecting: "dave", port: otherPort) == 204)
            #expect(try await self.status(connecting: "dave", port: port) == 204)

            try await answer("unban dave", "unbanned dave")
            #expect(try await self.status(connecting: "dave", port: port) == 200)
            try await ClusterDatabase.waitUntil("the other node lets dave in again") {
                try await self.status(connecting: "dave", port: otherPort) == 200
            }
            try await answer("unban dave", "error: unban: dave is not banned")

            try await answer("quit", "bye")
            kill(other.pid, SIGTERM)
            #expect(try await other.waitForExit(within: .seconds(15)) == 0)
        }
    }

    /// What a subscriber gets: `200` and a stream, or `204` when banned.
    func status(connecting clientID: String, port: Int) async throws -> UInt {
        let client = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=\(clientID)")
        await client.close()
        return client.status.code
    }
}

/// The console tests' own statements on the cluster's database: waiting for what the nodes write
/// there (``ClusterTestDatabase`` gives each test a prefix and drops what it created).
enum ClusterDatabase {
    /// The one `int8` that `sql` selects.
    static func count(_ sql: String, url: String) async throws -> Int64 {
        try await ClusterTestDatabase.withClient(url) { client in
            let rows = try await client.query(PostgresQuery(unsafeSQL: sql))
            for try await count in rows.decode(Int64.self) { return count }
            return 0
        }
    }

    /// Polls `condition` every 50 ms until it holds, for at most `timeout`: the database and another
    /// process announce nothing a test could await.
    static func waitUntil(
        _ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ChildProcessError.failed("timed out waiting until \(what)")
    }
}
