import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SSEBroker
import SSEBrokerServer
import Synchronization

/// A request context that knows its connection's channel: the broker writes each subscriber's
/// stream on the channel's event loop, as it does for its own server.
///
/// Use ``BasicBrokerRequestContext``, or add `channel` to your own context from
/// `ApplicationRequestContextSource.channel` in its `init(source:)`.
public protocol BrokerRequestContext: RequestContext {
    /// The connection the request arrived on.
    var channel: any Channel { get }
}

/// Hummingbird's basic request context plus the connection's channel.
public struct BasicBrokerRequestContext: BrokerRequestContext {
    /// Hummingbird's per-request storage (logger, parameters, endpoint path).
    public var coreContext: CoreRequestContextStorage
    /// The connection the request arrived on.
    public let channel: any Channel

    /// Called by Hummingbird for each request.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}

extension RouterMethods where Context: BrokerRequestContext {
    /// Mounts the broker's endpoints: `GET connect` (the event stream) and `POST broadcast`, with
    /// the same HTTP contract as ``SSEBrokerServer`` — the same query parameters, replay from
    /// `Last-Event-ID`, `202 {"id","delivered"}` and refusals through the broker's error handler.
    ///
    /// Subscribers go through the broker's own fan-out (one task per event loop per event, never
    /// one per client): each stream is a ``SubscriberTransport`` over the response body writer.
    /// ```swift
    /// let router = Router(context: BasicBrokerRequestContext.self)
    /// router.addSSEBroker(broker, connect: "/events", broadcast: "/publish")
    /// ```
    ///
    /// `security` is applied as ``SSEBrokerServer/BrokerServer`` applies it, with the same refusals:
    /// the publish token, subscriber tokens (the subject becomes the client id; the stream closes when
    /// the token expires), bans (`204`), and the stream limits ``ServerLimits/maxClients`` and
    /// ``ServerLimits/maxConnectionsPerClientID``. Not applied: ``ServerSecurity/cors`` and the header
    /// size and timing limits (Hummingbird's server parses the requests; use its own configuration
    /// and middleware for those).
    /// - Parameters:
    ///   - broker: the broker to serve; it may be served by other servers at the same time.
    ///   - connect: the subscribers' path.
    ///   - broadcast: the producers' path.
    ///   - security: tokens and stream limits; by default open.
    ///   - admission: the stream counts behind the limits; share one between every router serving
    ///     the broker. `nil` makes one for this mount.
    ///   - idempotency: where the answers to publishes with an `Idempotency-Key` are remembered (as on
    ///     the embedded server); share one between every router serving the broker. `nil` makes one
    ///     for this mount (24 hours, 10,000 keys).
    @discardableResult
    public func addSSEBroker(
        _ broker: Broker,
        connect: RouterPath = "/connect",
        broadcast: RouterPath = "/broadcast",
        security: ServerSecurity = ServerSecurity(),
        admission: AdmissionControl? = nil,
        idempotency: IdempotencyStore? = nil
    ) -> Self {
        let admission = admission ?? AdmissionControl(limits: security.limits)
        // The defaults are valid: this cannot throw.
        let idempotency = idempotency ?? (try! IdempotencyStore())
        self.get(connect) { request, context in
            BrokerEndpoints.connect(
                request, channel: context.channel, logger: context.logger, broker: broker, security: security,
                admission: admission
            )
        }
        self.post(broadcast) { request, context in
            await BrokerEndpoints.broadcast(
                request, channel: context.channel, logger: context.logger, broker: broker, security: security,
                idempotency: idempotency
            )
        }
        return self
    }

    /// Serves ``BrowserPage`` at `path`, for the endpoints at `routes` (full paths from the root).
    @discardableResult
    public func addSSEBrokerPage(_ path: RouterPath = "/", routes: BrokerRoutes = BrokerRoutes()) -> Self {
        let page = ByteBuffer(string: BrowserPage.html(routes: routes))
        self.get(path) { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
                body: ResponseBody(byteBuffer: page)
            )
        }
        return self
    }
}

/// The two handlers, shared by every router the broker is mounted on.
enum BrokerEndpoints {

    static func connect(
        _ request: Request,
        channel: any Channel,
        logger: Logger,
        broker: Broker,
        security: ServerSecurity,
        admission: AdmissionControl
    ) -> Response {
        var connect: ConnectRequest
        let clientID: String
        let token: SubscriberToken?
        do throws(BrokerError) {
            connect = try ConnectRequest(request: request.head)
            do {
                token = try security.authenticateSubscriber(request.head, request: &connect)
            } catch {
                return self.refusal(error.error, request: request, logger: logger, broker: broker, challenge: error.challenge)
            }
            clientID = connect.clientID ?? Broker.generateClientID()
            // A ban or a shutdown gets a plain response, not a stream (204 stops an EventSource).
            try broker.checkAdmission(of: clientID)
            try admission.admit(clientID)
        } catch {
            return self.refusal(error, request: request, logger: logger, broker: broker, limits: security.limits)
        }
        // Given back when the stream ends, or when the connection closes before the body ever runs.
        let slot = AdmissionSlot(admission: admission, clientID: clientID)
        channel.closeFuture.whenComplete { _ in slot.release() }
        let remoteAddress = channel.remoteAddress.map(Self.describe)
        let userAgent = request.headers[.userAgent]
        var headers = ConnectRequest.responseHeaders(clientID: clientID)
        // Hummingbird sends the head before the body subscribes, so the header is decided a moment
        // early; the stream's own `sse-gap` event is decided at subscription, under the broker's lock.
        if let replay = broker.replayStatus(after: connect.lastEventID) {
            headers[.sseReplay] = replay.headerValue
        }
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { [connect] writer in
                defer { slot.release() }
                let transport = ResponseBodyTransport(channel: channel)
                try await transport.stream(into: &writer) { transport throws(BrokerError) in
                    let subscription = try broker.subscribe(
                        clientID: clientID,
                        lastEventID: connect.lastEventID,
                        topics: connect.topics,
                        remoteAddress: remoteAddress,
                        userAgent: userAgent,
                        transport: transport
                    )
                    if let expiresAt = token?.expiresAt {
                        // On the loop (the subscribe closure runs there), as the embedded server does.
                        let delay = max(0, expiresAt.timeIntervalSinceNow)
                        let expiry = transport.eventLoop.scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) {
                            subscription.disconnect(reason: .expired, comment: "token expired")
                        }
                        channel.closeFuture.whenComplete { _ in expiry.cancel() }
                    }
                    return subscription
                }
            }
        )
    }

    static func broadcast(
        _ request: Request,
        channel: any Channel,
        logger: Logger,
        broker: Broker,
        security: ServerSecurity,
        idempotency: IdempotencyStore
    ) async -> Response {
        let limit = broker.configuration.maxBodyBytes
        let eventLoop = channel.eventLoop
        let publish: BroadcastRequest
        let grant: PublisherGrant
        do {
            grant = try security.authenticatePublisher(request.headers)
        } catch {
            return self.refusal(error.error, request: request, logger: logger, broker: broker, challenge: error.challenge, limits: security.limits)
        }
        let key: String?
        do throws(BrokerError) {
            publish = try BroadcastRequest(request: request.head)
            do {
                try grant.authorize(type: publish.type)
            } catch {
                throw error.error
            }
            let keys = request.headers[values: .idempotencyKey]
            guard keys.count <= 1 else { throw .invalidParameter("the request has more than one Idempotency-Key header") }
            key = try keys.first.map { value throws(BrokerError) in try IdempotencyStore.validateKey(value) }
            if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
                throw .bodyTooLarge(limit: limit)  // refused before reading a byte of it
            }
        } catch {
            return self.refusal(error, request: request, logger: logger, broker: broker, limits: security.limits)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            return self.refusal(.bodyTooLarge(limit: limit), request: request, logger: logger, broker: broker, limits: security.limits)
        } catch {
            return self.refusal(.malformedRequest("\(error)"), request: request, logger: logger, broker: broker, limits: security.limits)
        }
        let event: Event
        do throws(BrokerError) {
            // The audit trail names the producer (`http` + its address), as on the embedded server.
            event = try publish.event(body: body).from(channel.remoteAddress.map(Self.describe))
        } catch {
            return self.refusal(error, request: request, logger: logger, broker: broker, limits: security.limits)
        }
        guard let key else {
            do throws(BrokerError) {
                return self.accepted(try await broker.publish(event, to: publish.clientID), replayed: false)
            } catch {
                return self.refusal(error, request: request, logger: logger, broker: broker, limits: security.limits)
            }
        }
        // As on the embedded server: a retry gets the first answer, one in flight waits for it.
        let idempotencyKey = IdempotencyKey(key: key, fingerprint: IdempotencyStore.fingerprint(of: publish, body: body))
        let result: Result<Delivery, BrokerError>
        var replayed = true
        switch idempotency.begin(idempotencyKey, on: eventLoop) {
        case .replay(let delivery):
            result = .success(delivery)
        case .mismatch(let error):
            result = .failure(error)
        case .wait(let first):
            result = (try? await first.get()) ?? .failure(.unavailable("the first request with this Idempotency-Key was lost"))
        case .proceed:
            do throws(BrokerError) {
                let published = try await broker.publish(event, to: publish.clientID, idempotency: idempotencyKey)
                result = .success(published.delivery)
                replayed = published.replayed
            } catch {
                result = .failure(error)
            }
            idempotency.finish(idempotencyKey, with: result)
        }
        switch result {
        case .success(let delivery): return self.accepted(delivery, replayed: replayed)
        case .failure(let error): return self.refusal(error, request: request, logger: logger, broker: broker, limits: security.limits)
        }
    }

    /// `202` with the delivery; `Idempotent-Replayed: true` when it is an earlier request's.
    static func accepted(_ delivery: Delivery, replayed: Bool) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if replayed { headers[.idempotentReplayed] = "true" }
        return Response(
            status: .accepted, headers: headers, body: ResponseBody(byteBuffer: BroadcastRequest.responseBody(for: delivery))
        )
    }

    /// A refusal through the broker's error handler, exactly as ``SSEBrokerServer`` answers it.
    /// - Parameters:
    ///   - challenge: the `WWW-Authenticate` of a `401`.
    ///   - limits: where the `Retry-After` of a `503` or `429` comes from.
    static func refusal(
        _ error: BrokerError,
        request: Request,
        logger: Logger,
        broker: Broker,
        challenge: String = SecurityRefusal.realm,
        limits: ServerLimits = ServerLimits()
    ) -> Response {
        broker.recordRefusal(error)
        logger.info(
            "request refused",
            metadata: [
                "method": "\(request.method)", "uri": "\(request.uri)", "status": "\(error.status.code)", "error": "\(error)",
            ]
        )
        let response = HTTPErrorResponse.refusal(
            error, to: request.head, errorHandler: broker.configuration.errorHandler, challenge: challenge, limits: limits
        )
        return Response(status: response.status, headers: response.headerFields, body: ResponseBody(byteBuffer: response.body))
    }

    private static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}

/// One stream slot taken from an ``AdmissionControl``, given back exactly once.
final class AdmissionSlot: Sendable {
    private let admission: AdmissionControl
    private let clientID: String
    private let released = Atomic(false)

    init(admission: AdmissionControl, clientID: String) {
        self.admission = admission
        self.clientID = clientID
    }

    func release() {
        if self.released.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            self.admission.release(self.clientID)
        }
    }
}
