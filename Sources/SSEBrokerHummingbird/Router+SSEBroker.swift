import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import SSEBroker

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
    /// - Parameters:
    ///   - broker: the broker to serve; it may be served by other servers at the same time.
    ///   - connect: the subscribers' path.
    ///   - broadcast: the producers' path.
    @discardableResult
    public func addSSEBroker(_ broker: Broker, connect: RouterPath = "/connect", broadcast: RouterPath = "/broadcast") -> Self {
        self.get(connect) { request, context in
            BrokerEndpoints.connect(request, channel: context.channel, logger: context.logger, broker: broker)
        }
        self.post(broadcast) { request, context in
            await BrokerEndpoints.broadcast(request, logger: context.logger, broker: broker)
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
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
    static let accelBuffering = HTTPField.Name("X-Accel-Buffering")!
    static let clientIDHeader = HTTPField.Name("X-SSE-Client-ID")!

    static func connect(_ request: Request, channel: any Channel, logger: Logger, broker: Broker) -> Response {
        let connect: ConnectRequest
        let clientID: String
        do throws(BrokerError) {
            connect = try ConnectRequest(uri: request.uri.description, lastEventIDHeader: request.headers[Self.lastEventID])
            clientID = connect.clientID ?? Broker.generateClientID()
            // A ban or a shutdown gets a plain response, not a stream (204 stops an EventSource).
            try broker.checkAdmission(of: clientID)
        } catch {
            return self.refusal(error, request: request, logger: logger, broker: broker)
        }
        let remoteAddress = channel.remoteAddress.map(Self.describe)
        let userAgent = request.headers[.userAgent]
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/event-stream; charset=utf-8",
                .cacheControl: "no-cache",
                Self.accelBuffering: "no",
                Self.clientIDHeader: clientID,
            ],
            body: ResponseBody { writer in
                let transport = ResponseBodyTransport(channel: channel)
                try await transport.stream(into: &writer) { transport throws(BrokerError) in
                    try broker.subscribe(
                        clientID: clientID,
                        lastEventID: connect.lastEventID,
                        remoteAddress: remoteAddress,
                        userAgent: userAgent,
                        transport: transport
                    )
                }
            }
        )
    }

    static func broadcast(_ request: Request, logger: Logger, broker: Broker) async -> Response {
        let limit = broker.configuration.maxBodyBytes
        let publish: BroadcastRequest
        do throws(BrokerError) {
            publish = try BroadcastRequest(uri: request.uri.description)
            if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
                throw .bodyTooLarge(limit: limit)  // refused before reading a byte of it
            }
        } catch {
            return self.refusal(error, request: request, logger: logger, broker: broker)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            return self.refusal(.bodyTooLarge(limit: limit), request: request, logger: logger, broker: broker)
        } catch {
            return self.refusal(.malformedRequest("\(error)"), request: request, logger: logger, broker: broker)
        }
        do throws(BrokerError) {
            let delivery = try await publish.publish(body: body, on: broker)
            return Response(
                status: .accepted,
                headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: BroadcastRequest.responseBody(for: delivery))
            )
        } catch {
            return self.refusal(error, request: request, logger: logger, broker: broker)
        }
    }

    /// A refusal through the broker's error handler, exactly as ``SSEBrokerServer`` answers it.
    static func refusal(_ error: BrokerError, request: Request, logger: Logger, broker: Broker) -> Response {
        broker.recordRefusal(error)
        logger.info(
            "request refused",
            metadata: [
                "method": "\(request.method)", "uri": "\(request.uri)", "status": "\(error.status.code)", "error": "\(error)",
            ]
        )
        if case .banned = error {
            return Response(status: .noContent)
        }
        var headers = HTTPHeaders()
        for field in request.headers {
            headers.add(name: field.name.rawName, value: field.value)
        }
        let head = HTTPRequestHead(
            version: .http1_1,
            method: HTTPMethod(rawValue: request.method.rawValue),
            uri: request.uri.description,
            headers: headers
        )
        var response =
            broker.configuration.errorHandler?(head, error.status, error)
            ?? HTTPErrorResponse.plainText(status: error.status, error: error)
        if case .methodNotAllowed(_, let allowed) = error, !response.headers.contains(name: "allow") {
            response.headers.add(name: "Allow", value: allowed.map(\.rawValue).joined(separator: ", "))
        }
        var fields = HTTPFields()
        for (name, value) in response.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        return Response(
            status: HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase),
            headers: fields,
            body: ResponseBody(byteBuffer: response.body)
        )
    }

    private static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
