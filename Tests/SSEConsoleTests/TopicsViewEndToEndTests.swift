import Foundation
import NIOCore
import SSEClient
import Testing

/// The console's topics view in a real terminal (tmux 120x40): subscribers with topics, events
/// published over HTTP, the view switched to with `topics` and `t`.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct TopicsViewEndToEndTests {
    @Test func topicsView_showsSubscribersAndEventsPerTopic() async throws {
        let tmux = Tmux()
        defer { tmux.kill() }
        let binary = try consoleBinary()
        try tmux.run(
            "new-session", "-d", "-s", tmux.session, "-x", "120", "-y", "40",
            "TERM=xterm-256color \(binary) --port 0 --heartbeat 60; exec sleep 600"
        )
        try tmux.run("set-option", "-t", tmux.session, "status", "off")
        let first = try await tmux.waitForScreen("the listen URL") { $0.contains("http://127.0.0.1:") }
        let port = try #require(first.firstMatch(of: /http:\/\/127\.0\.0\.1:(\d+)/).flatMap { Int($0.output.1) })

        var clients: [SSEClient] = []
        for path in ["/connect?id=a&topic=price", "/connect?id=b&topic=price&topic=orders.*", "/connect?id=c"] {
            clients.append(try await SSEClient.connect(host: "127.0.0.1", port: port, path: path))
        }
        try await tmux.waitForScreen("three clients") { $0.contains("Clients 3") }
        let producer = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        for type in ["price", "price", "orders.eu", "chat"] {
            #expect(try await producer.post("/broadcast?type=\(type)", body: "x").status == .accepted)
        }
        // The log line says how many connections received it (price: a, b and c).
        try await tmux.waitForScreen("the recipient count in the log") { $0.contains("→ 3 · x") }

        try tmux.type("topics")
        try tmux.press("Enter")
        let screen = try await tmux.waitForScreen("the topics view") { screen in
            screen.contains("Topics 3") && screen.contains("SUBS")
        }
        // TOPIC, SUBS, KIND, EV/S, EVENTS, LAST: price has 2 subscribers and had 2 events,
        // orders.* 1 and 1, the connections without topics 1 and all 4.
        let rows = screen.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        func row(_ topic: String) throws -> [String] { try #require(rows.first { $0.first == topic && $0.count == 6 }) }
        let price = try row("price")
        #expect([price[1], price[2], price[4]] == ["2", "exact", "2"])
        let orders = try row("orders.*")
        #expect([orders[1], orders[2], orders[4]] == ["1", "pattern", "1"])
        let all = try row("(all)")
        #expect([all[1], all[2], all[4]] == ["1", "all", "4"])

        // t (navigation mode) goes back to the clients.
        try tmux.press("Escape")
        try tmux.type("t")
        try await tmux.waitForScreen("the clients again") { $0.contains("Clients 3") && !$0.contains("Topics 3") }
        try tmux.type("t")
        try await tmux.waitForScreen("the topics again") { $0.contains("Topics 3") }

        await producer.close()
        for client in clients { await client.close() }
    }
}
