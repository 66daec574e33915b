import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import SSEBroker

/// The broker's embedded HTTP/1.1 server on SwiftNIO.
///
/// ```swift
/// let broker = try Broker()
/// let server = BrokerServer(broker: broker, host: "127.0.0.1", port: 8080)
/// try await server.run()   // until shutdown()
/// ```
public final class BrokerServer: Sendable {
    /// The broker served.
    public let broker: Broker
    public let host: String
    public let port: Int
    public let routes: BrokerRoutes
    /// The routes served beside the broker's endpoints.
    public let extraRoutes: [HTTPRoute]
    private let group: any EventLoopGroup
    private let ownsGroup: Bool
    private let logger: Logger
    private let state = NIOLockedValueBox(ServerState())

    private struct ServerState {
        var serverChannel: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var isShuttingDown = false
    }

    /// - Parameters:
    ///   - broker: the broker to serve.
    ///   - host: the address to bind; loopback by default.
    ///   - port: the port; `0` picks a free one (see ``localAddress``).
    ///   - routes: the endpoint paths.
    ///   - extraRoutes: more routes on the same port — ``HTTPRoute/browserPage(_:routes:)``,
    ///     ``HTTPRoute/health(_:broker:)``, a metrics exporter; other paths get `404`.
    ///   - group: the event loops; by default the server makes ``defaultLoopCount`` loops and shuts
    ///     them down itself.
    ///   - logger: where the server logs.
    public init(
        broker: Broker,
        host: String = "127.0.0.1",
        port: Int = 8080,
        routes: BrokerRoutes = BrokerRoutes(),
        extraRoutes: [HTTPRoute] = [],
        group: (any EventLoopGroup)? = nil,
        logger: Logger = Logger(label: "sse.server")
    ) {
        self.broker = broker
        self.host = host
        self.port = port
        self.routes = routes
        self.extraRoutes = extraRoutes
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: Self.defaultLoopCount)
        self.ownsGroup = group == nil
        self.logger = logger
    }

    /// One event loop per CPU this process may run on.
    ///
    /// NIO's `System.coreCount` honours cgroup and cpuset limits but not the affinity mask that
    /// `taskset` sets; two loops time-sharing one CPU cost about 50% more CPU per delivered event
    /// and several times the tail latency (BENCHMARKS.md), so the mask counts too.
    public static var defaultLoopCount: Int {
        min(System.coreCount, self.allowedCPUCount ?? System.coreCount)
    }

    /// The CPUs in this process's affinity mask (`Cpus_allowed_list: 0-1,4`), on Linux.
    private static var allowedCPUCount: Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
        else { return nil }
        var count = 0
        for range in line.dropFirst("Cpus_allowed_list:".count).split(separator: ",") {
            let bounds = range.split(separator: "-").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            count += bounds.count == 2 ? bounds[1] - bounds[0] + 1 : bounds.count
        }
        return count > 0 ? count : nil
    }

    /// The bound address, once ``start()`` returned.
    public var localAddress: SocketAddress? {
        self.state.withLockedValue { $0.serverChannel?.localAddress }
    }

    /// Binds and starts accepting connections.
    /// - Returns: the bound address (useful with port `0`).
    @discardableResult
    public func start() async throws -> SocketAddress {
        let broker = self.broker
        let routes = self.routes
        let extraRoutes = self.extraRoutes
        let logger = self.logger
        let channel = try await ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Events are coalesced per loop turn by the broker; Nagle would only add latency.
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { [weak self] channel in
                self?.track(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        HTTPResponseEncoder(),
                        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                        BrokerHTTPHandler(broker: broker, routes: routes, extraRoutes: extraRoutes, logger: logger)
                    )
                }
            }
            .bind(host: self.host, port: self.port)
            .get()
        self.state.withLockedValue { $0.serverChannel = channel }
        self.logger.info(
            "server listening",
            metadata: [
                "address": "\(self.host):\(channel.localAddress?.port ?? self.port)",
                "connect": "\(routes.connect)", "broadcast": "\(routes.broadcast)",
                "routes": "\(extraRoutes.map { "\($0.method.rawValue) \($0.path)" }.joined(separator: ", "))",
            ]
        )
        return channel.localAddress!
    }

    /// Starts (unless started) and returns once the server has shut down.
    public func run() async throws {
        let channel = self.state.withLockedValue { $0.serverChannel }
        if channel == nil {
            try await self.start()
        }
        try await self.state.withLockedValue { $0.serverChannel }!.closeFuture.get()
    }

    /// Stops accepting, tells every subscriber the broker is going away and closes it, closes
    /// producer connections, and waits until all are closed. Idempotent.
    public func shutdown() async throws {
        let (serverChannel, connections, first) = self.state.withLockedValue { state in
            defer { state.isShuttingDown = true }
            return (state.serverChannel, Array(state.connections.values), !state.isShuttingDown)
        }
        guard first else { return }
        try? await serverChannel?.close()
        self.broker.shutdown()
        for connection in connections {
            connection.close(promise: nil)
        }
        for connection in connections {
            try? await connection.closeFuture.get()
        }
        if self.ownsGroup {
            try await self.group.shutdownGracefully()
        }
    }

    private func track(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        let accepted = self.state.withLockedValue { state in
            guard !state.isShuttingDown else { return false }
            state.connections[key] = channel
            return true
        }
        guard accepted else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [weak self] _ in
            _ = self?.state.withLockedValue { $0.connections.removeValue(forKey: key) }
        }
    }
}
