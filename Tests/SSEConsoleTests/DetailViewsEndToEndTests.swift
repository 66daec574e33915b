import Foundation
import NIOCore
import NIOHTTP1
import SSEBrokerServer
import SSEClient
import Testing

/// The drill-down views, the rates pane and `save` in a real terminal (tmux), with real
/// subscribers and an HTTP producer.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DetailViewsEndToEndTests {
    /// Starts the console in a fresh tmux session and returns its port.
    private func start(_ tmux: Tmux, cols: Int, rows: Int, environment: String = "", arguments: String = "") async throws -> Int {
        let binary = try consoleBinary()
        try tmux.run(
            "new-session", "-d", "-s", tmux.session, "-x", "\(cols)", "-y", "\(rows)",
            "TERM=xterm-256color \(environment) \(binary) --port 0 --heartbeat 60 \(arguments); exec sleep 600"
        )
        try tmux.run("set-option", "-t", tmux.session, "status", "off")
        let first = try await tmux.waitForScreen("the listen URL") { $0.contains("127.0.0.1:") }
        return try #require(first.firstMatch(of: /127\.0\.0\.1:(\d+)/).flatMap { Int($0.output.1) })
    }

    /// Publishes 4 KiB events until the screen shows `text` (bounded: 2,000 events): a subscriber
    /// that never reads misses them once its socket has been full for the write timeout.
    private func publishUntilTheScreenShows(_ text: String, tmux: Tmux, port: Int) async throws {
        let producer = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        let payload = String(repeating: "x", count: 4096)
        for published in 1...2_000 {
            #expect(try await producer.post("/broadcast?type=bulk", body: payload).status == .accepted)
            if published % 10 == 0, try tmux.screen().contains(text) { break }
        }
        await producer.close()
    }

    private func lines(_ screen: String) -> [Substring] {
        screen.split(separator: "\n", omittingEmptySubsequences: false)
    }

    @Test func clientDetail_showsTheConnection_sendsKicksAndBansFromIt_andEscReturnsToTheSameRow() async throws {
        let tmux = Tmux()
        defer { tmux.kill() }
        let port = try await self.start(tmux, cols: 120, rows: 40)

        let alice = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=alice")
        var aliceEvents = alice.messages.events.makeAsyncIterator()
        let producer = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        for price in ["100", "101"] {
            #expect(try await producer.post("/broadcast?type=price", body: price).status == .accepted)
        }
        let first = try #require(await aliceEvents.next())
        let second = try #require(await aliceEvents.next())
        // bob resumes after the first: the second is replayed to him.
        let bob = try await SSEClient.connect(
            host: "127.0.0.1", port: port, path: "/connect?id=bob&topic=price",
            headers: ["User-Agent": "e2e-agent/1.0", "Last-Event-ID": first.lastEventID])
        var bobEvents = bob.messages.events.makeAsyncIterator()
        #expect(await bobEvents.next()?.lastEventID == second.lastEventID)
        let carol = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=carol")
        try await tmux.waitForScreen("three clients") { $0.contains("Clients 3") }

        // Navigate to bob (sorted by id: alice, bob, carol) and open him.
        try tmux.press("Escape")
        try tmux.press("Down")
        try await tmux.waitForScreen("bob selected") { screen in self.lines(screen).contains { $0.hasPrefix("> bob") } }
        try tmux.press("Enter")
        // The first frame comes from the table's row; the connection's own record follows within a refresh.
        let detail = try await tmux.waitForScreen("bob's detail") { screen in
            screen.contains("Client bob") && screen.contains("e2e-agent/1.0")
                && self.lines(screen).contains { $0.contains(second.lastEventID) && $0.contains("price") && $0.contains("replay") }
        }
        #expect(detail.contains("Last-Event-ID \(first.lastEventID) · 1 replayed"))
        #expect(detail.contains("HTTP/1.1"))
        #expect(detail.contains("topics     price"))
        #expect(detail.contains("0/3 in a row · 0 in all"))
        #expect(self.lines(detail).contains { $0.contains(second.lastEventID) && $0.contains("price") && $0.contains("replay") })
        #expect(self.lines(detail).last { !$0.isEmpty }?.hasPrefix("Esc back") == true)

        // m: the command line prefilled; what is sent shows up among the deliveries.
        try tmux.type("m")
        try await tmux.waitForScreen("the prefilled command line") { $0.contains("> broadcastTo bob") }
        try tmux.type("price 102")
        try tmux.press("Enter")
        let sent = try #require(await bobEvents.next())
        #expect(sent.data == "102")
        try await tmux.waitForScreen("the new delivery in the detail") { screen in
            self.lines(screen).contains { $0.contains(sent.lastEventID) && $0.contains("price") && !$0.contains("replay") }
                && screen.contains("Client bob")
        }

        // Esc leaves the command line, Esc again the detail: bob's row is still the selected one.
        try tmux.press("Escape")
        try await tmux.waitForScreen("navigate mode in the detail") { $0.contains("Esc back") }
        try tmux.press("Escape")
        try await tmux.waitForScreen("the table, bob selected") { screen in
            !screen.contains("Client bob") && self.lines(screen).contains { $0.hasPrefix("> bob") }
        }

        // k from the detail kicks bob; the detail stays, marked.
        try tmux.press("Enter")
        try await tmux.waitForScreen("bob's detail again") { $0.contains("Client bob") }
        try tmux.type("k")
        for await _ in bob.messages {}
        try await tmux.waitForScreen("bob kicked") { screen in
            screen.contains("kicked bob (1 connection on 1 node)") && screen.contains("gone: kicked")
        }
        try tmux.press("Escape")

        // B from carol's detail bans her: her stream ends and a reconnect gets 204.
        try tmux.press("End")
        try await tmux.waitForScreen("carol selected") { screen in self.lines(screen).contains { $0.hasPrefix("> carol") } }
        try tmux.press("Enter")
        try await tmux.waitForScreen("carol's detail") { $0.contains("Client carol") }
        try tmux.type("B")
        for await _ in carol.messages {}
        try await tmux.waitForScreen("carol banned") { $0.contains("banned carol until unban") }
        let refused = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=carol")
        #expect(refused.status == .noContent)

        await refused.close()
        await producer.close()
        await alice.close()
    }

    /// What the server records at connect and the broker on a miss reaches the detail: a token's
    /// subject and expiry, and a slow client's misses with their reasons.
    @Test func clientDetail_showsTheTokenAndTheMissesWithTheirReasons() async throws {
        let secret = String(repeating: "k", count: 32)
        let verifier = try SubscriberTokenVerifier(secret: secret)
        let tmux = Tmux()
        defer { tmux.kill() }
        let port = try await self.start(
            tmux, cols: 120, rows: 40,
            arguments: "--subscriber-secret \(secret) --write-timeout 0.2 --tolerance 1000 --max-backlog 65536")

        let daveToken = try verifier.makeToken(subject: "dave", expiresAt: Date().addingTimeInterval(2 * 3600))
        let dave = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=dave&token=\(daveToken)")
        #expect(dave.status == .ok)
        // A subscriber that never reads, with a small receive buffer: its socket fills up.
        let slowToken = try verifier.makeToken(subject: "slow")
        let slow = try await SSEClient.connect(
            host: "127.0.0.1", port: port, path: "/connect?id=slow&token=\(slowToken)", receiveBufferSize: 4096, autoRead: false)
        #expect(slow.status == .ok)
        try await tmux.waitForScreen("two clients") { $0.contains("Clients 2") }

        // Open dave (sorted by id: dave, slow): the token's subject and its expiry.
        try tmux.press("Escape")
        try await tmux.waitForScreen("dave selected") { screen in self.lines(screen).contains { $0.hasPrefix("> dave") } }
        try tmux.press("Enter")
        // The first frame comes from the table's row; the connection's own record follows within a refresh.
        try await tmux.waitForScreen("dave's token: its subject and expiry") { screen in
            screen.contains("Client dave") && self.lines(screen).contains { $0.contains("token") && $0.contains("dave · expires in ") }
        }
        try tmux.press("Escape")

        // Open slow, then publish 4 KiB events until its detail shows misses (bounded: 2,000 events).
        try tmux.press("End")
        try await tmux.waitForScreen("slow selected") { screen in self.lines(screen).contains { $0.hasPrefix("> slow") } }
        try tmux.press("Enter")
        try await tmux.waitForScreen("slow's detail") { $0.contains("Client slow") }
        try await self.publishUntilTheScreenShows("socket not writable for", tmux: tmux, port: port)
        let slowDetail = try await tmux.waitForScreen("slow's misses with their reasons") { screen in
            screen.contains("Client slow") && screen.contains("socket not writable for") && screen.contains("event dropped")
        }
        #expect(self.lines(slowDetail).contains { $0.contains("errors") && $0.contains("in a row") && !$0.contains("0/1,000 in a row · 0 in all") })
        #expect(self.lines(slowDetail).contains { $0.contains("token") && $0.contains("slow · no expiry") })

        await slow.close()
        await dave.close()
    }

    /// A client cut for missing too many events in a row: its open detail keeps the broker's last
    /// record of it, so the misses that got it cut stay on screen with the reason it ended.
    @Test func clientDetail_ofAClientCutOverTolerance_keepsItsMissesAndSaysWhy() async throws {
        let tmux = Tmux()
        defer { tmux.kill() }
        let port = try await self.start(tmux, cols: 120, rows: 40, arguments: "--write-timeout 0.2 --tolerance 2 --max-backlog 65536")
        let slow = try await SSEClient.connect(
            host: "127.0.0.1", port: port, path: "/connect?id=slow", headers: ["User-Agent": "stalled/1.0"],
            receiveBufferSize: 4096, autoRead: false)
        #expect(slow.status == .ok)
        try await tmux.waitForScreen("one client") { $0.contains("Clients 1") }
        try tmux.press("Escape")
        try tmux.press("Enter")
        try await tmux.waitForScreen("slow's detail") { $0.contains("Client slow") && $0.contains("stalled/1.0") }

        // 4 KiB events until the broker cuts it (bounded: 2,000 events).
        try await self.publishUntilTheScreenShows("gone: over-tol", tmux: tmux, port: port)
        let cut = try await tmux.waitForScreen("the reason it ended, with its misses") { screen in
            screen.contains("gone: over-tol") && screen.contains("socket not writable for")
        }
        #expect(cut.contains("stalled/1.0"))
        #expect(self.lines(cut).contains { $0.contains("errors") && $0.contains("2/2 in a row") }, "\(cut)")
        #expect(self.lines(cut).filter { $0.contains("event dropped") }.count == 2, "\(cut)")

        await slow.close()
    }

    @Test func eventDetail_prettyPrintsJSON_scrolls_andSurvivesAResize_withNoColorAt80x24() async throws {
        let tmux = Tmux()
        defer { tmux.kill() }
        let port = try await self.start(tmux, cols: 80, rows: 24, environment: "NO_COLOR=1")
        let producer = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        let json = #"{"symbol":"ACME","price":101.25,"tags":["a","b"],"nested":{"z":1}}"#
        #expect(try await producer.post("/broadcast?type=quote", body: json).status == .accepted)
        let long = (1...100).map { "row \($0)" }.joined(separator: "\n")
        #expect(try await producer.post("/broadcast?type=report", body: long).status == .accepted)
        try await tmux.waitForScreen("both events in the log") { $0.contains("quote") && $0.contains("report") }

        // The rates pane under the header: NO_COLOR keeps the sparklines (they are characters).
        try await tmux.waitForScreen("the rates pane") { screen in
            let row = self.lines(screen).dropFirst().first ?? ""
            return row.hasPrefix(" in ") && row.contains(" out ") && row.contains { "▁▂▃▄▅▆▇█".contains($0) }
        }

        // Tab to the log: the newest entry (report) is selected; Up selects the quote.
        try tmux.press("Escape")
        try tmux.press("Tab")
        try tmux.press("Up")
        try tmux.press("Enter")
        let detail = try await tmux.waitForScreen("the quote's detail") { screen in
            screen.contains("Event #") && screen.contains("Data (JSON, pretty-printed)")
        }
        #expect(detail.contains("quote"))
        #expect(self.lines(detail).contains { $0.contains("\"symbol\"") && $0.contains("\"ACME\"") })
        let nested = try #require(self.lines(detail).firstIndex { $0.contains("\"nested\"") })
        let symbol = try #require(self.lines(detail).firstIndex { $0.contains("\"symbol\"") })
        #expect(nested < symbol)  // sorted keys
        #expect(self.lines(detail).allSatisfy { $0.count <= 80 })

        // Back, down to the report, open it and scroll through its 100 lines.
        try tmux.press("Escape")
        try await tmux.waitForScreen("the log again") { $0.contains("── Log") }
        try tmux.press("Down")
        try tmux.press("Enter")
        try await tmux.waitForScreen("the report's detail") { screen in
            screen.contains("Data (100 lines)") && screen.contains("  1 row 1")
        }
        try tmux.press("End")
        try await tmux.waitForScreen("its last line") { screen in
            screen.contains("100 row 100") && !screen.contains("  1 row 1\n")
        }
        try tmux.press("PageUp")
        try await tmux.waitForScreen("a page up") { !$0.contains("100 row 100") && $0.contains("row 70") }
        try tmux.press("Home")
        try await tmux.waitForScreen("the top again") { $0.contains("origin     http") }

        // A resize keeps the view, at the new size.
        try tmux.run("resize-window", "-t", tmux.session, "-x", "120", "-y", "40")
        let resized = try await tmux.waitForScreen("the 120x40 detail") { screen in
            self.lines(screen).count >= 40 && screen.contains("Event #") && screen.contains("row 20")
        }
        #expect(self.lines(resized).allSatisfy { $0.count <= 120 })
        try tmux.press("Escape")
        try await tmux.waitForScreen("the log again") { $0.contains("── Log") && !$0.contains("Event #") }
        await producer.close()
    }

    @Test func save_writesTheFilteredLogAsJSONLines_andNamesWhatIsWrongWithAPath() async throws {
        let tmux = Tmux()
        defer { tmux.kill() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sse-save-\(tmux.socket)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try await self.start(tmux, cols: 120, rows: 40)
        let producer = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        for type in ["price", "chat", "price"] {
            #expect(try await producer.post("/broadcast?type=\(type)", body: "{\"x\":1}").status == .accepted)
        }
        try await tmux.waitForScreen("the events") { $0.components(separatedBy: "price").count >= 3 }

        try tmux.type("save \(directory)/missing/log.jsonl")
        try tmux.press("Enter")
        try await tmux.waitForScreen("the missing-directory error") {
            $0.contains("save: directory \(directory)/missing does not exist")
        }
        try tmux.press("C-u")
        try tmux.type("save \(directory)")
        try tmux.press("Enter")
        try await tmux.waitForScreen("the is-a-directory error") { $0.contains("save: \(directory) is a directory") }
        try tmux.press("C-u")
        try tmux.type("save")
        try tmux.press("Enter")
        try await tmux.waitForScreen("the usage") { $0.contains("save: missing <file> — usage: save <file>") }
        try tmux.press("C-u")

        try tmux.type("filter price")
        try tmux.press("Enter")
        try tmux.type("save \(directory)/log.jsonl")
        try tmux.press("Enter")
        try await tmux.waitForScreen("the saved message") { $0.contains("saved 2 entries (filter \"price\") to \(directory)/log.jsonl") }
        let text = try String(contentsOfFile: "\(directory)/log.jsonl", encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2)
        for line in lines {
            let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["type"] as? String == "price" && object["kind"] as? String == "broadcast")
            #expect(object["eventId"] is Int && object["source"] as? String == "http")
        }
        await producer.close()
    }
}
