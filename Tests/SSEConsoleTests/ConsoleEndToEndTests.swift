import Foundation
import NIOCore
import SSEClient
import Testing

/// The real `sse-console` in a real terminal (tmux 120x40), driven with keystrokes, with real SSE
/// subscribers and an HTTP producer talking to the broker it embeds.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ConsoleEndToEndTests {
    @Test func console_showsClients_sendsEvents_kicks_resizes_andQuitsCleanly() async throws {
        let tmux = Tmux()
        defer { tmux.kill() }
        let binary = try consoleBinary()
        let exitFile = FileManager.default.temporaryDirectory.appendingPathComponent("sse-e2e-exit-\(tmux.socket)").path
        defer { try? FileManager.default.removeItem(atPath: exitFile) }
        // The shell keeps the pane open after the console exits, so the restored screen can be read.
        try tmux.run(
            "new-session", "-d", "-s", tmux.session, "-x", "120", "-y", "40",
            "TERM=xterm-256color \(binary) --port 0 --heartbeat 60; echo \"exit=$?\" > \(exitFile); exec sleep 600"
        )
        try tmux.run("set-option", "-t", tmux.session, "status", "off")

        // The header shows where the broker listens.
        let first = try await tmux.waitForScreen("the listen URL") { $0.contains("http://127.0.0.1:") }
        let port = try #require(first.firstMatch(of: /http:\/\/127\.0\.0\.1:(\d+)/).flatMap { Int($0.output.1) })
        #expect(try tmux.display("#{alternate_on}") == "1")

        // Two subscribers appear in the clients pane.
        let alice = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=alice")
        let bob = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=bob")
        var aliceEvents = alice.messages.events.makeAsyncIterator()
        var bobEvents = bob.messages.events.makeAsyncIterator()
        try await tmux.waitForScreen("both clients in the pane") { screen in
            screen.contains("Clients 2") && screen.contains("alice") && screen.contains("bob")
        }

        // A broadcast typed on the command line reaches both.
        try tmux.type("broadcast greeting hello")
        try tmux.press("Enter")
        // Ids follow the clock at start (they keep growing across restarts): take the first, then count.
        let greeting = try #require(await aliceEvents.next())
        let firstID = try #require(UInt64(greeting.lastEventID))
        #expect(greeting == ServerSentEvent(type: "greeting", data: "hello", lastEventID: "\(firstID)"))
        #expect(await bobEvents.next() == ServerSentEvent(type: "greeting", data: "hello", lastEventID: "\(firstID)"))
        try await tmux.waitForScreen("the broadcast result") { $0.contains("broadcast greeting #\(firstID) → 2 clients") }

        // broadcastTo reaches only its target: bob's next event is the one after it.
        try tmux.type("to alice secret for alice only")
        try tmux.press("Enter")
        #expect(await aliceEvents.next() == ServerSentEvent(type: "secret", data: "for alice only", lastEventID: "\(firstID + 1)"))

        // An HTTP producer's POST shows in the log.
        let producer = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        let response = try await producer.post("/broadcast?type=price", body: "{\"acme\":101}")
        #expect(response.status == .accepted)
        #expect(await bobEvents.next() == ServerSentEvent(type: "price", data: "{\"acme\":101}", lastEventID: "\(firstID + 2)"))
        try await tmux.waitForScreen("the HTTP event in the log") { $0.contains("http    broadcast   price") }

        // Bad input gets a precise message and sends nothing.
        try tmux.type("kick ghost")
        try tmux.press("Enter")
        try await tmux.waitForScreen("the unknown-id error") { $0.contains("kick: no client is connected with id \"ghost\"") }

        // kick removes bob: his stream ends and the pane says why.
        try tmux.type("kick bob")
        try tmux.press("Enter")
        for await _ in bob.messages {}
        try await tmux.waitForScreen("bob kicked") { $0.contains("Clients 1") && $0.contains("kicked bob (1 connection on 1 node)") }

        // A resize to 80x24 reflows every pane.
        try tmux.run("resize-window", "-t", tmux.session, "-x", "80", "-y", "24")
        let small = try await tmux.waitForScreen("the 80x24 layout") { screen in
            screen.split(separator: "\n").first?.contains("cl 1") == true && screen.contains("── Log")
        }
        #expect(small.split(separator: "\n", omittingEmptySubsequences: false).allSatisfy { $0.count <= 80 })

        // quit exits 0 and gives the terminal back.
        try tmux.type("quit")
        try tmux.press("Enter")
        let restored = try await tmux.waitForScreen("the shell screen") { $0.contains("sse-console: served http://127.0.0.1:\(port)") }
        #expect(!restored.contains("── Clients"))
        #expect(try tmux.display("#{alternate_on}") == "0")
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: exitFile) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try String(contentsOfFile: exitFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == "exit=0")
        // Alice's stream was closed by the broker's shutdown.
        while await aliceEvents.next() != nil {}
        await producer.close()
    }
}
