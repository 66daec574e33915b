import ArgumentParser
import CoreMetrics
import Foundation
import Logging
import NIOCore
import NIOPosix
import Prometheus
import SSEBroker
import SSEBrokerServer

/// `sse-console`: an SSE broker with its HTTP server, and a console to watch and drive it.
@main
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sse-console",
        abstract: "A Server-Sent Events broker with a live terminal console.",
        discussion: """
            Subscribers connect with GET /connect[?id=ID] (an EventSource stream); producers publish with
            POST /broadcast[?type=TYPE][&id=ID] (body = data). GET / is a browser page, GET /metrics
            Prometheus metrics, GET /healthz a health check.
            """
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one).")
    var port = 8080

    @Option(name: .customLong("write-timeout"), help: "Seconds a client may stay unable to accept data before missed events count as errors.")
    var writeTimeout = 3.0

    @Option(help: "Sequential errors a client may have before it is disconnected.")
    var tolerance = 3

    @Option(help: "Seconds between heartbeat comments.")
    var heartbeat = 15.0

    @Option(help: "Events kept for Last-Event-ID replay (0 turns replay off).")
    var history = 1000

    @Option(name: .customLong("max-body"), help: "Largest POST /broadcast body accepted, in bytes.")
    var maxBody = 1 << 20

    @Option(name: .customLong("max-backlog"), help: "Most bytes queued for a client that is not keeping up.")
    var maxBacklog = 256 << 10

    @Option(help: "Reconnection delay hinted to clients (retry:), in seconds.")
    var retry = 3.0

    @Option(help: "Event loops serving connections (default: one per CPU this process may run on).")
    var loops: Int?

    @Flag(name: .customLong("no-tui"), help: "Run without the terminal console: logs on stderr, commands from stdin.")
    var noTUI = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: self.logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard (0...65535).contains(self.port) else { throw ValidationError("--port must be between 0 and 65535") }
        if let loops, !(1...256).contains(loops) { throw ValidationError("--loops must be between 1 and 256") }
        try self.brokerConfiguration().validate()
    }

    func brokerConfiguration() throws -> BrokerConfiguration {
        func duration(_ seconds: Double, _ flag: String) throws -> Duration {
            guard seconds.isFinite else { throw ValidationError("--\(flag) must be a number of seconds") }
            return .milliseconds(Int64((seconds * 1000).rounded()))
        }
        return BrokerConfiguration(
            writeTimeout: try duration(self.writeTimeout, "write-timeout"),
            tolerance: self.tolerance,
            heartbeatInterval: try duration(self.heartbeat, "heartbeat"),
            retry: try duration(self.retry, "retry"),
            historySize: self.history,
            maxBodyBytes: self.maxBody,
            maxClientBacklogBytes: self.maxBacklog
        )
    }

    @Flag(name: .customLong("no-color"), help: "No colours (also when NO_COLOR is set).")
    var noColor = false

    func run() async throws {
        let level = Logger.Level(rawValue: self.logLevel) ?? .info
        // The terminal console needs a terminal on both ends; anything else (a pipe, a script, CI)
        // gets the headless mode with the same broker and the same commands on stdin.
        let interactive = !self.noTUI && isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1
        let feed = ConsoleFeed()
        LoggingSystem.bootstrap { label in
            if interactive {
                var handler = ConsoleLogHandler(label: label, feed: feed)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        // The executable decides where metrics go: Prometheus, served at /metrics.
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Fan-out takes microseconds to milliseconds; the default buckets start at 5 ms.
        factory.durationHistogramBuckets["sse_fanout_duration_seconds"] = [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
            .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .seconds(1),
        ]
        MetricsSystem.bootstrap(factory)
        let broker = try Broker(configuration: self.brokerConfiguration(), logger: Logger(label: "sse.broker"))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.loops ?? BrokerServer.defaultLoopCount)
        let server = BrokerServer(
            broker: broker,
            host: self.host,
            port: self.port,
            extraRoutes: [
                .browserPage("/"),
                .health("/healthz", broker: broker),
                .prometheus("/metrics", broker: broker, registry: registry),
            ],
            group: group,
            logger: Logger(label: "sse.http")
        )
        let address = try await server.start()
        let url = "http://\(Self.hostForURL(self.host)):\(address.port ?? self.port)"
        guard interactive else {
            // Scripts and tests wait for this exact line.
            print("listening on \(url)")
            fflush(nil)  // all streams: `stdout` itself is a C global Swift 6 will not touch
            try await HeadlessConsole(broker: broker, server: server, readCommands: true).run()
            try await group.shutdownGracefully()
            return
        }
        feed.follow(broker)
        let console = TerminalConsole(
            broker: broker,
            listenURL: url,
            feed: feed,
            noColor: self.noColor || ProcessInfo.processInfo.environment["NO_COLOR"].map { !$0.isEmpty } == true
        )
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM, SIGHUP])
        Task {
            _ = await signals.next()
            console.requestQuit()
        }
        let report = await console.run()
        let stats = broker.statistics
        try await server.shutdown()
        try await group.shutdownGracefully()
        print("sse-console: served \(url); \(stats.published) events published, \(stats.delivered) delivered, \(stats.connectionsAccepted) connections")
        print("sse-console: \(report)")
    }

    static func hostForURL(_ host: String) -> String {
        host.contains(":") ? "[\(host)]" : host
    }
}
