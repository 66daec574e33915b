import Logging
import NIOCore
import NIOHTTP1
import SSEBroker

/// Serves the broker's two endpoints on an HTTP/1.1 channel: `GET /connect` (the event stream) and
/// `POST /broadcast`, plus any ``HTTPRoute``s you add (a page, metrics, a health check); every other
/// path is answered `404` through the error handler. Mount it in any NIO HTTP server pipeline after `HTTPResponseEncoder` and
/// `ByteToMessageHandler(HTTPRequestDecoder())`; ``BrokerServer`` does exactly that.
///
/// When a subscriber connects, the handler takes the HTTP codecs out of the pipeline and hands the
/// channel to a raw stream handler: from then on the connection is an event stream.
public final class BrokerHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        /// A `GET /connect` whose `.end` has not arrived yet.
        case connecting(HTTPRequestHead, ConnectRequest)
        case readingBody(HTTPRequestHead, BroadcastRequest, ByteBuffer)
        /// One of the extra routes; its body (if any) is dropped and it is answered at `.end`.
        case routing(HTTPRequestHead, HTTPRoute)
        /// Answered already (an error); the rest of the request is read and dropped.
        case discarding
        case streaming
    }

    private let broker: Broker
    private let routes: BrokerRoutes
    private let extraRoutes: [HTTPRoute]
    private let logger: Logger
    private var state = State.idle

    /// - Parameters:
    ///   - broker: the broker to serve.
    ///   - routes: the paths of the endpoints.
    ///   - extraRoutes: more routes served on the same connections; the broker's paths take precedence.
    ///   - logger: where refused requests are logged (at `info`).
    public init(
        broker: Broker,
        routes: BrokerRoutes = BrokerRoutes(),
        extraRoutes: [HTTPRoute] = [],
        logger: Logger = Logger(label: "sse.http")
    ) {
        self.broker = broker
        self.routes = routes
        self.extraRoutes = extraRoutes
        self.logger = logger
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
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
        if case .streaming = self.state { return }
        if error is HTTPParserError {
            // No request head to hand to the error handler: answer plainly and hang up.
            let error = BrokerError.malformedRequest("\(error)")
            let response = HTTPErrorResponse.plainText(status: .badRequest, error: error)
            self.broker.recordRefusal(error)
            self.write(response, keepAlive: false, context: context)
            self.logger.debug("malformed request", metadata: ["error": "\(error)"])
            return
        }
        context.close(promise: nil)
    }

    // MARK: Requests

    private func received(head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        do throws(BrokerError) {
            switch path {
            case self.routes.connect:
                guard head.method == .GET else { throw .methodNotAllowed(method: head.method, allowed: [.GET]) }
                self.state = .connecting(head, try ConnectRequest(head: head))
            case self.routes.broadcast:
                guard head.method == .POST else { throw .methodNotAllowed(method: head.method, allowed: [.POST]) }
                let request = try BroadcastRequest(head: head)
                let limit = self.broker.configuration.maxBodyBytes
                if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limit {
                    // Refuse before reading a byte of it.
                    self.refuse(head, .bodyTooLarge(limit: limit), context: context, close: true)
                    return
                }
                if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                    context.writeAndFlush(
                        self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                        promise: nil
                    )
                }
                let capacity = min(head.headers.first(name: "content-length").flatMap(Int.init) ?? 0, limit)
                self.state = .readingBody(head, request, context.channel.allocator.buffer(capacity: capacity))
            default:
                let candidates = self.extraRoutes.filter { $0.path == path }
                guard !candidates.isEmpty else { throw .notFound(path: path) }
                guard let route = candidates.first(where: { $0.method == head.method }) else {
                    throw .methodNotAllowed(method: head.method, allowed: candidates.map(\.method))
                }
                self.state = .routing(head, route)
            }
        } catch {
            self.refuse(head, error, context: context, close: false)
        }
    }

    private func received(chunk: ByteBuffer, context: ChannelHandlerContext) {
        guard case .readingBody(let head, let request, var body) = self.state else { return }
        let limit = self.broker.configuration.maxBodyBytes
        guard body.readableBytes + chunk.readableBytes <= limit else {
            self.refuse(head, .bodyTooLarge(limit: limit), context: context, close: true)
            return
        }
        self.state = .discarding  // drop the reference so the append does not copy
        var chunk = chunk
        body.writeBuffer(&chunk)
        self.state = .readingBody(head, request, body)
    }

    private func receivedEnd(context: ChannelHandlerContext) {
        switch self.state {
        case .connecting(let head, let request):
            self.startStream(head: head, request: request, context: context)
        case .readingBody(let head, let request, let body):
            self.state = .idle
            do throws(BrokerError) {
                let delivery = try request.publish(body: body, on: self.broker)
                var headers = HTTPHeaders([("Content-Type", "application/json")])
                headers.add(name: "Connection", value: head.isKeepAlive ? "keep-alive" : "close")
                self.write(
                    HTTPErrorResponse(status: .accepted, headers: headers, body: BroadcastRequest.responseBody(for: delivery)),
                    keepAlive: head.isKeepAlive,
                    context: context
                )
            } catch {
                self.refuse(head, error, context: context, close: false)
                self.state = .idle
            }
        case .routing(let head, let route):
            self.state = .idle
            var response = route.handler(head)
            response.headers.replaceOrAdd(name: "Connection", value: head.isKeepAlive ? "keep-alive" : "close")
            self.write(response, keepAlive: head.isKeepAlive, context: context)
        case .discarding:
            self.state = .idle
        case .idle, .streaming:
            break
        }
    }

    // MARK: Streaming

    private func startStream(head: HTTPRequestHead, request: ConnectRequest, context: ChannelHandlerContext) {
        let clientID = request.clientID ?? Broker.generateClientID()
        do throws(BrokerError) {
            try self.broker.checkAdmission(of: clientID)
        } catch {
            self.refuse(head, error, context: context, close: false)
            self.state = .idle
            return
        }
        self.state = .streaming
        let pipeline = context.pipeline.syncOperations
        let stream = SubscriberChannelHandler(eventLoop: context.eventLoop)
        do {
            // The stream is raw bytes from here on: take the HTTP codecs out (they would frame every
            // event as a chunk) and put the stream handler in our place.
            try pipeline.addHandler(stream, position: .after(self))
            for handler in try Self.httpHandlers(in: pipeline) {
                pipeline.removeHandler(handler, promise: nil)
            }
            pipeline.removeHandler(self, promise: nil)
            try stream.start(
                broker: self.broker,
                clientID: clientID,
                request: request,
                remoteAddress: context.channel.remoteAddress.map(Self.describe),
                userAgent: head.headers.first(name: "user-agent")
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

    private static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    // MARK: Responses

    private func refuse(_ head: HTTPRequestHead, _ error: BrokerError, context: ChannelHandlerContext, close: Bool) {
        self.broker.recordRefusal(error)
        self.logger.info(
            "request refused",
            metadata: ["method": "\(head.method)", "uri": "\(head.uri)", "status": "\(error.status.code)", "error": "\(error)"]
        )
        var response: HTTPErrorResponse
        if case .banned = error {
            // 204 is how a server tells an EventSource to stop reconnecting; it carries no body.
            response = HTTPErrorResponse(status: .noContent)
        } else if let handler = self.broker.configuration.errorHandler {
            response = handler(head, error.status, error)
        } else {
            response = HTTPErrorResponse.plainText(status: error.status, error: error)
        }
        if case .methodNotAllowed(_, let allowed) = error, !response.headers.contains(name: "allow") {
            response.headers.add(name: "Allow", value: allowed.map(\.rawValue).joined(separator: ", "))
        }
        let keepAlive = head.isKeepAlive && !close
        self.state = close ? .streaming : .discarding  // .streaming: ignore whatever else arrives
        self.write(response, keepAlive: keepAlive, context: context)
    }

    private func write(_ response: HTTPErrorResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = response.headers
        if response.status != .noContent {
            headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
        }
        if !keepAlive {
            headers.replaceOrAdd(name: "Connection", value: "close")
        }
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        if response.body.readableBytes > 0 && response.status != .noContent {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
