import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import SSEBroker

/// Serves the broker's two endpoints on an HTTP/1.1 connection or an HTTP/2 stream: `GET /connect`
/// (the event stream) and `POST /broadcast`, plus any ``HTTPRoute``s you add (a page, metrics, a
/// health check); every other path is answered `404` through the error handler. Mount it in any NIO
/// HTTP/1 server pipeline after `HTTPResponseEncoder`, `ByteToMessageHandler(HTTPRequestDecoder())`
/// and `HTTPServerPipelineHandler`; ``BrokerServer`` does exactly that (with the decoder's header
/// limit set to ``ServerLimits/maxHeaderBytes``), and puts one behind
/// `HTTP2FramePayloadToHTTP1ServerCodec` on every HTTP/2 stream.
///
/// The protocol's rules live in a value type, `BrokerRequestStateMachine` (routing, CORS, tokens,
/// limits, deadlines, refusals): this handler converts NIO's request parts to swift-http-types',
/// feeds them to it, and performs what it returns — writes a response, publishes, hands the
/// channel to a subscriber stream, arms a deadline, closes.
///
/// Pipelined requests are answered one by one, in order: `HTTPServerPipelineHandler` holds the next
/// request until the current one's response is written, including while a cluster publish or an
/// idempotent retry waits. After a response that closes the connection (`Connection: close`, HTTP/1.0
/// without keep-alive, a refusal that hangs up) nothing more is read or processed; requests sent
/// behind a `GET /connect` are dropped (the connection is an event stream from then on).
///
/// Every refusal goes through the broker's error handler and is counted with
/// ``Broker/recordRefusal(status:)``.
///
/// Loop-confined like every `ChannelHandler`.
public final class BrokerHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundOut = HTTPServerResponsePart

    private let broker: Broker
    private let security: ServerSecurity
    private let admission: AdmissionControl
    private let idempotency: IdempotencyStore
    private let logger: Logger
    private let framing: Framing
    private var machine: BrokerRequestStateMachine
    /// When the header or body deadline in force passes; `nil`: none.
    private var deadline: NIODeadline?
    /// The connection's one timer, and when it fires. A request moves ``deadline`` without touching
    /// the timer (a `scheduleTask` and a `cancel` per deadline were a measurable share of a
    /// one-event publish); a timer that fires before the deadline waits again for what is left.
    private var timer: (task: Scheduled<Void>, at: NIODeadline)?
    private var started = false
    /// Socket reads since the last response (for the log of a connection closed as idle).
    private var readsSinceResponse = 0
    /// The peer's address as events show it, formatted on first use (an outer `nil`: not yet).
    private var describedRemoteAddress: String??
    /// The HTTP version of the request being served, for its responses.
    private var version = HTTPVersion.http1_1

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
        self.security = security
        self.machine = BrokerRequestStateMachine(
            configuration: .init(
                routes: routes,
                extraRoutes: extraRoutes,
                security: security,
                maxBodyBytes: broker.configuration.maxBodyBytes,
                errorHandler: broker.configuration.errorHandler
            )
        )
        self.admission = admission ?? AdmissionControl(limits: security.limits)
        // The defaults are valid: this cannot throw.
        self.idempotency = idempotency ?? (try! IdempotencyStore())
        self.logger = logger
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.start(context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.stopTimer()
    }

    public func channelActive(context: ChannelHandlerContext) {
        self.start(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        self.stopTimer()
        context.fireChannelInactive()
    }

    private func start(context: ChannelHandlerContext) {
        guard !self.started else { return }
        self.started = true
        self.perform(self.machine.connectionStarted(), context: context)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a closing response, or behind a `GET /connect` (the pipelining handler hands over
        // what it held when the stream removes it): dropped, never processed.
        if self.machine.isDone { return }
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.version = head.version
            let request = HTTPRequest(head)
            self.perform(self.machine.receivedHead(request, keepAlive: head.isKeepAlive), context: context)
        case .body(let chunk):
            self.perform(self.machine.receivedBody(chunk), context: context)
        case .end:
            self.perform(self.machine.receivedEnd(), context: context)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        self.readsSinceResponse &+= 1
        context.fireChannelReadComplete()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.machine.isDone { return }
        if let parserError = error as? HTTPParserError {
            let refusal: BrokerError =
                parserError == .headerOverflow
                ? .headersTooLarge(limit: self.security.limits.maxHeaderBytes)
                : .malformedRequest("\(parserError)")
            let action = self.machine.receivedMalformedRequest(refusal)
            if case .close = action.effect { self.logConnectionError(error, context: context) }
            self.perform(action, context: context)
            return
        }
        self.logConnectionError(error, context: context)
        self.perform(self.machine.connectionFailed(), context: context)
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

    // MARK: Actions

    private func perform(_ action: BrokerRequestStateMachine.Action, context: ChannelHandlerContext) {
        switch action.deadline {
        case .unchanged: break
        case .cancel: self.cancelDeadline()
        case .head(let timeout), .body(let timeout): self.arm(timeout, context: context)
        }
        switch action.effect {
        case .none:
            break
        case .sendContinue:
            let head = HTTPResponseHead(version: self.version, status: .continue)
            context.writeAndFlush(self.wrapOutboundOut(.head(head)), promise: nil)
        case .respond(let response):
            self.write(response, context: context)
        case .publish(let event, let request, let body, let key):
            self.publish(event, request, body: body, idempotencyKey: key, context: context)
        case .startStream(let head, let request, let token, let cors):
            self.startStream(head: head, request: request, token: token, cors: cors, context: context)
        case .close:
            context.close(promise: nil)
        }
    }

    private func arm(_ timeout: Duration, context: ChannelHandlerContext) {
        let deadline = context.eventLoop.now + TimeAmount(timeout)
        self.deadline = deadline
        if let timer = self.timer {
            if timer.at <= deadline { return }  // it fires first, and waits again
            timer.task.cancel()
        }
        self.schedule(at: deadline, context: context)
    }

    private func schedule(at deadline: NIODeadline, context: ChannelHandlerContext) {
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timerFired(at: deadline, context: context)
        }
        self.timer = (task, deadline)
    }

    private func timerFired(at scheduled: NIODeadline, context: ChannelHandlerContext) {
        // A task cancelled when it was already due may still run (NIO takes the due tasks of a
        // tick out of its queue first): only the timer in place counts.
        guard self.timer?.at == scheduled else { return }
        self.timer = nil
        guard let deadline = self.deadline else { return }
        if deadline > context.eventLoop.now {
            self.schedule(at: deadline, context: context)
            return
        }
        self.deadline = nil
        let action = self.machine.deadlinePassed()
        if case .close = action.effect {
            // An idle keep-alive connection (or a refused request trickling in) closed quietly.
            self.logger.debug(
                "connection closed: no request within the header timeout",
                metadata: [
                    "remote": "\(self.remoteAddress(context: context) ?? "-")",
                    "readsSinceLastResponse": "\(self.readsSinceResponse)",
                ]
            )
        }
        self.perform(action, context: context)
    }

    /// No deadline in force; a timer still scheduled finds none when it fires.
    private func cancelDeadline() {
        self.deadline = nil
    }

    private func stopTimer() {
        self.timer?.task.cancel()
        self.timer = nil
        self.deadline = nil
    }

    // MARK: Publishing

    /// Publishes a complete `POST /broadcast`: at once on a stand-alone broker, when the shared log
    /// answers on a cluster node. With an `Idempotency-Key`, a retry gets the first answer and
    /// publishes nothing; one arriving while the first is in flight waits for it.
    private func publish(
        _ event: Event,
        _ request: BroadcastRequest,
        body: ByteBuffer,
        idempotencyKey: String?,
        context: ChannelHandlerContext
    ) {
        let event = event.from(self.remoteAddress(context: context))
        let broker = self.broker
        let key = idempotencyKey.map {
            IdempotencyKey(key: $0, fingerprint: IdempotencyStore.fingerprint(of: request, body: body))
        }
        if let key {
            switch self.idempotency.begin(key, on: context.eventLoop) {
            case .proceed:
                break
            case .replay(let delivery):
                self.perform(self.machine.published(.success(delivery), replayed: true), context: context)
                return
            case .mismatch(let error):
                self.perform(self.machine.published(.failure(error), replayed: false), context: context)
                return
            case .wait(let first):
                self.answerLater(first.map { result in result.map { ($0, true) } }, context: context)
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
                self.perform(self.machine.published(result, replayed: false), context: context)
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
        self.answerLater(outcome, context: context)
    }

    /// The peer's address as events show it; formatted once per connection (it was 2% of a one-event
    /// publish).
    private func remoteAddress(context: ChannelHandlerContext) -> String? {
        if let described = self.describedRemoteAddress { return described }
        let described = context.channel.remoteAddress.map(Self.describe)
        self.describedRemoteAddress = .some(described)
        return described
    }

    /// Answers the request being published when `outcome` completes; nothing else is read meanwhile.
    private func answerLater(_ outcome: EventLoopFuture<Result<(Delivery, Bool), BrokerError>>, context: ChannelHandlerContext) {
        let loopBoundSelf = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        outcome.whenSuccess { result in
            let (handler, context) = loopBoundSelf.value
            guard context.channel.isActive else { return }  // the connection went away
            let action =
                switch result {
                case .success(let (delivery, replayed)): handler.machine.published(.success(delivery), replayed: replayed)
                case .failure(let error): handler.machine.published(.failure(error), replayed: false)
                }
            handler.perform(action, context: context)
        }
    }

    // MARK: Streaming

    private func startStream(
        head: HTTPRequest,
        request: ConnectRequest,
        token: SubscriberToken?,
        cors: HTTPFields,
        context: ChannelHandlerContext
    ) {
        let clientID = request.clientID ?? Broker.generateClientID()
        do throws(BrokerError) {
            try self.broker.checkAdmission(of: clientID)
            try self.admission.admit(clientID)
        } catch {
            self.perform(self.machine.streamRefused(error), context: context)
            return
        }
        let admission = self.admission
        context.channel.closeFuture.whenComplete { _ in admission.release(clientID) }
        self.machine.streamStarted()
        switch self.framing {
        case .http1:
            self.handOver(
                to: HTTP1Framing.self, head: head, request: request, clientID: clientID, token: token, cors: cors,
                context: context
            )
        case .http2(let count):
            self.handOver(
                to: HTTP2Framing.self, head: head, request: request, clientID: clientID, token: token, cors: cors,
                connectionSubscribers: count, context: context
            )
        }
    }

    /// Puts a stream handler in this handler's place and registers it with the broker.
    private func handOver<Framing: SubscriberFraming>(
        to framing: Framing.Type,
        head: HTTPRequest,
        request: ConnectRequest,
        clientID: String,
        token: SubscriberToken?,
        cors: HTTPFields,
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
                remoteAddress: self.remoteAddress(context: context),
                userAgent: head.headerFields[.userAgent],
                extraHeaders: cors,
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

    /// What an error handler gets for a request refused before its head was parsed (malformed, too
    /// large, too slow): `GET` with an empty path.
    public static let placeholderRequest = HTTPRequest(method: .get, scheme: nil, authority: nil, path: "")

    /// Writes a response the state machine built, logging and counting it if it is a refusal.
    private func write(_ response: BrokerRequestStateMachine.Response, context: ChannelHandlerContext) {
        if let (error, request) = response.refusal {
            self.broker.recordRefusal(status: error.status)
            self.logger.info(
                "request refused",
                metadata: [
                    "method": "\(request.map { $0.method.rawValue } ?? "-")",
                    "uri": "\(request.map { self.redacted($0.path ?? "") } ?? "-")",
                    "status": "\(error.status.code)",
                    "error": "\(error)",
                    "remote": "\(self.remoteAddress(context: context) ?? "-")",
                ]
            )
        }
        self.readsSinceResponse = 0
        let target =
            response.unsolicited
            ? ((try? context.pipeline.syncOperations.context(handlerType: HTTPServerPipelineHandler.self)) ?? context)
            : context
        let head = HTTPResponseHead(version: .http1_1, response.head)
        target.write(self.wrapOutboundOut(.head(head)), promise: nil)
        if response.body.readableBytes > 0 {
            target.write(self.wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        if response.keepAlive {
            target.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            target.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// The URI with the value of the token query parameter hidden, for logs.
    private func redacted(_ uri: String) -> String {
        let name = self.security.subscriberTokens?.queryParameter ?? "token"
        guard let query = uri.firstIndex(of: "?") else { return uri }
        let pairs = uri[uri.index(after: query)...].split(separator: "&", omittingEmptySubsequences: false).map { pair in
            pair.hasPrefix("\(name)=") ? "\(name)=<redacted>" : String(pair)
        }
        return uri[...query] + pairs.joined(separator: "&")
    }
}
