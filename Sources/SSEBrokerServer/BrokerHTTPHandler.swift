import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import SSEBroker

/// Serves the broker's two endpoints on an HTTP/1.1 channel: `GET /connect` (the event stream) and
/// `POST /broadcast`, plus any ``HTTPRoute``s you add (a page, metrics, a health check); every other
/// path is answered `404` through the error handler. Mount it in any NIO HTTP server pipeline after
/// `HTTPResponseEncoder`, `ByteToMessageHandler(HTTPRequestDecoder())` and `HTTPServerPipelineHandler`;
/// ``BrokerServer`` does exactly that (with the decoder's header limit set to ``ServerLimits/maxHeaderBytes``).
///
/// Pipelined requests are answered one by one, in order: `HTTPServerPipelineHandler` holds the next
/// request until the current one's response is written, including while a cluster publish or an
/// idempotent retry waits. After a response that closes the connection (`Connection: close`, HTTP/1.0
/// without keep-alive, a refusal that hangs up) nothing more is read or processed; requests sent
/// behind a `GET /connect` are dropped (the connection is an event stream from then on).
///
/// It enforces a ``ServerSecurity`` on the broker's endpoints: tokens, CORS, stream limits, and the
/// header and body deadlines. Every refusal goes through the broker's error handler and is counted
/// with ``Broker/recordRefusal(status:)``.
///
/// When a subscriber connects, the handler takes the HTTP codecs out of the pipeline and hands the
/// channel to a raw stream handler: from then on the connection is an event stream.
///
/// Loop-confined like every `ChannelHandler`.
public final class BrokerHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        /// A `GET /connect` whose `.end` has not arrived yet.
        case connecting(HTTPRequestHead, ConnectRequest, SubscriberToken?)
        /// A `POST /broadcast`, with its `Idempotency-Key` if it has one.
        case readingBody(HTTPRequestHead, BroadcastRequest, ByteBuffer, idempotencyKey: String?)
        /// One of the extra routes; its body (if any) is dropped and it is answered at `.end`.
        case routing(HTTPRequestHead, HTTPRoute)
        /// Answered already (an error); the rest of the request is read and dropped.
        case discarding
        /// A stream, or a connection being closed: nothing more is read or processed.
        case done
        /// A `POST /broadcast` waiting for a cluster's shared log, or for the first request with its
        /// `Idempotency-Key`. The pipelining handler holds any next request until it is answered.
        case publishing
    }

    private let broker: Broker
    private let routes: BrokerRoutes
    private let extraRoutes: [HTTPRoute]
    private let security: ServerSecurity
    private let admission: AdmissionControl
    private let idempotency: IdempotencyStore
    private let logger: Logger
    private let framing: Framing
    private var state = State.idle
    /// The header or body deadline in force.
    private var deadline: Scheduled<Void>?
    /// Responses sent on this connection; a keep-alive connection idle after one is closed quietly.
    private var responsesSent = 0
    /// CORS headers for the current request's responses.
    private var corsHeaders = HTTPHeaders()
    /// The `WWW-Authenticate` challenge for a `401` of the current request.
    private var challenge = #"Bearer realm="sse-broker""#

    /// - Parameters:
    ///   - broker: the broker to serve.
    ///   - routes: the paths of the endpoints.
    ///   - extraRoutes: more routes served on the same connections; the broker's paths take precedence.
    ///   - security: tokens, CORS and limits.
    ///   - admission: the stream counts behind ``ServerLimits/maxClients``; share one between all the
    ///     handlers of a server. `nil` makes one for this connection only.
    ///   - idempotency: where the answers to requests with an `Idempotency-Key` are remembered; share
    ///     one between all the handlers of a server. `nil` makes one for this connection only.
    ///   - logger: where refused requests (at `info`) and connection errors are logged.
    public convenience init(
        broker: Broker,
        routes: BrokerRoutes = BrokerRoutes(),
        extraRoutes: [HTTPRoute] = [],
        security: ServerSecurity = ServerSecurity(),
        admission: AdmissionControl? = nil,
        idempotency: IdempotencyStore? = nil,
        logger: Logger = Logger(label: "sse.http")
    ) {
        self.init(
            broker: broker, routes: routes, extraRoutes: extraRoutes, security: security, admission: admission,
            idempotency: idempotency, logger: logger, framing: .http1
        )
    }

    /// What the handler's channel is: an HTTP/1.1 connection, or one HTTP/2 stream (behind
    /// `HTTP2FramePayloadToHTTP1ServerCodec`), which decides how a subscriber's stream is written.
    enum Framing {
        case http1
        /// A stream of an HTTP/2 connection, with the count of that connection's subscriber streams.
        case http2(HTTP2SubscriberCount)
    }

    init(
        broker: Broker,
        routes: BrokerRoutes,
        extraRoutes: [HTTPRoute],
        security: ServerSecurity,
        admission: AdmissionControl?,
        idempotency: IdempotencyStore?,
        logger: Logger,
        framing: Framing
    ) {
        self.framing = framing
        self.broker = broker
        self.routes = routes
        self.extraRoutes = extraRoutes
        self.security = security
        self.admission = admission ?? AdmissionControl(limits: security.limits)
        // The defaults are valid: this cannot throw.
        self.idempotency = idempotency ?? (try! IdempotencyStore())
        self.logger = logger
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive, case .idle = self.state, self.deadline == nil {
            self.armHeaderDeadline(context: context)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.cancelDeadline()
    }

    public func channelActive(context: ChannelHandlerContext) {
        if case .idle = self.state, self.deadline == nil {
            self.armHeaderDeadline(context: context)
        }
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        self.cancelDeadline()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a closing response, or behind a `GET /connect` (the pipelining handler hands over
        // what it held when the stream removes it): dropped, never processed.
        if case .done = self.state { return }
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.received(head: head, context: context)
        case .body(let chunk):
            self.received(chunk: chunk, context: context)
        case .end:
            self.receivedEnd(context: context)
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .done = self.state { return }
        if let parserError = error as? HTTPParserError {
            switch self.state {
            case .discarding, .publishing:
                // This request has its response (or will have): a second one is not allowed. Hang up.
                self.logConnectionError(error, context: context)
                self.state = .done
                context.close(promise: nil)
            case .idle, .connecting, .readingBody, .routing, .done:
                // No usable request: answer and hang up (the parser cannot resynchronise).
                let refusal: BrokerError =
                    parserError == .headerOverflow
                    ? .headersTooLarge(limit: self.security.limits.maxHeaderBytes)
                    : .malformedRequest("\(parserError)")
                self.refuse(nil, refusal, context: context, then: .close)
            }
            return
        }
        self.logConnectionError(error, context: context)
        self.state = .done
        context.close(promise: nil)
    }

    /// Resets and broken pipes are how peers leave: `debug`. Anything else is worth a look: `warning`.
    private func logConnectionError(_ error: any Error, context: ChannelHandlerContext) {
        Self.log(error, remote: context.channel.remoteAddress, to: self.logger)
    }

    static func log(_ error: any Error, remote: SocketAddress?, to logger: Logger) {
        let ordinary: Bool
        if let error = error as? IOError {
            ordinary = [ECONNRESET, EPIPE, ETIMEDOUT, ECONNABORTED].contains(error.errnoCode)
        } else if let error = error as? ChannelError {
            ordinary = error == .eof || error == .ioOnClosedChannel || error == .alreadyClosed
        } else if error is NIOHTTP2Errors.StreamClosed {
            // An HTTP/2 client resetting its stream: how a tab closes an EventSource.
            ordinary = true
        } else {
            ordinary = false
        }
        logger.log(
            level: ordinary ? .debug : .warning,
            "connection closed after an error",
            metadata: ["remote": "\(remote.map(Self.describe) ?? "-")", "error": "\(error)"]
        )
    }

    // MARK: Deadlines

    private func armHeaderDeadline(context: ChannelHandlerContext) {
        let timeout = self.security.limits.headerTimeout
        self.arm(timeout, context: context) { handler, context in
            switch handler.state {
            case .idle where handler.responsesSent > 0, .discarding:
                // An idle keep-alive connection, or a refused request still trickling in.
                handler.state = .done
                context.close(promise: nil)
            case .idle:
                handler.refuse(
                    nil,
                    .requestTimeout("the request line and headers did not arrive within \(Self.describe(timeout))"),
                    context: context,
                    then: .close,
                    bypassingPipelining: true
                )
            case .connecting, .readingBody, .routing, .done, .publishing:
                break
            }
        }
    }

    private func armBodyDeadline(context: ChannelHandlerContext) {
        let timeout = self.security.limits.bodyTimeout
        self.arm(timeout, context: context) { handler, context in
            switch handler.state {
            case .readingBody(let head, _, _, _), .connecting(let head, _, _), .routing(let head, _):
                handler.refuse(
                    head,
                    .requestTimeout("the request body did not arrive within \(Self.describe(timeout))"),
                    context: context,
                    then: .close
                )
            case .discarding:
                handler.state = .done
                context.close(promise: nil)
            case .idle, .done, .publishing:
                break
            }
        }
    }

    private func arm(
        _ timeout: Duration,
        context: ChannelHandlerContext,
        _ fire: @escaping (BrokerHTTPHandler, ChannelHandlerContext) -> Void
    ) {
        self.deadline?.cancel()
        self.deadline = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
            self.deadline = nil
            fire(self, context)
        }
    }

    private func cancelDeadline() {
        self.deadline?.cancel()
        self.deadline = nil
    }

    private static func describe(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds == 0 { return "\(seconds) s" }
        let value = Double(seconds) + Double(attoseconds) / 1e18
        return "\((value * 1000).rounded() / 1000) s"
    }

    // MARK: Requests

    private func received(head: HTTPRequestHead, context: ChannelHandlerContext) {
        self.cancelDeadline()
        self.corsHeaders = [:]
        self.challenge = #"Bearer realm="sse-broker""#
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        do throws(BrokerError) {
            let method: HTTPMethod
            switch path {
            case self.routes.connect: method = .GET
            case self.routes.broadcast: method = .POST
            default:
                // Extra routes (a page, metrics, health) carry no broker data: no tokens or CORS.
                let candidates = self.extraRoutes.filter { $0.path == path }
                guard !candidates.isEmpty else { throw .notFound(path: path) }
                guard let route = candidates.first(where: { $0.method == head.method }) else {
                    throw .methodNotAllowed(method: head.method, allowed: candidates.map(\.method))
                }
                self.state = .routing(head, route)
                self.armBodyDeadline(context: context)
                return
            }
            try self.checkOrigin(head)
            if head.method == .OPTIONS, let cors = self.security.cors {
                try self.answerPreflight(head, cors: cors, method: method, context: context)
                return
            }
            guard head.method == method else {
                throw .methodNotAllowed(method: head.method, allowed: self.security.cors == nil ? [method] : [method, .OPTIONS])
            }
            if method == .GET {
                var request = try ConnectRequest(head: head)
                let token = try self.authenticateSubscriber(head, request: &request)
                self.state = .connecting(head, request, token)
                self.armBodyDeadline(context: context)
                return
            }
            let grant = try self.authenticatePublisher(head)
            let request = try BroadcastRequest(head: head)
            try self.authorize(grant, type: request.type)
            let idempotencyKey = try Self.idempotencyKey(in: head)
            let limit = self.broker.configuration.maxBodyBytes
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limit {
                // Refuse before reading a byte of it.
                self.refuse(head, .bodyTooLarge(limit: limit), context: context, then: .close)
                return
            }
            if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                context.writeAndFlush(
                    self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                    promise: nil
                )
            }
            let capacity = min(head.headers.first(name: "content-length").flatMap(Int.init) ?? 0, limit)
            self.state = .readingBody(
                head, request, context.channel.allocator.buffer(capacity: capacity), idempotencyKey: idempotencyKey
            )
            self.armBodyDeadline(context: context)
        } catch {
            // An unauthenticated producer's body is not worth reading.
            let close = head.method == .POST && (error.status == .unauthorized || error.status == .forbidden)
            self.refuse(head, error, context: context, then: close ? .close : .discardRest)
        }
    }

    /// The request's `Idempotency-Key`, validated; `nil` without one. Several are ambiguous: refused.
    private static func idempotencyKey(in head: HTTPRequestHead) throws(BrokerError) -> String? {
        let values = head.headers["idempotency-key"]
        guard let value = values.first else { return nil }
        guard values.count == 1 else { throw .invalidParameter("the request has more than one Idempotency-Key header") }
        return try IdempotencyStore.validateKey(String(value))
    }

    /// With a CORS policy, a request from a browser page (it has an `Origin`) must come from an
    /// allowed origin; the response then carries the CORS headers.
    private func checkOrigin(_ head: HTTPRequestHead) throws(BrokerError) {
        guard let cors = self.security.cors, let origin = head.headers.first(name: "origin") else { return }
        guard cors.allows(origin) else { throw .forbidden("origin \(origin) is not allowed") }
        self.corsHeaders = cors.responseHeaders(for: origin)
    }

    private func answerPreflight(
        _ head: HTTPRequestHead,
        cors: CORSPolicy,
        method: HTTPMethod,
        context: ChannelHandlerContext
    ) throws(BrokerError) {
        guard let origin = head.headers.first(name: "origin") else {
            throw .forbidden("a CORS preflight request needs an Origin header")
        }
        self.corsHeaders = [:]
        self.state = .discarding
        self.write(
            HTTPErrorResponse(status: .noContent, headers: cors.preflightHeaders(for: origin, methods: [method])),
            keepAlive: head.isKeepAlive,
            context: context
        )
    }

    private func authenticatePublisher(_ head: HTTPRequestHead) throws(BrokerError) -> PublisherGrant {
        do {
            return try self.security.authenticatePublisher(head.headers)
        } catch {
            self.challenge = error.challenge
            throw error.error
        }
    }

    /// A publisher token's `publish` claim must allow the event's type: else `403`, nothing published.
    private func authorize(_ grant: PublisherGrant, type: String?) throws(BrokerError) {
        do {
            try grant.authorize(type: type)
        } catch {
            self.challenge = error.challenge
            throw error.error
        }
    }

    /// With subscriber tokens on: a valid token is required, `?id=` (if given) must be its subject,
    /// and the subject becomes the client id.
    private func authenticateSubscriber(
        _ head: HTTPRequestHead,
        request: inout ConnectRequest
    ) throws(BrokerError) -> SubscriberToken? {
        do {
            return try self.security.authenticateSubscriber(head, request: &request)
        } catch {
            self.challenge = error.challenge
            throw error.error
        }
    }

    private func received(chunk: ByteBuffer, context: ChannelHandlerContext) {
        guard case .readingBody(let head, let request, var body, let key) = self.state else { return }
        let limit = self.broker.configuration.maxBodyBytes
        guard body.readableBytes + chunk.readableBytes <= limit else {
            self.refuse(head, .bodyTooLarge(limit: limit), context: context, then: .close)
            return
        }
        self.state = .discarding  // drop the reference so the append does not copy
        var chunk = chunk
        body.writeBuffer(&chunk)
        self.state = .readingBody(head, request, body, idempotencyKey: key)
    }

    private func receivedEnd(context: ChannelHandlerContext) {
        switch self.state {
        case .connecting(let head, let request, let token):
            self.cancelDeadline()
            self.startStream(head: head, request: request, token: token, context: context)
        case .readingBody(let head, let request, let body, let key):
            self.cancelDeadline()
            self.state = .idle
            self.publish(head, request, body: body, idempotencyKey: key, context: context)
        case .routing(let head, let route):
            self.cancelDeadline()
            self.state = .idle
            var response = route.handler(head)
            response.headers.replaceOrAdd(name: "Connection", value: head.isKeepAlive ? "keep-alive" : "close")
            self.write(response, keepAlive: head.isKeepAlive, context: context)
        case .discarding:
            self.state = .idle
        case .idle, .done, .publishing:
            break
        }
    }

    // MARK: Publishing

    /// Publishes a complete `POST /broadcast` and answers it: at once on a stand-alone broker, when
    /// the shared log answers on a cluster node. With an `Idempotency-Key`, a retry gets the first
    /// answer and publishes nothing; one arriving while the first is in flight waits for it.
    private func publish(
        _ head: HTTPRequestHead,
        _ request: BroadcastRequest,
        body: ByteBuffer,
        idempotencyKey: String?,
        context: ChannelHandlerContext
    ) {
        let event: Event
        do throws(BrokerError) {
            event = try request.event(body: body).from(context.channel.remoteAddress.map(Self.describe))
        } catch {
            self.refuse(head, error, context: context, then: .idle)
            return
        }
        let broker = self.broker
        let key = idempotencyKey.map {
            IdempotencyKey(key: $0, fingerprint: IdempotencyStore.fingerprint(of: request, body: body))
        }
        if let key {
            switch self.idempotency.begin(key, on: context.eventLoop) {
            case .proceed:
                break
            case .replay(let delivery):
                self.answer(head, with: .success(delivery), replayed: true, context: context)
                return
            case .mismatch(let error):
                self.refuse(head, error, context: context, then: .idle)
                return
            case .wait(let first):
                self.answerLater(first.map { result in result.map { ($0, true) } }, head: head, context: context)
                return
            }
        }
        if broker.backplane == nil {
            // Stand-alone: at once, unless the loops are behind their bounds.
            let result = Result { () throws(BrokerError) -> Delivery in
                if let target = request.clientID { return try broker.broadcast(event, to: target) }
                return try broker.broadcast(event)
            }
            let overloaded: Bool = if case .failure(.overloaded) = result { true } else { false }
            if !overloaded {
                if let key { self.idempotency.finish(key, with: result) }
                self.answer(head, with: result, replayed: false, context: context)
                return
            }
        }
        // A cluster node (the id comes from the shared log), or an overloaded broker: the producer
        // waits for the answer, and its connection is not read meanwhile (the pipelining handler
        // holds its next request), which is what slows it to the rate the fan-out sustains.
        let store = self.idempotency
        let target = request.clientID
        let outcome = context.eventLoop.makeFutureWithTask { () async -> Result<(Delivery, Bool), BrokerError> in
            do throws(BrokerError) {
                let published = try await broker.publish(event, to: target, idempotency: key)
                if let key { store.finish(key, with: .success(published.delivery)) }
                return .success((published.delivery, published.replayed))
            } catch {
                // Forgotten, so a retry asks the shared log again: a publish that timed out may have
                // committed, and then the retry gets its id from there.
                if let key { store.finish(key, with: .failure(error)) }
                return .failure(error)
            }
        }
        self.answerLater(outcome, head: head, context: context)
    }

    /// Answers `head` when `outcome` completes; nothing else is read meanwhile.
    private func answerLater(
        _ outcome: EventLoopFuture<Result<(Delivery, Bool), BrokerError>>,
        head: HTTPRequestHead,
        context: ChannelHandlerContext
    ) {
        self.state = .publishing
        let loopBoundSelf = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        outcome.whenSuccess { result in
            let (handler, context) = loopBoundSelf.value
            guard case .publishing = handler.state, context.channel.isActive else { return }  // the connection went away
            handler.state = .idle
            switch result {
            case .success(let (delivery, replayed)):
                handler.answer(head, with: .success(delivery), replayed: replayed, context: context)
            case .failure(let error):
                handler.answer(head, with: .failure(error), replayed: false, context: context)
            }
        }
    }

    /// Answers a complete `POST /broadcast`: `202` with the delivery (`Idempotent-Replayed: true`
    /// when it is an earlier request's), or the refusal.
    private func answer(
        _ head: HTTPRequestHead,
        with result: Result<Delivery, BrokerError>,
        replayed: Bool,
        context: ChannelHandlerContext
    ) {
        switch result {
        case .success(let delivery):
            var headers = HTTPHeaders([("Content-Type", "application/json")])
            headers.add(name: "Connection", value: head.isKeepAlive ? "keep-alive" : "close")
            if replayed {
                headers.add(name: "Idempotent-Replayed", value: "true")
            }
            self.write(
                HTTPErrorResponse(status: .accepted, headers: headers, body: BroadcastRequest.responseBody(for: delivery)),
                keepAlive: head.isKeepAlive,
                context: context
            )
        case .failure(let error):
            self.refuse(head, error, context: context, then: .idle)
        }
    }

    // MARK: Streaming

    private func startStream(
        head: HTTPRequestHead,
        request: ConnectRequest,
        token: SubscriberToken?,
        context: ChannelHandlerContext
    ) {
        let clientID = request.clientID ?? Broker.generateClientID()
        do throws(BrokerError) {
            try self.broker.checkAdmission(of: clientID)
            try self.admission.admit(clientID)
        } catch {
            self.refuse(head, error, context: context, then: .idle)
            return
        }
        let admission = self.admission
        context.channel.closeFuture.whenComplete { _ in admission.release(clientID) }
        self.state = .done
        switch self.framing {
        case .http1:
            self.handOver(to: HTTP1Framing.self, head: head, request: request, clientID: clientID, token: token, context: context)
        case .http2(let count):
            self.handOver(
                to: HTTP2Framing.self, head: head, request: request, clientID: clientID, token: token,
                connectionSubscribers: count, context: context
            )
        }
    }

    /// Puts a stream handler in this handler's place and registers it with the broker.
    private func handOver<Framing: SubscriberFraming>(
        to framing: Framing.Type,
        head: HTTPRequestHead,
        request: ConnectRequest,
        clientID: String,
        token: SubscriberToken?,
        connectionSubscribers: HTTP2SubscriberCount? = nil,
        context: ChannelHandlerContext
    ) {
        let pipeline = context.pipeline.syncOperations
        let stream = SubscriberChannelHandler<Framing>(
            eventLoop: context.eventLoop, logger: self.logger, connectionSubscribers: connectionSubscribers
        )
        do {
            if Framing.self == HTTP1Framing.self {
                // The stream is raw bytes from here on: take the HTTP codecs out (they would frame
                // every event as a chunk).
                try pipeline.addHandler(stream, position: .after(self))
                for handler in try Self.httpHandlers(in: pipeline) {
                    pipeline.removeHandler(handler, promise: nil)
                }
            } else {
                // An HTTP/2 stream's codec cannot be removed: the stream handler goes in front of
                // it and writes frame payloads itself.
                try pipeline.addHandler(stream, position: .first)
            }
            pipeline.removeHandler(self, promise: nil)
            try stream.start(
                broker: self.broker,
                clientID: clientID,
                request: request,
                remoteAddress: context.channel.remoteAddress.map(Self.describe),
                userAgent: head.headers.first(name: "user-agent"),
                extraHeaders: self.corsHeaders,
                token: token
            )
        } catch {
            // Only a ban or a shutdown racing with this request gets here; the head may be out, so hang up.
            self.logger.debug("subscriber refused", metadata: ["client": "\(clientID)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    private static func httpHandlers(in pipeline: ChannelPipeline.SynchronousOperations) throws -> [any RemovableChannelHandler] {
        var handlers: [any RemovableChannelHandler] = []
        if let encoder = try? pipeline.handler(type: HTTPResponseEncoder.self) { handlers.append(encoder) }
        if let decoder = try? pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self) {
            handlers.append(decoder)
        }
        if let pipelining = try? pipeline.handler(type: HTTPServerPipelineHandler.self) { handlers.append(pipelining) }
        if let errors = try? pipeline.handler(type: HTTPServerProtocolErrorHandler.self) { handlers.append(errors) }
        return handlers
    }

    static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    // MARK: Responses

    /// What happens on a connection after a refusal.
    private enum AfterRefusal {
        /// The request is complete: the next one is read.
        case idle
        /// The rest of this request is read and dropped, then the next one is read.
        case discardRest
        /// The connection is closed once the response is written.
        case close
    }

    /// Answers `error` through the broker's error handler, counts it, and either keeps the
    /// connection for the next request or closes it.
    /// - Parameter head: `nil` when the request was refused before its head was complete.
    /// - Parameter bypassingPipelining: for a refusal of no request at all (the head did not arrive in
    ///   time): the pipelining handler has nothing to pair the response with, so it is written past it.
    ///   (A parser error is different: the pipelining handler reports it and then expects its answer.)
    private func refuse(
        _ head: HTTPRequestHead?,
        _ error: BrokerError,
        context: ChannelHandlerContext,
        then next: AfterRefusal,
        bypassingPipelining: Bool = false
    ) {
        self.cancelDeadline()
        self.broker.recordRefusal(status: error.status)
        self.logger.info(
            "request refused",
            metadata: [
                "method": "\(head.map { $0.method.rawValue } ?? "-")",
                "uri": "\(head.map { self.redacted($0.uri) } ?? "-")",
                "status": "\(error.status.code)",
                "error": "\(error)",
                "remote": "\(context.channel.remoteAddress.map(Self.describe) ?? "-")",
            ]
        )
        var response: HTTPErrorResponse
        if case .banned = error {
            // 204 is how a server tells an EventSource to stop reconnecting; it carries no body.
            response = HTTPErrorResponse(status: .noContent)
        } else if let handler = self.broker.configuration.errorHandler {
            response = handler(head ?? Self.placeholderHead, error.status, error)
        } else {
            response = HTTPErrorResponse.plainText(status: error.status, error: error)
        }
        if case .methodNotAllowed(_, let allowed) = error, !response.headers.contains(name: "allow") {
            response.headers.add(name: "Allow", value: allowed.map(\.rawValue).joined(separator: ", "))
        }
        if error.status == .unauthorized, !response.headers.contains(name: "www-authenticate") {
            response.headers.add(name: "WWW-Authenticate", value: self.challenge)
        }
        if error.status == .serviceUnavailable || error.status == .tooManyRequests, !response.headers.contains(name: "retry-after") {
            // Overload and connect rates clear within a second; a full server or a shutdown takes longer.
            let seconds: Int64 =
                switch error {
                case .overloaded, .connectRateExceeded: 1
                default: self.security.limits.retryAfterSeconds
                }
            response.headers.add(name: "Retry-After", value: String(seconds))
        }
        let keepAlive = (head?.isKeepAlive ?? false) && next != .close
        switch next {
        case .idle: self.state = .idle
        case .discardRest: self.state = .discarding
        case .close: self.state = .done
        }
        self.write(response, keepAlive: keepAlive, context: context, bypassingPipelining: bypassingPipelining)
    }

    /// What an error handler gets for a request refused before its head was parsed (malformed, too
    /// large, too slow): `GET` with an empty URI.
    public static let placeholderHead = HTTPRequestHead(version: .http1_1, method: .GET, uri: "")

    /// The URI with the value of the token query parameter hidden, for logs.
    private func redacted(_ uri: String) -> String {
        let name = self.security.subscriberTokens?.queryParameter ?? "token"
        guard let query = uri.firstIndex(of: "?") else { return uri }
        let pairs = uri[uri.index(after: query)...].split(separator: "&", omittingEmptySubsequences: false).map { pair in
            pair.hasPrefix("\(name)=") ? "\(name)=<redacted>" : String(pair)
        }
        return uri[...query] + pairs.joined(separator: "&")
    }

    /// Writes `response`. Everything about the connection's next state is settled before the `.end`
    /// is written: the pipelining handler hands the next held request on from inside that write.
    private func write(
        _ response: HTTPErrorResponse,
        keepAlive: Bool,
        context: ChannelHandlerContext,
        bypassingPipelining: Bool = false
    ) {
        var headers = response.headers
        for (name, value) in self.corsHeaders where !headers.contains(name: name) {
            headers.add(name: name, value: value)
        }
        if response.status != .noContent {
            headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
        }
        if !keepAlive {
            headers.replaceOrAdd(name: "Connection", value: "close")
        }
        let target =
            bypassingPipelining
            ? ((try? context.pipeline.syncOperations.context(handlerType: HTTPServerPipelineHandler.self)) ?? context)
            : context
        target.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        if response.body.readableBytes > 0 && response.status != .noContent {
            target.write(self.wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        self.responsesSent += 1
        if keepAlive {
            // The next request gets the full header timeout from now.
            self.armHeaderDeadline(context: context)
        } else {
            // Whatever was pipelined behind this request is never processed.
            self.state = .done
            self.cancelDeadline()
        }
        let written = target.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
