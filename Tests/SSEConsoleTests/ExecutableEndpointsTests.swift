import Foundation
import Logging
import NIOCore
import SSEBroker
import SSEClient
import SSEConsoleCore
import SSETestSupport
import Testing

@testable import SSEConsole

/// The `sse-console` executable's extra routes, headless, over real HTTP: Prometheus text at
/// `/metrics`, `/healthz`, the page at `/`, and 404 for anything else.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ExecutableEndpointsTests {
    @Test func metrics_arePrometheusText_withTheBrokersCounters() async throws {
        let console = try ChildProcess.launch([try consoleBinary(), "--no-tui", "--port", "0", "--log-level", "warning"])
        defer { console.terminate() }
        let line = try await console.waitForLine { $0.hasPrefix("listening on http://") }
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0) })

        let subscriber = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=alice")
        var events = subscriber.messages.events.makeAsyncIterator()
        let http = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        #expect(try await http.post("/broadcast?type=price", body: "101").status == .accepted)
        let published = await events.next()
        #expect(published?.data == "101")  // delivered before the scrape
        #expect(try await http.post("/broadcast?id=nobody", body: "x").status == .notFound)
        #expect(try await http.send(.GET, "/nope").status == .notFound)

        let metrics = try await http.send(.GET, "/metrics")
        #expect(metrics.status == .ok)
        #expect(metrics.headers.first(name: "content-type") == "text/plain; version=0.0.4; charset=utf-8")
        let lines = Set(metrics.text.split(separator: "\n").map(String.init))
        for expected in [
            "# TYPE sse_clients_connected gauge", "sse_clients_connected 1.0",
            "# TYPE sse_events_published_total counter", "sse_events_published_total 1",
            "sse_events_delivered_total 1", "sse_connections_accepted_total 1", "sse_events_dropped_total 0",
            #"sse_requests_refused_total{status="404"} 2"#,
            #"sse_clients_kicked_total{reason="kick"} 0"#,
            #"sse_clients_kicked_total{reason="over_tolerance"} 0"#,
            "# TYPE sse_fanout_duration_seconds histogram", "sse_fanout_duration_seconds_count 1",
        ] {
            #expect(lines.contains(expected), "missing \(expected) in:\n\(metrics.text)")
        }
        // Every sample line is `name{labels} value`: the text format a Prometheus server parses.
        for sample in lines where !sample.hasPrefix("#") {
            #expect(sample.wholeMatch(of: /[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+Inf-]+/) != nil, "\(sample)")
        }

        let health = try await http.send(.GET, "/healthz")
        #expect(health.status == .ok)
        #expect(health.text == #"{"status":"ok","clients":1,"lastEventId":"\#(published?.lastEventID ?? "?")"}"# + "\n")
        let page = try await http.send(.GET, "/")
        #expect(page.headers.first(name: "content-type") == "text/html; charset=utf-8")
        #expect(page.text.contains("new EventSource("))
        #expect(try await http.send(.POST, "/metrics").status == .methodNotAllowed)

        await http.close()
        await subscriber.close()
        #expect(console.terminate() == 0)  // SIGTERM: a clean exit
    }

    /// In the terminal console the library's log records go to the log pane (curses owns the
    /// terminal); refusals are shown as errors with their status.
    @Test func consoleLogHandler_postsRecordsToTheLogPane() {
        let feed = ConsoleFeed()
        var logger = Logger(label: "sse.http", factory: { ConsoleLogHandler(label: $0, feed: feed) })
        logger.logLevel = .info
        logger.info("request refused", metadata: ["method": "POST", "uri": "/broadcast?id=x", "status": "404", "error": "no client"])
        logger.debug("not shown at info")
        Logger(label: "sse.broker", factory: { ConsoleLogHandler(label: $0, feed: feed) }).notice("client banned", metadata: ["client": "mallory"])
        let entries = feed.drain().entries
        #expect(entries.map(\.message) == ["404 POST /broadcast?id=x — no client", "client banned client=mallory"])
        #expect(entries.map(\.kind) == [.error, .info])
        #expect(entries.map(\.source) == [.http, .broker])
        #expect(entries.last?.target == "mallory")
    }
}
