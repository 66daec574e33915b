import ArgumentParser
import Logging
import SSEBroker
import SSEBrokerPostgres
import SSEBrokerServer

/// `--cluster postgres://…` and its companions: run this broker as one node of several.
struct ClusterOptions: ParsableArguments {
    @Option(
        name: .customLong("cluster"),
        help: ArgumentHelp(
            "Join a cluster whose shared log is this PostgreSQL database (postgres://user:password@host:port/db).",
            valueName: "url"
        )
    )
    var url: String?

    @Option(name: .customLong("node-name"), help: ArgumentHelp("This node's name in the cluster (default: host name and a random suffix).", valueName: "name"))
    var nodeName: String?

    @Option(name: .customLong("cluster-prefix"), help: ArgumentHelp("Prefix of the cluster's tables and channel, so clusters can share a database.", valueName: "prefix"))
    var prefix = "sse"

    @Option(name: .customLong("cluster-retention"), help: ArgumentHelp("Events kept in the shared log for replay.", valueName: "n"))
    var retention = 10_000

    @Option(name: .customLong("cluster-startup-wait"), help: ArgumentHelp("Seconds to wait for the database before serving anyway (offline, publishes get 503).", valueName: "seconds"))
    var startupWait = 10.0

    /// The cluster configuration, or `nil` without `--cluster`.
    func configuration(advertisedURL: String = "") throws -> ClusterConfiguration? {
        guard let url = self.url else {
            guard self.nodeName == nil else { throw ValidationError("--node-name needs --cluster") }
            return nil
        }
        do throws(ClusterConfigurationError) {
            var configuration = try ClusterConfiguration(url: url, nodeName: self.nodeName, advertisedURL: advertisedURL)
            configuration.tablePrefix = self.prefix
            configuration.retentionCount = self.retention
            try configuration.validate()
            return configuration
        } catch {
            throw ValidationError("--cluster: \(error)")
        }
    }

    func validate() throws {
        _ = try self.configuration()
        guard self.startupWait.isFinite, self.startupWait >= 0 else { throw ValidationError("--cluster-startup-wait must be a number of seconds") }
    }
}

extension HTTPRoute {
    /// The health check of a cluster node: `200` with the cluster's state while the node is online,
    /// `503` while it cannot reach the database (a load balancer then sends producers elsewhere).
    static func clusterHealth(_ path: String, broker: Broker, cluster: PostgresCluster) -> HTTPRoute {
        .get(path) { _ in
            let status = cluster.status
            let online = status.state == .online && !broker.isShuttingDown
            let body = #"{"status":"\#(online ? "ok" : broker.isShuttingDown ? "shutting down" : "degraded")","clients":\#(broker.connectionCount),"lastEventId":"\#(broker.lastEventID)","cluster":\#(status.json)}"#
            return .json(body + "\n", status: online ? .ok : .serviceUnavailable)
        }
    }
}
