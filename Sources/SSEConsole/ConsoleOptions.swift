import ArgumentParser
import Foundation
import Logging
import SSEBroker
import SSEBrokerServer

/// Seconds from the command line as a `Duration`, to the millisecond.
func milliseconds(_ seconds: Double) -> Duration {
    .milliseconds(Int64((seconds * 1000).rounded()))
}

/// Where the console listens, how it runs and how it stops: what most runs set.
struct GeneralOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Address to listen on.", valueName: "address"))
    var host = "127.0.0.1"

    @Option(help: ArgumentHelp("Port to listen on (0 picks a free one).", valueName: "port"))
    var port = 8080

    @Flag(name: .customLong("no-tui"), help: "Run without the terminal console: logs on stderr, commands from stdin.")
    var noTUI = false

    @Flag(name: .customLong("no-color"), help: "No colours (also when NO_COLOR is set).")
    var noColor = false

    @Flag(help: "Draw the rate sparklines in ASCII (the default when the locale is not UTF-8).")
    var ascii = false

    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel: String = "info"

    @Option(help: ArgumentHelp("Event loops serving connections (default: one per CPU this process may run on).", valueName: "n"))
    var loops: Int?

    @Option(
        name: .customLong("shutdown-grace"),
        help: ArgumentHelp("Seconds to wait for connections to close on SIGTERM, SIGINT or quit.", valueName: "seconds")
    )
    var shutdownGrace = 5.0

    @Option(
        help: ArgumentHelp(
            "Seconds over which event streams are closed on shutdown, after their pending events, so that clients reconnect to other nodes gradually (0: all at once).",
            valueName: "seconds"
        )
    )
    var drain = 0.0

    func validate() throws {
        guard Logger.Level(rawValue: self.logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard (0...65535).contains(self.port) else { throw ValidationError("--port must be between 0 and 65535") }
        if let loops, !(1...256).contains(loops) { throw ValidationError("--loops must be between 1 and 256") }
        guard self.drain.isFinite, (0...3600).contains(self.drain) else {
            throw ValidationError("--drain must be between 0 and 3600 seconds")
        }
    }
}

/// How events reach subscribers: the broker's configuration.
struct DeliveryOptions: ParsableArguments {
    @Option(
        name: .customLong("write-timeout"),
        help: ArgumentHelp("Seconds a client may stay unable to accept data before missed events count as errors.", valueName: "seconds")
    )
    var writeTimeout = 3.0

    @Option(help: ArgumentHelp("Sequential errors a client may have before it is disconnected.", valueName: "n"))
    var tolerance = 3

    @Option(help: ArgumentHelp("Seconds between heartbeat comments.", valueName: "seconds"))
    var heartbeat = 15.0

    @Option(help: ArgumentHelp("Events kept for Last-Event-ID replay (0 turns replay off).", valueName: "n"))
    var history = 1000

    @Option(help: ArgumentHelp("Reconnection delay hinted to clients (retry:), in seconds.", valueName: "seconds"))
    var retry = 3.0

    @Option(name: .customLong("max-body"), help: ArgumentHelp("Largest POST /broadcast body accepted, in bytes.", valueName: "bytes"))
    var maxBody = 1 << 20

    @Option(name: .customLong("max-backlog"), help: ArgumentHelp("Most bytes queued for a client that is not keeping up.", valueName: "bytes"))
    var maxBacklog = 256 << 10

    @Option(
        name: .customLong("metrics-topic"),
        help: ArgumentHelp(
            "A topic (or pattern) with its own Prometheus series: subscriptions and deliveries (repeatable, at most 32).",
            valueName: "topic"
        )
    )
    var metricsTopics: [String] = []

    func brokerConfiguration() throws -> BrokerConfiguration {
        func duration(_ seconds: Double, _ flag: String) throws -> Duration {
            guard seconds.isFinite else { throw ValidationError("--\(flag) must be a number of seconds") }
            return milliseconds(seconds)
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
}

/// Who may publish and subscribe, from where, and how much: tokens, CORS and the server's limits.
struct AccessOptions: ParsableArguments {
    @Option(
        name: .customLong("publish-token"),
        help: ArgumentHelp(
            "Secret producers must send as 'Authorization: Bearer SECRET' (visible in ps: prefer the file or SSE_PUBLISH_TOKEN).",
            valueName: "secret"
        )
    )
    var publishToken: String?

    @Option(name: .customLong("publish-token-file"), help: ArgumentHelp("File holding the publish token (one line).", valueName: "file"))
    var publishTokenFile: String?

    @Option(
        name: .customLong("subscriber-secret"),
        help: ArgumentHelp(
            "HS256 key (32+ bytes) for subscriber tokens (JWT, sub = client id); turns subscriber auth on. Also --subscriber-secret-file, SSE_SUBSCRIBER_SECRET.",
            valueName: "key"
        )
    )
    var subscriberSecret: String?

    @Option(name: .customLong("subscriber-secret-file"), help: ArgumentHelp("File holding the subscriber token key.", valueName: "file"))
    var subscriberSecretFile: String?

    @Option(
        name: .customLong("publisher-secret"),
        help: ArgumentHelp(
            "HS256 key (32+ bytes) for publisher tokens (JWT, publish = the types they may publish), accepted beside --publish-token. Also --publisher-secret-file, SSE_PUBLISHER_SECRET.",
            valueName: "key"
        )
    )
    var publisherSecret: String?

    @Option(name: .customLong("publisher-secret-file"), help: ArgumentHelp("File holding the publisher token key.", valueName: "file"))
    var publisherSecretFile: String?

    @Option(name: .customLong("token-cookie"), help: ArgumentHelp("Cookie a subscriber token may come in.", valueName: "name"))
    var tokenCookie = "sse_token"

    @Flag(name: .customLong("allow-open"), help: "Serve a non-loopback address without a publish token, without the warning.")
    var allowOpen = false

    @Option(
        name: .customLong("cors-origin"),
        help: ArgumentHelp(
            "Origin allowed to use the broker from a browser page (repeatable), or '*'. Explicit origins get credentials.",
            valueName: "origin"
        )
    )
    var corsOrigins: [String] = []

    @Option(name: .customLong("max-clients"), help: ArgumentHelp("Most event streams at once; beyond: 503 with Retry-After.", valueName: "n"))
    var maxClients: Int?

    @Option(
        name: .customLong("max-per-client"),
        help: ArgumentHelp("Most streams one client id may have at once; beyond: 429.", valueName: "n")
    )
    var maxPerClient: Int?

    @Option(
        name: .customLong("max-connect-rate"),
        help: ArgumentHelp(
            "Most new event streams accepted per second (token bucket, one second's burst); beyond: 503 with Retry-After. Default: no limit.",
            valueName: "n"
        )
    )
    var maxConnectRate: Int?

    @Option(name: .customLong("max-header-bytes"), help: ArgumentHelp("Largest request line plus headers; beyond: 431.", valueName: "bytes"))
    var maxHeaderBytes = 16 << 10

    @Option(
        name: .customLong("header-timeout"),
        help: ArgumentHelp("Seconds a connection may take to send its request head; beyond: 408, closed.", valueName: "seconds")
    )
    var headerTimeout = 10.0

    @Option(
        name: .customLong("body-timeout"),
        help: ArgumentHelp("Seconds a POST body may take to arrive; beyond: 408, closed.", valueName: "seconds")
    )
    var bodyTimeout = 30.0

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
            return milliseconds(seconds)
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
}
