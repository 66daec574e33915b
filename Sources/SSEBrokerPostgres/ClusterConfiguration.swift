import Foundation
import NIOSSL
import PostgresNIO
import SSEBroker

/// How a node joins a cluster: where the database is and how the node behaves towards it.
public struct ClusterConfiguration: Sendable {
    /// The database, as parsed from a `postgres://user:password@host:port/database` URL.
    public var database: PostgresClient.Configuration
    /// The URL's `sslmode`, for the node's dedicated `LISTEN` connection.
    var sslMode: SSLMode
    /// This node's name, unique in the cluster; a node restarted with the same name takes over its
    /// old row. Shown in every node's console. Default: the host name and a random suffix.
    public var nodeName: String
    /// The URL this node serves, shown to the other nodes' consoles.
    public var advertisedURL: String
    /// Prefix of the tables, the sequence and the `LISTEN` channel (`<prefix>_events`, …), so several
    /// clusters (or tests) can share one database. Letters, digits and `_`. Default `sse`.
    public var tablePrefix: String
    /// Events kept in the shared table for replay; older ones are deleted by the cleanup job.
    /// Default 10,000.
    public var retentionCount: Int
    /// Events older than this are deleted by the cleanup job. Default 1 hour.
    public var retentionAge: Duration
    /// How often a node reports itself (client count, last event) and syncs its presence. Default 1 s.
    public var heartbeatInterval: Duration
    /// A node not heard from for this long is considered dead: its clients no longer count for
    /// `broadcastTo`, and the cleanup job deletes its rows. Default 5 s.
    public var nodeTimeout: Duration
    /// The longest a producer waits for the shared log before getting `503`. Default 5 s. The publish
    /// is not withdrawn then and may still commit: a retry with the same `Idempotency-Key` gets its id.
    public var publishTimeout: Duration
    /// How long the shared log remembers an `Idempotency-Key` (key → event id), so a retry on any node
    /// gets the first answer; expired keys are deleted by the cleanup job. Default 24 hours, as the
    /// server's own `IdempotencyStore` (SSEBrokerServer) window: keep the two equal.
    public var idempotencyWindow: Duration
    /// The most events committed in one transaction (publishes waiting together are written together).
    public var maxBatch: Int
    /// Reconnection backoff: the first delay, doubled up to the maximum, with jitter.
    public var reconnectDelay: ClosedRange<Duration>
    /// How often a node writes a snapshot of its clients while a console shows every node's
    /// (``PostgresCluster/requestClientSnapshots()``): the most a row of that table lags. Default 2 s.
    public var clientSnapshotInterval: Duration

    /// - Parameters:
    ///   - url: `postgres://user:password@host:port/database` (also `postgresql://`). Query options:
    ///     `sslmode=disable|prefer|require` (default `prefer`).
    ///   - nodeName: unique per node; `nil` generates one.
    /// - Throws: ``ClusterConfigurationError`` naming what is wrong with the URL.
    public init(url: String, nodeName: String? = nil, advertisedURL: String = "") throws(ClusterConfigurationError) {
        (self.database, self.sslMode) = try Self.parse(url)
        self.nodeName = nodeName ?? Self.defaultNodeName()
        self.advertisedURL = advertisedURL
        self.tablePrefix = "sse"
        self.retentionCount = 10_000
        self.retentionAge = .seconds(3600)
        self.heartbeatInterval = .seconds(1)
        self.nodeTimeout = .seconds(5)
        self.publishTimeout = .seconds(5)
        self.idempotencyWindow = .seconds(24 * 3600)
        self.maxBatch = 256
        self.reconnectDelay = .milliseconds(100) ... .seconds(5)
        self.clientSnapshotInterval = .seconds(2)
    }

    /// Throws ``ClusterConfigurationError`` for a value out of range.
    public func validate() throws(ClusterConfigurationError) {
        func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(ClusterConfigurationError) {
            if !condition { throw ClusterConfigurationError(message: message()) }
        }
        try require(
            !self.tablePrefix.isEmpty && self.tablePrefix.count <= 40
                && self.tablePrefix.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }
                && !("0"..."9").contains(self.tablePrefix.unicodeScalars.first!),
            "the table prefix must be 1 to 40 letters, digits or _, not starting with a digit (got \"\(self.tablePrefix)\")"
        )
        try require(!self.nodeName.isEmpty && self.nodeName.utf8.count <= 128, "the node name must be 1 to 128 bytes")
        try require(self.nodeName.unicodeScalars.allSatisfy { $0.value >= 0x21 && $0.value != 0x7F }, "the node name must not contain spaces or control characters")
        try require(self.retentionCount >= 1, "the retention must keep at least 1 event (got \(self.retentionCount))")
        try require(self.retentionAge > .zero, "the retention age must be positive")
        try require(self.heartbeatInterval > .zero, "the heartbeat interval must be positive")
        try require(self.clientSnapshotInterval > .zero, "the client snapshot interval must be positive")
        try require(self.nodeTimeout > self.heartbeatInterval, "the node timeout must be longer than the heartbeat interval")
        try require(self.publishTimeout > .zero, "the publish timeout must be positive")
        try require(self.idempotencyWindow > .zero, "the idempotency window must be positive")
        try require(self.maxBatch >= 1, "the batch size must be at least 1")
    }

    static func defaultNodeName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let host =
            gethostname(&buffer, buffer.count) == 0
            ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "node"
        let suffix = String(UInt32.random(in: 0..<(1 << 24)), radix: 16)
        return "\(host.split(separator: ".").first.map(String.init) ?? "node")-\(suffix)"
    }

    enum SSLMode: Sendable {
        case disable, prefer, require
    }

    /// The configuration of the dedicated `LISTEN` connection: the same server, user and TLS policy
    /// as the pool. (A direct connection, unlike the pool, reports why it cannot connect — a wrong
    /// password, a refused port — which the console shows.)
    func listenConnectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch self.sslMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(
            host: self.database.host ?? "127.0.0.1",
            port: self.database.port ?? 5432,
            username: self.database.username,
            password: self.database.password,
            database: self.database.database,
            tls: tls
        )
        // The listening connection waits as long as the pool's connections do.
        configuration.options.connectTimeout = TimeAmount(self.database.options.connectTimeout)
        return configuration
    }

    static func parse(_ url: String) throws(ClusterConfigurationError) -> (PostgresClient.Configuration, SSLMode) {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
            scheme == "postgres" || scheme == "postgresql"
        else {
            throw ClusterConfigurationError(message: "not a PostgreSQL URL: \"\(url)\"; expected postgres://user:password@host:port/database")
        }
        guard let host = components.host, !host.isEmpty else {
            throw ClusterConfigurationError(message: "the URL names no host: \"\(url)\"")
        }
        guard let user = components.user, !user.isEmpty else {
            throw ClusterConfigurationError(message: "the URL names no user: \"\(url)\"")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let tls: PostgresClient.Configuration.TLS
        let mode: SSLMode
        switch components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "prefer" {
        case "disable": (tls, mode) = (.disable, .disable)
        case "prefer", "allow": (tls, mode) = (.prefer(.makeClientConfiguration()), .prefer)
        case "require", "verify-ca", "verify-full": (tls, mode) = (.require(.makeClientConfiguration()), .require)
        case let other: throw ClusterConfigurationError(message: "unknown sslmode \"\(other)\"; use disable, prefer or require")
        }
        var configuration = PostgresClient.Configuration(
            host: host,
            port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: database.isEmpty ? nil : database,
            tls: tls
        )
        configuration.options.connectTimeout = .seconds(3)
        configuration.options.maximumConnections = 8
        return (configuration, mode)
    }
}

/// A cluster option that cannot work, with a message a person can act on.
public struct ClusterConfigurationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { self.message }
}
