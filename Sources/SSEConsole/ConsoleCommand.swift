import ArgumentParser
import CoreMetrics
import Foundation
import Logging
import NIOCore
import NIOPosix
import Prometheus
import SSEBroker
import SSEBrokerPostgres
import SSEBrokerServer
import SSEConsoleCore

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

    // MARK: Durable history

    @OptionGroup(title: "Durable history")
    var historyFile: HistoryFileOptions

    // MARK: Access control and limits

    @Option(
        name: .customLong("publish-token"),
        help: "Secret producers must send as 'Authorization: Bearer SECRET' (visible in ps: prefer the file or SSE_PUBLISH_TOKEN)."
    )
    var publishToken: String?

    @Option(name: .customLong("publish-token-file"), help: "File holding the publish token (one line).")
    var publishTokenFile: String?

    @Option(
        name: .customLong("subscriber-secret"),
        help: "HS256 key (32+ bytes) for subscriber tokens (JWT, sub = client id); turns subscriber auth on. Also --subscriber-secret-file, SSE_SUBSCRIBER_SECRET."
    )
    var subscriberSecret: String?

    @Option(name: .customLong("subscriber-secret-file"), help: "File holding the subscriber token key.")
    var subscriberSecretFile: String?

    @Option(
        name: .customLong("publisher-secret"),
        help: "HS256 key (32+ bytes) for publisher tokens (JWT, publish = the types they may publish), accepted beside --publish-token. Also --publisher-secret-file, SSE_PUBLISHER_SECRET."
    )
    var publisherSecret: String?

    @Option(name: .customLong("publisher-secret-file"), help: "File holding the publisher token key.")
    var publisherSecretFile: String?

    @Option(name: .customLong("token-cookie"), help: "Cookie a subscriber token may come in.")
    var tokenCookie = "sse_token"

    @Flag(name: .customLong("allow-open"), help: "Serve a non-loopback address without a publish token, without the warning.")
    var allowOpen = false

    @Option(
        name: .customLong("cors-origin"),
        help: "Origin allowed to use the broker from a browser page (repeatable), or '*'. Explicit origins get credentials."
    )
    var corsOrigins: [String] = []

    @Option(name: .customLong("max-clients"), help: "Most event streams at once; beyond: 503 with Retry-After.")
    var maxClients: Int?

    @Option(name: .customLong("max-per-client"), help: "Most streams one client id may have at once; beyond: 429.")
    var maxPerClient: Int?

    @Option(name: .customLong("max-header-bytes"), help: "Largest request line plus headers; beyond: 431.")
    var maxHeaderBytes = 16 << 10

    @Option(name: .customLong("header-timeout"), help: "Seconds a connection may take to send its request head; beyond: 408, closed.")
    var headerTimeout = 10.0

    @Option(name: .customLong("body-timeout"), help: "Seconds a POST body may take to arrive; beyond: 408, closed.")
    var bodyTimeout = 30.0

    @Option(
        name: .customLong("max-connect-rate"),
        help: "Most new event streams accepted per second (token bucket, one second's burst); beyond: 503 with Retry-After. Default: no limit."
    )
    var maxConnectRate: Int?

    @Option(name: .customLong("shutdown-grace"), help: "Seconds to wait for connections to close on SIGTERM/SIGINT/quit.")
    var shutdownGrace = 5.0

    @Option(
        help: "Seconds over which event streams are closed on shutdown, after their pending events, so clients reconnect to other nodes gradually (0: all at once)."
    )
    var drain = 0.0

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
        guard self.drain.isFinite, (0...3600).contains(self.drain) else {
            throw ValidationError("--drain must be between 0 and 3600 seconds")
        }
        try self.brokerConfiguration().validate()
        try self.historyFile.validate(historySize: self.history)
        if self.historyFile.path != nil && self.cluster.url != nil {
            throw ValidationError("--history-file and --cluster do not go together: a cluster's shared log is already its durable history")
        }
        _ = try self.serverSecurity()
    }

    /// The tokens (from the flag, its file or the environment, in that order), CORS and limits.
    func serverSecurity(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServerSecurity {
        func secret(_ value: String?, file: String?, env: String, flag: String) throws -> String? {
            if value != nil && file != nil { throw ValidationError("give --\(flag) or --\(flag)-file, not both") }
            if let value { return value }
            if let file {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw ValidationError("--\(flag)-file: cannot read \(file)")
                }
                // One line; the newline an editor adds is not part of the secret.
                return text.trimmingCharacters(in: .newlines)
            }
            return environment[env].flatMap { $0.isEmpty ? nil : $0 }
        }
        func duration(_ seconds: Double, _ flag: String) throws -> Duration {
            guard seconds.isFinite, seconds > 0 else { throw ValidationError("--\(flag) must be a positive number of seconds") }
            return .milliseconds(Int64((seconds * 1000).rounded()))
        }
        let publish = try secret(self.publishToken, file: self.publishTokenFile, env: "SSE_PUBLISH_TOKEN", flag: "publish-token")
        let subscriber = try secret(
            self.subscriberSecret, file: self.subscriberSecretFile, env: "SSE_SUBSCRIBER_SECRET", flag: "subscriber-secret")
        let publisher = try secret(
            self.publisherSecret, file: self.publisherSecretFile, env: "SSE_PUBLISHER_SECRET", flag: "publisher-secret")
        let headerTimeout = try duration(self.headerTimeout, "header-timeout")
        let bodyTimeout = try duration(self.bodyTimeout, "body-timeout")
        do throws(BrokerError) {
            let limits = ServerLimits(
                maxClients: self.maxClients,
                maxConnectionsPerClientID: self.maxPerClient,
                maxHeaderBytes: self.maxHeaderBytes,
                headerTimeout: headerTimeout,
                bodyTimeout: bodyTimeout,
                maxConnectRate: self.maxConnectRate
            )
            try limits.validate()
            var security = ServerSecurity(limits: limits)
            if let publish { security.publishToken = try PublishToken(publish) }
            if let subscriber { security.subscriberTokens = try SubscriberTokenVerifier(secret: subscriber, cookieName: self.tokenCookie) }
            if let publisher { security.publisherTokens = try PublisherTokenVerifier(secret: publisher) }
            if !self.corsOrigins.isEmpty { security.cors = try CORSPolicy(allowedOrigins: self.corsOrigins) }
            return security
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// The warning for a broker anyone on the network can publish to, or `nil`.
    static func openAccessWarning(host: String, hasPublishToken: Bool, allowOpen: Bool) -> String? {
        guard !hasPublishToken, !allowOpen, !self.isLoopback(host) else { return nil }
        return "warning: listening on \(host) without a publish token: anyone who can reach this port can publish to "
            + "every client. Set --publish-token-file (or SSE_PUBLISH_TOKEN), or pass --allow-open if that is intended."
    }

    static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare == "localhost" || bare == "::1" { return true }
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
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
            maxClientBacklogBytes: self.maxBacklog,
            metricsTopics: self.metricsTopics
        )
    }

    @Option(
        name: .customLong("metrics-topic"),
        help: "A topic (or pattern) with its own Prometheus series: subscriptions and deliveries (repeatable, at most 32)."
    )
    var metricsTopics: [String] = []

    @Flag(name: .customLong("no-color"), help: "No colours (also when NO_COLOR is set).")
    var noColor = false

    @OptionGroup(title: "Cluster")
    var cluster: ClusterOptions

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
        let security = try self.serverSecurity()
        let configuration = try self.brokerConfiguration()
        // Opened before the broker, restored before the server accepts connections.
        let history = try self.historyFile.open(historySize: configuration.historySize)
        let broker = try Broker(configuration: configuration, logger: Logger(label: "sse.broker"), journal: history)
        if let history { try HistoryFileOptions.restore(broker, from: history) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.loops ?? BrokerServer.defaultLoopCount)
        let node = try await self.joinCluster(broker: broker)
        let server = BrokerServer(
            broker: broker,
            host: self.host,
            port: self.port,
            extraRoutes: [
                .browserPage("/"),
                node.map { .clusterHealth("/healthz", broker: broker, cluster: $0.cluster) } ?? .health("/healthz", broker: broker),
                .prometheus("/metrics", broker: broker, registry: registry),
            ],
            security: security,
            group: group,
            drainPeriod: .milliseconds(Int64((self.drain * 1000).rounded())),
            logger: Logger(label: "sse.http")
        )
        let address = try await server.start()
        let url = "http://\(Self.hostForURL(self.host)):\(address.port ?? self.port)"
        node?.cluster.advertisedURL = url
        let warning = Self.openAccessWarning(
            host: self.host,
            hasPublishToken: security.publishToken != nil || security.publisherTokens != nil,
            allowOpen: self.allowOpen
        )
        if let warning {
            // Before the terminal belongs to curses, so it stays on screen after the console exits too.
            FileHandle.standardError.write(Data((warning + "\n").utf8))
        }
        let grace = Duration.milliseconds(Int64((max(0, self.shutdownGrace) * 1000).rounded()))
        guard interactive else {
            // Watch for signals before announcing the port: a script may send SIGTERM as soon as it reads it.
            let signals = SignalWatcher(signals: [SIGINT, SIGTERM])
            // Scripts and tests wait for this exact line.
            print("listening on \(url)")
            fflush(nil)  // all streams: `stdout` itself is a C global Swift 6 will not touch
            // `nodes` samples on the stdin thread, when asked: a fresh sampler each time is enough there.
            var clusterView: (@Sendable () -> ClusterView)?
            if let cluster = node?.cluster {
                clusterView = {
                    var sampler = ClusterSampler(cluster: cluster, listenURL: url)
                    return sampler.sample(now: Date().timeIntervalSince1970, connections: broker.connectionCount)
                }
            }
            do {
                try await HeadlessConsole(
                    broker: broker, server: server, readCommands: true, gracePeriod: grace, signals: signals, cluster: clusterView
                ).run()
            } catch {
                await history?.close()
                await node?.leave()
                throw error
            }
            // The broker is shut down: nothing more is recorded; write what is queued.
            await history?.close()
            await node?.leave()
            try await group.shutdownGracefully()
            return
        }
        if let warning {
            feed.post(LogEntry(time: Date().timeIntervalSince1970, source: .broker, kind: .error, message: warning))
        }
        feed.follow(broker)
        let console = TerminalConsole(
            broker: broker,
            listenURL: url,
            feed: feed,
            noColor: self.noColor || ProcessInfo.processInfo.environment["NO_COLOR"].map { !$0.isEmpty } == true,
            flags: security.authSummary + (security.cors == nil ? "" : " cors") + (history == nil ? "" : " history-file"),
            cluster: node.map { ClusterSampler(cluster: $0.cluster, listenURL: url) }
        )
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM, SIGHUP])
        Task {
            _ = await signals.next()
            console.requestQuit()
        }
        let report = await console.run()
        let stats = broker.statistics
        try await server.shutdown(gracePeriod: grace)
        await node?.leave()
        await history?.close()
        try await group.shutdownGracefully()
        print("sse-console: served \(url); \(stats.published) events published, \(stats.delivered) delivered, \(stats.connectionsAccepted) connections")
        print("sse-console: \(report)")
    }

    /// With `--cluster`: attaches a PostgreSQL backplane to `broker`, starts it, and waits (up to
    /// `--cluster-startup-wait`) for it to restore the replay history and go online, so the first
    /// clients can resume. A node that cannot reach the database still serves, offline.
    func joinCluster(broker: Broker) async throws -> ClusterNode? {
        let advertised = "http://\(Self.hostForURL(self.host)):\(self.port)"
        guard let configuration = try self.cluster.configuration(advertisedURL: advertised) else { return nil }
        let cluster = try PostgresCluster(configuration: configuration, broker: broker, logger: Logger(label: "sse.cluster"))
        let task = Task { await cluster.run() }
        let wait = Duration.milliseconds(Int64((self.cluster.startupWait * 1000).rounded()))
        if !(await cluster.waitUntilOnline(timeout: wait)) {
            Logger(label: "sse.cluster").warning(
                "serving while the cluster is offline: publishes get 503 until the database is reachable",
                metadata: ["state": "\(cluster.status.state)"]
            )
        }
        return ClusterNode(cluster: cluster, task: task)
    }

    static func hostForURL(_ host: String) -> String {
        host.contains(":") ? "[\(host)]" : host
    }
}
