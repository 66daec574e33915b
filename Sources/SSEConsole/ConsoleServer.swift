import Logging
import SSEBrokerPostgres
import SSEBrokerServer
import ServiceLifecycle

/// The embedded server as `sse-console` runs it in its service group: bound only once the cluster
/// (if any) is online or its startup wait is over, so that the first clients can resume; then its
/// URL is handed to the console, which announces it; then served until the group shuts down, when
/// ``BrokerServer/run()`` delivers what was accepted, says farewell and closes within the grace.
struct ConsoleServer: Service {
    let server: BrokerServer
    /// On a cluster node: the backplane to wait for, and to tell the bound URL.
    let cluster: PostgresCluster?
    let clusterStartupWait: Duration
    /// Gets the listening URL once, when the server is bound (finished without one if it is not).
    let listening: AsyncStream<String>.Continuation

    func run() async throws {
        defer { self.listening.finish() }
        if let cluster = self.cluster, !(await cluster.waitUntilOnline(timeout: self.clusterStartupWait)) {
            Logger(label: "sse.cluster").warning(
                "serving while the cluster is offline: publishes get 503 until the database is reachable",
                metadata: ["state": "\(cluster.status.state)"]
            )
        }
        let address = try await self.server.start()
        let url = "\(self.server.scheme)://\(ConsoleCommand.hostForURL(self.server.host)):\(address.port ?? self.server.port)"
        self.cluster?.advertisedURL = url
        self.listening.yield(url)
        try await self.server.run()
    }
}
