import Foundation
import NIOCore
import SSEClient
import SSETestSupport
import Testing

/// The operator's actions that stick, in a real terminal (tmux): bans kept in the `--history-file`
/// across a restart and lifted from the bans view, the audit trail in `--audit-log`, and on a
/// cluster (two or three real nodes on a real PostgreSQL) kicks and bans on every node and the
/// all-nodes clients table.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct OpsEndToEndTests {
    let directory: String

    init() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("sse-ops-e2e-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
    }

    /// Starts the console in a fresh tmux session; returns the session and the port it serves.
    func startConsole(_ arguments: String, cols: Int, rows: Int, environment: String = "") async throws -> (Tmux, Int) {
        let tmux = Tmux()
        let binary = try consoleBinary()
        try tmux.run(
            "new-session", "-d", "-s", tmux.session, "-x", "\(cols)", "-y", "\(rows)",
            "TERM=xterm-256color \(environment) \(binary) --port 0 --heartbeat 60 \(arguments); exec sleep 600"
        )
        try tmux.run("set-option", "-t", tmux.session, "status", "off")
        // The header's first words are the address served (a cluster pane may show port 0 before the
        // advertised URL is updated).
        let first = try await tmux.waitForScreen("the listen address") { screen in
            screen.split(separator: "\n").first?.firstMatch(of: /127\.0\.0\.1:[1-9]/) != nil
        }
        let header = String(first.split(separator: "\n")[0])
        let port = try #require(header.firstMatch(of: /127\.0\.0\.1:(\d+)/).flatMap { Int($0.output.1) })
        return (tmux, port)
    }

    func command(_ tmux: Tmux, _ line: String) throws {
        try tmux.type(line)
        try tmux.press("Enter")
    }

    /// The status a subscriber with `id` gets: 200 and a stream, or 204 when banned.
    func connectStatus(_ id: String, port: Int) async throws -> UInt {
        let client = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=\(id)")
        await client.close()
        return client.status.code
    }

    @Test func standAlone_banSurvivesARestart_inTheHistoryFile_andTheAuditLogHasEveryAction() async throws {
        defer { try? FileManager.default.removeItem(atPath: self.directory) }
        let history = self.directory + "/history.sqlite"
        let audit = self.directory + "/audit.jsonl"
        let arguments = "--history-file \(history) --audit-log \(audit)"

        // First run, 80x24 without colours, and sparklines in ASCII.
        var (tmux, port) = try await self.startConsole(arguments + " --ascii", cols: 80, rows: 24, environment: "NO_COLOR=1")
        let firstSession = tmux
        defer { firstSession.kill() }
        let mallory = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=mallory")
        let bob = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=bob")
        try await tmux.waitForScreen("two clients") { $0.contains("Clients 2") }

        try self.command(tmux, "ban mallory 1h")
        try await tmux.waitForScreen("the ban's outcome") {
            $0.contains("banned mallory for 1h (1 connection on 1 node closed); it gets 204 No Content")
        }
        var malloryStream = StreamReader(mallory)
        _ = await malloryStream.untilEnd()
        #expect(try await self.connectStatus("mallory", port: port) == 204)

        let producer = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        #expect(try await producer.post("/broadcast?type=news", body: "from http").status == .accepted)
        await producer.close()
        try self.command(tmux, "broadcast greeting from the console")
        try await tmux.waitForScreen("the broadcast") { $0.contains("broadcast greeting #") && $0.contains("→ 1 client") }
        // --ascii on a UTF-8 terminal: the rates pane's peaks are `#` (of `.,-~=+*#`), never blocks.
        try await tmux.waitForScreen("the rates pane in ASCII") { screen in
            let row = screen.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().first ?? ""
            return row.hasPrefix(" in ") && row.contains("#") && !row.contains { "▁▂▃▄▅▆▇█".contains($0) }
        }
        try self.command(tmux, "kick bob")
        try await tmux.waitForScreen("the kick") { $0.contains("kicked bob (1 connection on 1 node)") }
        var bobStream = StreamReader(bob)
        _ = await bobStream.untilEnd()

        // Bad input gets a precise message.
        try self.command(tmux, "bans now")
        try await tmux.waitForScreen("the error") { $0.contains("bans: unexpected extra argument \"now\"") }
        try tmux.press("C-u")
        try self.command(tmux, "clients everywhere")
        try await tmux.waitForScreen("the error") { $0.contains("clients: unknown scope \"everywhere\" (use all or here)") }
        try tmux.press("C-u")

        try self.command(tmux, "bans")
        var screen = try await tmux.waitForScreen("the bans view") { $0.contains("Bans 1") && $0.contains("UNTIL") }
        // At 80 columns the ban's own row (not the log's line about it) says who set it.
        let bansView = screen.split(separator: "\n")
        #expect(bansView.contains { $0.hasPrefix("  ID") && $0.split(separator: " ").last == "BY" })
        #expect(bansView.first { $0.dropFirst(2).hasPrefix("mallory ") }?.hasSuffix(" console") == true)
        try self.command(tmux, "audit")
        // Every record, the HTTP publish with its producer's address among them.
        screen = try await tmux.waitForScreen("the audit view with the HTTP publish") { screen in
            screen.contains("Audit 4") && screen.contains("http 127.0.0.1:")
        }
        #expect(screen.split(separator: "\n").contains { $0.contains(" kick ") })
        // Resized to 120x40, the view is redrawn with every record on a row of its own (the pane is
        // sized by the records, not by the clients — none are left).
        try tmux.run("resize-window", "-t", tmux.session, "-x", "120", "-y", "40")
        try await tmux.waitForScreen("the audit view at 120x40") { screen in
            let lines = screen.split(separator: "\n")
            let records = lines.filter { $0.firstMatch(of: #/^[> ] \d\d:\d\d:\d\d  (ban|broadcast|kick) /#) != nil }
            return lines.contains { $0.hasPrefix("── Audit 4") && $0.count == 120 } && records.count == 4
        }

        try self.command(tmux, "quit")
        try await tmux.waitForScreen("the console to exit") { $0.contains("sse-console: served") }

        // The audit log: one JSON object per line, in order, with origin, address and arguments.
        let lines = try String(contentsOfFile: audit, encoding: .utf8).split(separator: "\n")
        let records = try lines.map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(records.map { $0["action"] as? String } == ["ban", "broadcast", "broadcast", "kick"])
        #expect(records.map { $0["origin"] as? String } == ["console", "http", "console", "console"])
        #expect((records[1]["remoteAddress"] as? String)?.hasPrefix("127.0.0.1:") == true)
        #expect(records[0]["remoteAddress"] == nil && records[0]["node"] == nil)
        let banArguments = try #require(records[0]["arguments"] as? [String: String])
        #expect(banArguments["client"] == "mallory" && banArguments["duration"] == "3600s" && banArguments["closed"] == "1")
        let httpArguments = try #require(records[1]["arguments"] as? [String: String])
        #expect(httpArguments["type"] == "news" && httpArguments["bytes"] == "9" && httpArguments["recipients"] == "1")
        // Ids are the events' own: the console's broadcast is the next one.
        let consoleArguments = try #require(records[2]["arguments"] as? [String: String])
        let httpID = try #require(httpArguments["eventId"].flatMap { UInt64($0) })
        #expect(consoleArguments["eventId"] == String(httpID + 1) && consoleArguments["type"] == "greeting")
        #expect((records[3]["arguments"] as? [String: String])?["client"] == "bob")
        #expect(records.allSatisfy { ($0["time"] as? String)?.contains("T") == true })

        // Second run on the same file, 120x40: the ban is still there, and u lifts it.
        (tmux, port) = try await self.startConsole(arguments, cols: 120, rows: 40)
        defer { tmux.kill() }
        #expect(try await self.connectStatus("mallory", port: port) == 204)
        try tmux.press("Escape")
        try tmux.type("b")
        screen = try await tmux.waitForScreen("the bans view after the restart") { $0.contains("Bans 1") && $0.contains("mallory") }
        // A resize redraws the view at the new size, selection included.
        try tmux.run("resize-window", "-t", tmux.session, "-x", "80", "-y", "24")
        try await tmux.waitForScreen("the bans view at 80x24") { screen in
            screen.split(separator: "\n").contains { $0.hasPrefix(">") && $0.contains("mallory") } && screen.contains("Bans 1")
        }
        try tmux.type("u")
        try await tmux.waitForScreen("the unban") { $0.contains("unbanned mallory") && $0.contains("Bans 0") }
        #expect(try await self.connectStatus("mallory", port: port) == 200)
        // What happened in this run is appended to the same file.
        try tmux.type(":")
        try self.command(tmux, "quit")
        try await tmux.waitForScreen("the console to exit") { $0.contains("sse-console: served") }
        let after = try String(contentsOfFile: audit, encoding: .utf8).split(separator: "\n")
        #expect(after.count == 5 && after.last?.contains(#""action":"unban""#) == true)
    }

    @Test func cluster_kickAndBanActOnEveryNode_andTheTableShowsEveryNodesClients() async throws {
        // The tables, sequence and publish function of its own prefix are dropped after (ClusterTables).
        try await ClusterTestDatabase.withPrefix { databaseURL, prefix in
            let cluster = ["--cluster", databaseURL, "--cluster-prefix", prefix]

            let other = try ConsoleProcess.start(["--no-tui", "--port", "0", "--heartbeat", "60", "--node-name", "ops-other"] + cluster)
            defer { other.killIfRunning() }
            let otherPort = try await other.listeningPort()
            let (tmux, port) = try await self.startConsole(
                "--node-name ops-tui " + cluster.map { "'\($0)'" }.joined(separator: " "), cols: 120, rows: 40, environment: "NO_COLOR=1")
            defer { tmux.kill() }
            try await tmux.waitForScreen("both nodes") { $0.contains("ops-tui online 2 nodes") }

            let carol = try await SSEClient.connect(host: "127.0.0.1", port: otherPort, path: "/connect?id=carol&topic=news")
            let dave = try await SSEClient.connect(host: "127.0.0.1", port: otherPort, path: "/connect?id=dave")
            let erin = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=erin")

            // a: every node's clients, with the node each is on.
            try tmux.press("Escape")
            try tmux.type("a")
            let screen = try await tmux.waitForScreen("the all-nodes table") { screen in
                let lines = screen.split(separator: "\n")
                return screen.contains("Clients 3 · all nodes") && lines.contains { $0.contains("NODE") && $0.contains("ADDRESS") }
                    && lines.contains { $0.contains("carol") && $0.contains("ops-other") && $0.contains("news") }
                    && lines.contains { $0.contains("dave") && $0.contains("ops-other") }
                    && lines.contains { $0.contains("erin") && $0.contains("ops-tui") }
            }
            #expect(!screen.contains("no clients connected"))

            // Enter on the other node's row: the detail says which node, is refreshed from that node's
            // snapshots (not "gone" for not being on this one) and lists what carol was sent.
            let producer = try await HTTPClientConnection.connect(host: "127.0.0.1", port: otherPort)
            #expect(try await producer.post("/broadcast?type=news", body: "extra").status == .accepted)
            await producer.close()
            try await tmux.waitForScreen("the event in the log") { $0.contains("news") && $0.contains("extra") }
            try tmux.press("Home")  // carol's row, the first by id
            try tmux.press("Enter")
            let detail = try await tmux.waitForScreen("carol's detail, refreshed from ops-other's snapshot") { screen in
                screen.contains("Client carol") && screen.contains(" on ops-other")
                    && screen.split(separator: "\n").contains { $0.contains(" news ") && $0.hasSuffix("5B") }
            }
            #expect(!detail.contains("gone"))
            #expect(detail.contains("ops-other · as of its snapshot") && detail.contains("known on ops-other only"))

            // Back in the table, at 80x24 without colours: every column the issue asks for, topics included.
            try tmux.press("Escape")
            try tmux.run("resize-window", "-t", tmux.session, "-x", "80", "-y", "24")
            try await tmux.waitForScreen("the all-nodes table at 80x24") { screen in
                let lines = screen.split(separator: "\n")
                return lines.contains { $0.split(separator: " ") == ["ID▲", "NODE", "ADDRESS", "AGE", "EVENTS", "ERR", "TOPICS"] }
                    && lines.contains { $0.hasPrefix("> carol") && $0.contains("ops-other") && $0.hasSuffix(" news") }
                    && lines.contains { $0.contains("erin") && $0.contains("ops-tui") && $0.hasSuffix("(all)") }
            }
            try tmux.run("resize-window", "-t", tmux.session, "-x", "120", "-y", "40")

            // Headless, `clients all` answers with every node's connections and their node.
            let headless = Tmux()
            defer { headless.kill() }
            try headless.run(
                "new-session", "-d", "-s", headless.session, "-x", "160", "-y", "20",
                "\(try consoleBinary()) --no-tui --port 0 --heartbeat 60 --node-name ops-cli \(cluster.map { "'\($0)'" }.joined(separator: " ")) 2>/dev/null; exec sleep 600"
            )
            try await headless.waitForScreen("the headless node") { $0.contains("listening on") }
            try self.command(headless, "clients all")
            try await headless.waitForScreen("every node's clients, headless") { screen in
                let lines = screen.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
                return lines.contains { $0.starts(with: ["ID", "NODE", "ADDRESS"]) }
                    && lines.contains { $0.starts(with: ["carol", "ops-other"]) && $0.last == "news" }
                    && lines.contains { $0.starts(with: ["dave", "ops-other"]) }
                    && lines.contains { $0.starts(with: ["erin", "ops-tui"]) }
            }
            try self.command(headless, "quit")
            try await headless.waitForScreen("the headless node to exit") { $0.contains("bye") }

            // kick and ban from this node act on the other (`:` opens the command line; Enter would open
            // the selected client's detail).
            try tmux.type(":")
            try self.command(tmux, "kick carol")
            try await tmux.waitForScreen("the cluster-wide kick") { $0.contains("kicked carol (1 connection on 1 node)") }
            var carolStream = StreamReader(carol)
            _ = await carolStream.untilEnd()
            try self.command(tmux, "ban dave")
            try await tmux.waitForScreen("the cluster-wide ban") {
                $0.contains("banned dave until unban (1 connection on 1 node closed); it gets 204 No Content from every node")
            }
            var daveStream = StreamReader(dave)
            _ = await daveStream.untilEnd()
            #expect(try await self.connectStatus("dave", port: otherPort) == 204)
            #expect(try await self.connectStatus("dave", port: port) == 204)

            // A node started after the ban refuses dave too.
            let late = try ConsoleProcess.start(["--no-tui", "--port", "0", "--heartbeat", "60", "--node-name", "ops-late"] + cluster)
            defer { late.killIfRunning() }
            let latePort = try await late.listeningPort()
            #expect(try await self.connectStatus("dave", port: latePort) == 204)

            try self.command(tmux, "bans")
            try await tmux.waitForScreen("the ban in the bans view") { screen in
                screen.contains("Bans 1") && screen.split(separator: "\n").contains { $0.contains("dave") && $0.contains("ops-tui") && $0.contains("until unban") }
            }
            await erin.close()
            kill(late.pid, SIGTERM)
            #expect(try await late.waitForExit(within: .seconds(15)) == 0)
            kill(other.pid, SIGTERM)
            #expect(try await other.waitForExit(within: .seconds(15)) == 0)
            try self.command(tmux, "quit")
            try await tmux.waitForScreen("the console to exit") { $0.contains("sse-console: served") }
        }
    }
}
