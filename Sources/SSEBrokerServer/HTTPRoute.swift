import HTTPTypes
import NIOCore
import SSEBroker

/// One more route for ``BrokerServer`` (or ``BrokerHTTPHandler``) beside the broker's endpoints: a
/// page, a health check, a metrics exporter. This is how the executable adds `GET /metrics` without
/// the library depending on a metrics backend.
///
/// ```swift
/// let server = BrokerServer(broker: broker, extraRoutes: [
///     .browserPage("/"),
///     .health("/healthz", broker: broker),
///     .get("/version") { _ in .text("1.0\n") },
/// ])
/// ```
///
/// The handler runs on the connection's event loop, so it must not block; a request body is read
/// and dropped. The same path with another method gets `405` with `Allow`; an unknown path `404`,
/// both through the broker's error handler.
public struct HTTPRoute: Sendable {
    /// Answers one request (of either protocol: its method, path with the query, and header fields).
    public typealias Handler = @Sendable (_ request: HTTPRequest) -> HTTPErrorResponse

    /// The method served; the same path may have a route per method.
    public var method: HTTPRequest.Method
    /// The path, matched exactly (the query string is not part of it).
    public var path: String
    /// Builds the response, on the connection's event loop.
    public var handler: Handler

    /// - Parameters:
    ///   - method: the method served.
    ///   - path: the exact path.
    ///   - handler: builds the response; it must not block.
    public init(_ method: HTTPRequest.Method, _ path: String, handler: @escaping Handler) {
        self.method = method
        self.path = path
        self.handler = handler
    }

    /// A `GET` route.
    public static func get(_ path: String, handler: @escaping Handler) -> HTTPRoute {
        HTTPRoute(.get, path, handler: handler)
    }

    /// The embedded browser page (``BrowserPage``): an `EventSource` subscriber and a publish form
    /// for the broker's endpoints at `routes`.
    public static func browserPage(_ path: String = "/", routes: BrokerRoutes = BrokerRoutes()) -> HTTPRoute {
        let page = ByteBuffer(string: BrowserPage.html(routes: routes))
        return .get(path) { _ in
            HTTPErrorResponse(
                status: .ok,
                headerFields: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
                body: page
            )
        }
    }

    /// A health check: `200 {"status":"ok","clients":N,"lastEventId":"N"}` while the broker runs,
    /// `503 {"status":"shutting down"}` once it is shutting down.
    public static func health(_ path: String = "/healthz", broker: Broker) -> HTTPRoute {
        .get(path) { _ in
            guard !broker.isShuttingDown else {
                return .json(#"{"status":"shutting down"}"# + "\n", status: .serviceUnavailable)
            }
            return .json(#"{"status":"ok","clients":\#(broker.connectionCount),"lastEventId":"\#(broker.lastEventID)"}"# + "\n")
        }
    }
}

extension HTTPErrorResponse {
    /// A `text/plain` response.
    public static func text(_ text: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8")
        -> HTTPErrorResponse
    {
        HTTPErrorResponse(status: status, headerFields: [.contentType: contentType], body: ByteBuffer(string: text))
    }

    /// An `application/json` response (the text is sent as it is).
    public static func json(_ json: String, status: HTTPResponse.Status = .ok) -> HTTPErrorResponse {
        HTTPErrorResponse(status: status, headerFields: [.contentType: "application/json"], body: ByteBuffer(string: json))
    }
}
