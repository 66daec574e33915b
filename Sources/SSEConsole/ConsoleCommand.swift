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
import ServiceLifecycle

/// `sse-console`: an SSE broker with its HTTP server, and a console to watch and drive it.
@main
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sse-console",
        abstract: "A Server-Sent Events broker with a live terminal console.",
        discussion: """
            Subscribers connect with GET /connect[?id=ID] (an EventSource stream); producers publish with POST /broadcast[?type=TYPE][&id=ID] (body = data). GET / is a browser page, GET /metrics Prometheus metrics, GET /healthz a health check.

            With a terminal on both ends it draws the console; otherwise (or with --no-tui) it reads the same commands from stdin. Type 'help' in either.
            """
    )

    // Titled groups, general first: argument-parser lists untitled options after every titled group.

    @OptionGroup(title: "General")
    var general: GeneralOptions

    @OptionGroup(title: "Delivery")
    var delivery: DeliveryOptions

    @OptionGroup(title: "Access control and limits")
    var access: AccessOptions

    @OptionGroup(title: "TLS")
    var tls: TLSOptions

    @OptionGroup(title: "HTTP/2")
    var http2: HTTP2ConsoleOptions

    @OptionGroup(title: "Durable history")
    var historyFile: HistoryFileOptions

    @OptionGroup(title: "Cluster")
    var cluster: ClusterOptions

    @OptionGroup(title: "Audit")
    var audit: AuditOptions

    func validate() throws {
        try self.delivery.brokerConfiguration().validate()
        try self.historyFile.validate(historySize: self.delivery.history)
        if self.historyFile.path != nil && self.cluster.url != nil {
            throw ValidationError("--history-file and --cluster do not go together: a cluster's shared log is already its durable history")
        }
        _ = try self.serverSecurity()
        try self.http2.validate(hasTLS: self.tls.certificate != nil)
    }

    /// The tokens, CORS and limits of ``access``.
    func serverSecurity(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServerSecurity {
        try self.access.serverSecurity(environment: environment)
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

    func run() async throws {
        let level = Logger.Level(rawValue: self.general.logLevel) ?? .info
        // The terminal console needs a terminal on both ends; anything else (a pipe, a script, CI)
        // gets the headless mode with the same broker and the same commands on stdin.
        let interactive = !self.general.noTUI && isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1
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
        // Before anything starts: unusable certificate files end the run with their reason.
        let tls = try self.tls.configuration()
        let configuration = try self.delivery.brokerConfiguration()
        // Opened before the broker, restored before the server accepts connections.
        let history = try self.historyFile.open(historySize: configuration.historySize)
        let scheme = tls == nil ? "http" : "https"
        let clusterConfiguration = try self.cluster.configuration(
            advertisedURL: "\(scheme)://\(Self.hostForURL(self.general.host)):\(self.general.port)")
        // Always there (the `audit` view lists what happened); it writes a file only with --audit-log.
        let audit = try AuditLog(path: self.audit.path, node: clusterConfiguration?.nodeName)
        let broker = try Broker(configuration: configuration, logger: Logger(label: "sse.broker"), journal: history, audit: audit)
        if let history {
            try HistoryFileOptions.restore(broker, from: history)
            // Stand-alone bans live in the history file; a cluster's in its database; else in memory.
            let bans = try broker.useBanStore(history)
            if bans > 0 { Logger(label: "sse.history").notice("history: \(bans) bans in force restored from \(history.path)") }
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.general.loops ?? BrokerServer.defaultLoopCount)
        let cluster = try clusterConfiguration.map {
            try PostgresCluster(configuration: $0, broker: broker, logger: Logger(label: "sse.cluster"))
        }
        let server = BrokerServer(
            broker: broker,
            host: self.general.host,
            port: self.general.port,
            extraRoutes: [
                .browserPage("/"),
                cluster.map { .clusterHealth("/healthz", broker: broker, cluster: $0) } ?? .health("/healthz", broker: broker),
                .prometheus("/metrics", broker: broker, registry: registry),
            ],
            security: security,
            group: group,
            drainPeriod: milliseconds(self.general.drain),
            shutdownGracePeriod: milliseconds(max(0, self.general.shutdownGrace)),
            http2: self.http2.options,
            logger: Logger(label: "sse.http")
        )
        if let tls { try server.useTLS(tls) }
        let warning = Self.openAccessWarning(
            host: self.general.host,
            hasPublishToken: security.publishToken != nil || security.publisherTokens != nil,
            allowOpen: self.access.allowOpen
        )
        if let warning {
            // Before the terminal belongs to curses, so it stays on screen after the console exits too.
            FileHandle.standardError.write(Data((warning + "\n").utf8))
        }
        // The console's parts as services. A group starts them together and, on SIGTERM/SIGINT (and
        // SIGHUP for the terminal, whose window closed) or `quit`, stops them in reverse order: the
        // console, then the server (accepted events delivered, farewell, grace), then the history
        // file (everything recorded written), then the cluster node (its rows deleted).
        let (listening, announce) = AsyncStream.makeStream(of: String.self)
        var services: [any Service] = []
        if let cluster { services.append(cluster) }
        if let history { services.append(history) }
        // Closed after the server (reverse order): every action the server took is written.
        services.append(audit)
        services.append(
            ConsoleServer(
                server: server, cluster: cluster, clusterStartupWait: milliseconds(self.cluster.startupWait),
                listening: announce
            )
        )
        if tls != nil && !interactive {
            services.append(CertificateReloader(server: server, options: self.tls))
        }
        let terminal: TerminalConsoleService?
        if interactive {
            if let warning {
                feed.post(LogEntry(time: Date().timeIntervalSince1970, source: .broker, kind: .error, message: warning))
            }
            feed.follow(broker)
            let ascii = self.general.ascii
            let noColor = self.general.noColor || ProcessInfo.processInfo.environment["NO_COLOR"].map { !$0.isEmpty } == true
            let flags = security.authSummary + (security.cors == nil ? "" : " cors") + (history == nil ? "" : " history-file")
            terminal = TerminalConsoleService(listening: listening) { url in
                TerminalConsole(
                    broker: broker, listenURL: url, feed: feed, noColor: noColor, ascii: ascii, flags: flags,
                    cluster: cluster.map { ClusterSampler(cluster: $0, listenURL: url) }, audit: audit, backplane: cluster
                )
            }
            services.append(terminal!)
        } else {
            terminal = nil
            var clusterView: (@Sendable (String) -> ClusterView)?
            if let cluster {
                clusterView = { url in
                    var sampler = ClusterSampler(cluster: cluster, listenURL: url)
                    return sampler.sample(now: Date().timeIntervalSince1970, connections: broker.connectionCount)
                }
            }
            services.append(
                HeadlessConsole(
                    broker: broker, listening: listening, readCommands: true, cluster: clusterView, audit: audit, backplane: cluster
                )
            )
        }
        let serviceGroup = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map {
                    // Any service that ends (`quit`, the listener closed) stops the others gracefully.
                    .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup)
                },
                gracefulShutdownSignals: interactive ? [.sigterm, .sigint, .sighup] : [.sigterm, .sigint],
                logger: Logger(label: "sse.console")
            )
        )
        do {
            try await serviceGroup.run()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
        if let (url, report) = terminal?.outcome.withLockedValue({ $0 }) {
            let stats = broker.statistics
            print("sse-console: served \(url); \(stats.published) events published, \(stats.delivered) delivered, \(stats.connectionsAccepted) connections")
            print("sse-console: \(report)")
        }
    }

    static func hostForURL(_ host: String) -> String {
        host.contains(":") ? "[\(host)]" : host
    }
}
