import Foundation
import InMemoryLogging
import Logging
import NIOCore
import NIOPosix
import SSEBroker
import SSEBrokerServer
import SSETestSupport
import Testing

/// The embedded page in a real browser: headless Chromium through chromedriver. Missing Chromium is
/// a failure, not a skip (CI installs it).
@Suite(.serialized, .timeLimit(.minutes(3)))
struct BrowserPageTests {
    /// The events the page lists, oldest first, as "id type data".
    static let rowsScript = """
        return Array.from(document.querySelectorAll('#events tbody tr')).reverse().map(function (row) {
          return row.querySelector('.id').textContent + ' ' + row.querySelector('.type').textContent + ' '
            + row.querySelector('.data').textContent;
        });
        """

    static func text(_ id: String) -> String {
        "return document.getElementById('\(id)').textContent"
    }

    @Test func page_showsLiveEvents_andResumesFromLastEventIDAfterAKick_losingNone() async throws {
        let logs = {
            var logs = InMemoryLogHandler()
            logs.logLevel = .debug  // connects are logged at debug
            return logs
        }()
        // The browser reconnects `retry` after a kick. The three events published while it is away
        // take milliseconds (tens under TSan), so 2 s leaves no doubt that they land in the gap and
        // must come back as a replay.
        var configuration = BrokerConfiguration.predictable
        configuration.retry = .seconds(2)
        try await TestServer.with(configuration, extraRoutes: [.browserPage("/")], logger: Logger(label: "sse", factory: { _ in logs })) { server in
            let activity = server.broker.activity()
            var changes = activity.makeAsyncIterator()
            try await WebDriver.withSession { browser in
                try await browser.navigate(to: "http://127.0.0.1:\(server.port)/?id=browser-1&types=greeting")
                guard case .connected(let first) = await changes.next() else { throw ChildProcessError.failed("no connect") }
                #expect(first.clientID == "browser-1")
                #expect(first.userAgent?.contains("Chrome") == true)
                try await browser.waitUntil("the page to show the stream open", script: "return document.getElementById('state').textContent === 'open'")
                #expect(try await browser.execute(Self.text("client-id")) as? String == "browser-1")

                // Published through HTTP, shown by the page.
                let publisher = try await server.publisher()
                for index in 1...3 {
                    let response = try await publisher.post("/broadcast?type=greeting", body: "e\(index)")
                    #expect(response.status == .accepted)
                }
                try await browser.waitUntil("three events", script: "return document.querySelectorAll('#events tbody tr').length === 3")
                #expect(try await browser.execute(Self.rowsScript) as? [String] == ["1 greeting e1", "2 greeting e2", "3 greeting e3"])
                #expect(try await browser.execute(Self.text("last-event-id")) as? String == "3")

                // Kicked: the browser's EventSource reconnects after `retry:` (2 s) with
                // Last-Event-ID; what was published meanwhile is replayed, then live events follow.
                #expect(try server.broker.kick("browser-1") == 1)
                guard case .disconnected(_, .kicked) = await changes.next() else { throw ChildProcessError.failed("no kick") }
                for index in 4...6 {
                    _ = try await publisher.post("/broadcast?type=greeting", body: "e\(index)")
                }
                #expect(server.broker.clients(withID: "browser-1").isEmpty, "the browser came back before the events were published")
                guard case .connected(let again) = await changes.next() else { throw ChildProcessError.failed("no reconnect") }
                #expect(again.clientID == "browser-1")
                _ = try await publisher.post("/broadcast?type=greeting", body: "e7")
                try await browser.waitUntil("seven events", script: "return document.querySelectorAll('#events tbody tr').length >= 7")
                let rows = try await browser.execute(Self.rowsScript) as? [String]
                #expect(rows == (1...7).map { "\($0) greeting e\($0)" })  // each once, in order
                #expect(try await browser.execute(Self.text("opens")) as? String == "2")
                #expect(try await browser.execute(Self.text("last-event-id")) as? String == "7")
                await publisher.close()
            }
            // The reconnect really resumed from the header the browser sent: three events replayed.
            let connects = logs.entries.filter { $0.message.description == "client connected" }
            #expect(connects.map { $0.metadata["replayed"]?.description } == ["0", "3"])
        }
    }

    /// A restart without a durable history: the browser resumes with an id from the old run, which
    /// the new run (its ids seeded from the clock) recognises as from before it: the page is told.
    @Test func page_showsAGap_whenItResumesAcrossARestartThatLostEvents() async throws {
        var configuration = BrokerConfiguration()
        configuration.retry = .milliseconds(300)
        configuration.retryJitter = 0
        let first = try Broker(configuration: configuration, logger: quietLogger)
        let firstServer = BrokerServer(
            broker: first, host: "127.0.0.1", port: 0, extraRoutes: [.browserPage("/")],
            group: MultiThreadedEventLoopGroup.singleton, logger: quietLogger
        )
        let port = try #require(try await firstServer.start().port)
        try await WebDriver.withSession { browser in
            try await browser.navigate(to: "http://127.0.0.1:\(port)/?id=resumer")
            try await browser.waitUntil("the stream to open", script: "return document.getElementById('state').textContent === 'open'")
            let seen = try first.broadcast(Event(data: "before the restart")).eventID
            try await browser.waitUntil("the event", script: "return document.getElementById('last-event-id').textContent === '\(seen)'")
            try await firstServer.shutdown()
            // The same port, a new process's broker: nothing of the old run survives.
            let second = try Broker(configuration: configuration, logger: quietLogger)
            let secondServer = BrokerServer(
                broker: second, host: "127.0.0.1", port: port, extraRoutes: [.browserPage("/")],
                group: MultiThreadedEventLoopGroup.singleton, logger: quietLogger
            )
            try await secondServer.start()
            try await browser.waitUntil(
                "the page to report the gap",
                script: "return document.getElementById('resume').textContent === 'gap after \(seen)'"
            )
            let log = try await browser.execute("return document.getElementById('log').textContent") as? String ?? ""
            #expect(log.contains("gap: events after \(seen) may be missing"))
            try await secondServer.shutdown()
        }
    }

    @Test func publishForm_sendsBroadcastsAndBroadcastTos_andShowsTheAnswerOrTheError() async throws {
        try await TestServer.with(extraRoutes: [.browserPage("/")]) { server in
            try await WebDriver.withSession { browser in
                try await browser.navigate(to: "http://127.0.0.1:\(server.port)/?id=me")
                try await browser.waitUntil("the stream to open", script: "return document.getElementById('state').textContent === 'open'")
                func publish(type: String, target: String, data: String) async throws -> String {
                    try await browser.execute(
                        """
                        document.getElementById('result').className = '';
                        document.getElementById('pub-type').value = arguments[0];
                        document.getElementById('pub-target').value = arguments[1];
                        document.getElementById('pub-data').value = arguments[2];
                        document.querySelector('#publish button').click();
                        """,
                        [type, target, data]
                    )
                    try await browser.waitUntil("the publish result", script: "return document.getElementById('result').className !== ''")
                    return try await browser.execute(Self.text("result")) as? String ?? ""
                }
                #expect(try await publish(type: "note", target: "", data: "to all") == "202 Accepted: event 1 → 1 connection")
                #expect(try await publish(type: "dm", target: "me", data: "just me") == "202 Accepted: event 2 → 1 connection")
                #expect(try await publish(type: "dm", target: "nobody", data: "lost") == #"404 Not Found: no client is connected with id "nobody""#)
                #expect(try await publish(type: "two words", target: "", data: "x") == "202 Accepted: event 3 → 1 connection")
                try await browser.waitUntil("three events", script: "return document.querySelectorAll('#events tbody tr').length === 3")
                // The published types were added to those the page listens for.
                #expect(try await browser.execute(Self.rowsScript) as? [String] == ["1 note to all", "2 dm just me", "3 two words x"])
            }
        }
    }

    @Test func topicChooser_subscribesToTheChosenTopics_andShowsThem() async throws {
        try await TestServer.with(extraRoutes: [.browserPage("/")]) { server in
            try await WebDriver.withSession { browser in
                // Chosen before connecting: connect=0 waits for the button.
                try await browser.navigate(to: "http://127.0.0.1:\(server.port)/?id=pager&connect=0&types=orders.eu")
                _ = try await browser.execute("document.getElementById('topics').value = 'price, orders.*';")
                _ = try await browser.execute("document.getElementById('connect').click();")
                try await browser.waitUntil("the stream to open", script: "return document.getElementById('state').textContent === 'open'")
                #expect(try await browser.execute(Self.text("topics-shown")) as? String == "price, orders.*")
                #expect(server.broker.clients(withID: "pager").first?.topics == ["orders.*", "price"])
                let publisher = try await server.publisher()
                for (type, data) in [("chat", "c1"), ("price", "p1"), ("orders.eu", "o1"), ("message", "m1"), ("price", "p2")] {
                    #expect(try await publisher.post("/broadcast?type=\(type)", body: data).status == .accepted)
                }
                try await browser.waitUntil("three events", script: "return document.querySelectorAll('#events tbody tr').length === 3")
                #expect(try await browser.execute(Self.rowsScript) as? [String] == ["2 price p1", "3 orders.eu o1", "5 price p2"])
                await publisher.close()

                // Without topics: every event, and the page says so.
                _ = try await browser.execute("document.getElementById('topics').value = ''; document.getElementById('connect').click();")
                try await browser.waitUntil("all events", script: "return document.getElementById('topics-shown').textContent === 'all events'")
            }
        }
    }
}
