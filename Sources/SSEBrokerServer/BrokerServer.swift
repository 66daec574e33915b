import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import SSEBroker
import ServiceLifecycle

#if TLS
import NIOSSL
#endif

/// The broker's embedded HTTP server on SwiftNIO: HTTP/1.1, and HTTP/2 over TLS (by ALPN) or
/// in cleartext with prior knowledge (``HTTP2Options``).
///
/// ```swift
/// let broker = try Broker()
/// let server = BrokerServer(broker: broker, host: "127.0.0.1", port: 8080)
/// try await server.run()   // until shutdown()
/// ```
///
/// It is a swift-service-lifecycle `Service`: in a `ServiceGroup`, a graceful shutdown (SIGTERM, say)
/// runs ``shutdown(gracePeriod:)`` with ``shutdownGracePeriod``, and cancellation closes everything
/// at once:
/// ```swift
/// let group = ServiceGroup(configuration: .init(
///     services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await group.run()
/// ```
public final class BrokerServer: Service, Sendable {
    /// The broker served.
    public let broker: Broker
    public let host: String
    public let port: Int
    public let routes: BrokerRoutes
    /// The routes served beside the broker's endpoints.
    public let extraRoutes: [HTTPRoute]
    /// Tokens, CORS and limits in force.
    public let security: ServerSecurity
    /// How long ``shutdown(gracePeriod:)`` spreads the closing of event streams over.
    public let drainPeriod: Duration
    /// How long a shutdown waits for connections to close (after ``drainPeriod``) unless the caller
    /// of ``shutdown(gracePeriod:)`` says otherwise: the grace of a graceful shutdown in a service group.
    public let shutdownGracePeriod: Duration
    /// The stream counts behind ``ServerLimits/maxClients``.
    public let admission: AdmissionControl
    /// The answers to `POST /broadcast` requests with an `Idempotency-Key`, for all connections.
    public let idempotency: IdempotencyStore
    /// Whether and how HTTP/2 is served.
    public let http2: HTTP2Options
    private let group: any EventLoopGroup
    private let ownsGroup: Bool
    private let logger: Logger
    private let state = NIOLockedValueBox(ServerState())

    private struct ServerState {
        #if TLS
        /// https: what connections accepted from now on are served with (``useTLS(_:)``).
        var tls: NIOSSLContext?
        #endif
        var serverChannel: (any Channel)?
        /// The broker's fan-out waits on it for its loop's next poll (see ``LoopPollSignal``).
        var pollSignal: PipePollSignal?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var isShuttingDown = false
        /// The first ``shutdown()``; later callers wait for it rather than return early.
        var shutdownTask: Task<Void, any Error>?
    }

    /// - Parameters:
    ///   - broker: the broker to serve.
    ///   - host: the address to bind; loopback by default.
    ///   - port: the port; `0` picks a free one (see ``localAddress``).
    ///   - routes: the endpoint paths.
    ///   - extraRoutes: more routes on the same port — ``HTTPRoute/browserPage(_:routes:)``,
    ///     ``HTTPRoute/health(_:broker:)``, a metrics exporter; other paths get `404`.
    ///   - security: tokens, CORS and limits; by default open, with the default limits.
    ///   - group: the event loops; by default the server makes ``defaultLoopCount`` loops and shuts
    ///     them down itself.
    ///   - drainPeriod: on shutdown, event streams are closed evenly over this period (after the
    ///     events accepted before), so that their clients reconnect to the other nodes of a cluster
    ///     a few at a time; zero (the default) closes them all at once.
    ///   - shutdownGracePeriod: how long a shutdown waits for connections to close after the
    ///     drain period before giving up on them (five seconds by default).
    ///   - idempotency: where `Idempotency-Key` answers are remembered; by default 24 hours, at most
    ///     10,000 keys (see ``IdempotencyStore``).
    ///   - http2: HTTP/2 by ALPN on https (on by default), h2c with prior knowledge on http (off by
    ///     default), and its limits.
    ///   - logger: where the server logs.
    public init(
        broker: Broker,
        host: String = "127.0.0.1",
        port: Int = 8080,
        routes: BrokerRoutes = BrokerRoutes(),
        extraRoutes: [HTTPRoute] = [],
        security: ServerSecurity = ServerSecurity(),
        group: (any EventLoopGroup)? = nil,
        drainPeriod: Duration = .zero,
        shutdownGracePeriod: Duration = .seconds(5),
        idempotency: IdempotencyStore? = nil,
        http2: HTTP2Options = HTTP2Options(),
        logger: Logger = Logger(label: "sse.server")
    ) {
        self.http2 = http2
        self.drainPeriod = drainPeriod
        self.shutdownGracePeriod = shutdownGracePeriod
        self.broker = broker
        self.host = host
        self.port = port
        self.routes = routes
        self.extraRoutes = extraRoutes
        self.security = security
        self.admission = AdmissionControl(limits: security.limits)
        // The defaults are valid: this cannot throw.
        self.idempotency = idempotency ?? (try! IdempotencyStore())
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

    /// `https` once ``useTLS(_:)`` was called, else `http`.
    public var scheme: String {
        #if TLS
        self.state.withLockedValue { $0.tls } == nil ? "http" : "https"
        #else
        "http"
        #endif
    }

    /// The bound address, once ``start()`` returned.
    public var localAddress: SocketAddress? {
        self.state.withLockedValue { $0.serverChannel?.localAddress }
    }

    /// Binds and starts accepting connections.
    /// - Returns: the bound address (useful with port `0`).
    @discardableResult
    public func start() async throws -> SocketAddress {
        let routes = self.routes
        let extraRoutes = self.extraRoutes
        try self.security.limits.validate()
        let setup = ConnectionSetup(
            broker: self.broker, routes: routes, extraRoutes: extraRoutes, security: self.security,
            admission: self.admission, idempotency: self.idempotency, http2: self.http2, logger: self.logger
        )
        // Before the first connection: a loop behind on its fan-out must still read its sockets
        // (NIO polls only once no task is left, and a busy fan-out always leaves one otherwise).
        let pollSignal = try await PipePollSignal.make(on: self.group)
        self.state.withLockedValue { $0.pollSignal = pollSignal }
        self.broker.useLoopPollSignal(pollSignal)
        let channel: any Channel
        do {
            channel = try await self.bind(setup: setup)
        } catch {
            self.state.withLockedValue { $0.pollSignal = nil }
            await pollSignal.closePipes()
            throw error
        }
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

    /// The listener, its child channels set up by `setup`.
    private func bind(setup: ConnectionSetup) async throws -> any Channel {
        try await ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Events are coalesced per loop turn by the broker; Nagle would only add latency.
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { [weak self] channel in
                self?.track(channel)
                #if TLS
                // Read per connection, so that a new certificate applies to the next one.
                let tls = self?.state.withLockedValue { $0.tls }
                #endif
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    #if TLS
                    if let tls {
                        try pipeline.addHandler(NIOSSLServerHandler(context: tls))
                        // One TLS record per flush, not one per write (HTTP/2 writes two per frame).
                        try pipeline.addHandler(WriteCoalescingHandler())
                        if setup.http2.overTLS {
                            try pipeline.addHandler(ProtocolSelectionHandler(mode: .alpn, setup: setup))
                            return
                        }
                        try setup.configureHTTP1(channel)
                        return
                    }
                    #endif
                    if setup.http2.cleartext {
                        try pipeline.addHandler(ProtocolSelectionHandler(mode: .preface, setup: setup))
                    } else {
                        try setup.configureHTTP1(channel)
                    }
                }
            }
            .bind(host: self.host, port: self.port)
            .get()
    }

    /// Starts (unless started) and returns once the server has shut down: after
    /// ``shutdown(gracePeriod:)`` has finished, or when the listener closed for another reason.
    ///
    /// In a `ServiceGroup`, the group's graceful shutdown starts ``shutdown(gracePeriod:)`` with
    /// ``shutdownGracePeriod``, and cancelling the task shuts down with no grace at all.
    public func run() async throws {
        if self.state.withLockedValue({ $0.serverChannel }) == nil {
            try await self.start()
        }
        let listener = self.state.withLockedValue { $0.serverChannel }!
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await listener.closeFuture.get()
            } onGracefulShutdown: {
                Task { try? await self.shutdown() }
            }
        } onCancel: {
            Task { try? await self.shutdown(gracePeriod: .zero) }
        }
        // The listener closes first thing in a shutdown: wait for the rest of it.
        if let shutdown = self.state.withLockedValue({ $0.shutdownTask }) {
            try await shutdown.value
        }
    }

    /// Stops accepting, tells every subscriber the broker is going away and closes it (spread over
    /// ``drainPeriod``), closes producer connections, and waits until all are closed. Events
    /// accepted before the call are written to the connected subscribers first: each loop runs the
    /// deliveries queued before the farewell. Idempotent; a second caller waits for the first one
    /// to finish.
    ///
    /// - Parameter gracePeriod: how long to wait for connections to close (after ``drainPeriod``)
    ///   before giving up on them; ``shutdownGracePeriod`` if `nil`.
    public func shutdown(gracePeriod: Duration? = nil) async throws {
        let gracePeriod = gracePeriod ?? self.shutdownGracePeriod
        let task = self.state.withLockedValue { state -> Task<Void, any Error> in
            if let task = state.shutdownTask { return task }
            state.isShuttingDown = true
            let serverChannel = state.serverChannel
            let connections = Array(state.connections.values)
            let pollSignal = state.pollSignal
            let drain = self.drainPeriod
            let task = Task { [broker = self.broker, group = self.group, ownsGroup = self.ownsGroup, logger = self.logger] in
                try? await serverChannel?.close()
                broker.shutdown(spread: drain)
                // Event streams are the broker's to close (after their events, spread over the
                // drain period); every other HTTP/1.1 connection is closed now. An HTTP/2 connection
                // gets GOAWAY (no new streams) and closes once the broker has closed its streams.
                for connection in connections {
                    connection.eventLoop.execute {
                        if ConnectionSetup.isHTTP2(connection) {
                            connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
                            return
                        }
                        let isStream =
                            (try? connection.pipeline.syncOperations.handler(type: SubscriberChannelHandler<HTTP1Framing>.self)) != nil
                        if !isStream { connection.close(promise: nil) }
                    }
                }
                let closed = await Self.waitForClose(connections, within: drain + gracePeriod, on: group.any())
                if !closed {
                    logger.warning("connections still open after the grace period", metadata: ["grace": "\(gracePeriod)"])
                }
                // The streams are closed or given up on. What waited on a pipe runs as it closes;
                // a drain after that falls back to a task scheduled a moment ahead.
                await pollSignal?.closePipes()
                if ownsGroup {
                    try await group.shutdownGracefully()
                }
            }
            state.shutdownTask = task
            return task
        }
        try await task.value
    }

    /// Waits until every connection has closed, or `limit` has passed. Returns whether all closed.
    private static func waitForClose(_ connections: [any Channel], within limit: Duration, on loop: any EventLoop) async -> Bool {
        // Both completions run on `loop`; the second one is ignored.
        let promise = loop.makePromise(of: Bool.self)
        EventLoopFuture.andAllComplete(connections.map(\.closeFuture), on: loop).whenComplete { _ in promise.succeed(true) }
        let timer = loop.scheduleTask(in: TimeAmount(limit)) { promise.succeed(false) }
        let closed = (try? await promise.futureResult.get()) ?? false
        timer.cancel()
        return closed
    }

    /// The accepted connections still open (for tests).
    var openConnections: [any Channel] {
        self.state.withLockedValue { Array($0.connections.values) }
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

#if TLS
extension BrokerServer {
    /// Serves https to the connections accepted from now on: HTTP/2 or HTTP/1.1 as ALPN decides
    /// (HTTP/1.1 only with ``HTTP2Options/overTLS`` off).
    ///
    /// Call it before ``start()`` for an https server. Calling it again replaces the certificate
    /// for new connections (a rotation) while open ones keep theirs. A configuration that names no
    /// ALPN protocols gets `h2` and `http/1.1` (or `http/1.1` alone); one that names some should
    /// include `http/1.1`.
    ///
    /// - Throws: NIOSSL's error when the configuration cannot make a context, for example a key
    ///   that does not match the certificate.
    public func useTLS(_ configuration: TLSConfiguration) throws {
        var configuration = configuration
        if configuration.applicationProtocols.isEmpty {
            configuration.applicationProtocols = self.http2.overTLS ? ["h2", "http/1.1"] : ["http/1.1"]
        }
        let context = try NIOSSLContext(configuration: configuration)
        self.state.withLockedValue { $0.tls = context }
    }
}
#endif
