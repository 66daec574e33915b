import HTTPTypes

/// Everything the broker refuses, with a message a person can act on.
public enum BrokerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `broadcast(_:to:)` or `kick` named a client id with no open connection.
    case unknownClient(String)
    /// An event type that would break the wire format or is unreasonably long.
    case invalidEventType(String)
    /// A client id that would break the wire format, the console or logs.
    case invalidClientID(String)
    /// A malformed query string or request parameter.
    case invalidParameter(String)
    /// A request body over `maxBodyBytes`.
    case bodyTooLarge(limit: Int)
    /// A request body that is not UTF-8 (SSE streams are always UTF-8).
    case invalidUTF8
    /// The path exists but not for this method.
    case methodNotAllowed(method: HTTPRequest.Method, allowed: [HTTPRequest.Method])
    /// No endpoint at this path.
    case notFound(path: String)
    /// The HTTP request could not be parsed.
    case malformedRequest(String)
    /// A configuration value out of range.
    case invalidConfiguration(String)
    /// The client id is banned; its `EventSource` is told to stop reconnecting.
    case banned(String)
    /// The broker is shutting down and accepts nothing new.
    case shuttingDown
    /// The request carries no valid credentials (a missing or wrong bearer token, an invalid or
    /// expired subscriber token). Answered with `401` and a `WWW-Authenticate` challenge.
    case unauthorized(String)
    /// The credentials are valid but do not allow this request (a token for another client id, an
    /// origin that is not allowed).
    case forbidden(String)
    /// The server already streams to its maximum number of clients. Answered with `503` and `Retry-After`.
    case tooManyClients(limit: Int)
    /// The client id already has its maximum number of connections. Answered with `429` and `Retry-After`.
    case tooManyConnections(clientID: String, limit: Int)
    /// The request line and headers are larger than the limit.
    case headersTooLarge(limit: Int)
    /// The request (its head or its body) did not arrive in time.
    case requestTimeout(String)
    /// The broker cannot accept the event now: in cluster mode, its node cannot reach the shared
    /// log (the event would not be durable or seen by the other nodes). Answered with `503`.
    case unavailable(String)
    /// The broker has more accepted events waiting for delivery than its bounds allow
    /// (``BrokerConfiguration/maxQueuedEvents``, ``BrokerConfiguration/maxQueuedBytes``) and the
    /// publisher waited ``BrokerConfiguration/overloadWait`` in vain. Answered with `503` and
    /// `Retry-After`: the event was not published.
    case overloaded(String)
    /// New event streams arrive faster than the server's connect rate allows. Answered with `503`
    /// and `Retry-After`.
    case connectRateExceeded(perSecond: Int)
    /// An `Idempotency-Key` already used with a different request (another type, target or body).
    /// Answered with `422`.
    case idempotencyKeyReused(String)

    public var description: String {
        switch self {
        case .unknownClient(let id):
            return "no client is connected with id \"\(id)\""
        case .invalidEventType(let reason):
            return "invalid event type: \(reason)"
        case .invalidClientID(let reason):
            return "invalid client id: \(reason)"
        case .invalidParameter(let reason):
            return reason
        case .bodyTooLarge(let limit):
            return "request body is larger than the limit of \(limit) bytes"
        case .invalidUTF8:
            return "request body is not valid UTF-8 (server-sent event streams are UTF-8)"
        case .methodNotAllowed(let method, let allowed):
            return "method \(method.rawValue) is not allowed here; use \(allowed.map(\.rawValue).joined(separator: ", "))"
        case .notFound(let path):
            return "no endpoint at \(path)"
        case .malformedRequest(let reason):
            return "malformed HTTP request: \(reason)"
        case .invalidConfiguration(let reason):
            return "invalid configuration: \(reason)"
        case .banned(let id):
            return "client id \"\(id)\" is banned"
        case .shuttingDown:
            return "the broker is shutting down"
        case .unauthorized(let reason):
            return reason
        case .forbidden(let reason):
            return reason
        case .tooManyClients(let limit):
            return "the server already serves its maximum of \(limit) clients; retry later"
        case .tooManyConnections(let id, let limit):
            return "client id \"\(id)\" already has its maximum of \(limit) connections"
        case .headersTooLarge(let limit):
            return "the request line and headers are larger than the limit of \(limit) bytes"
        case .requestTimeout(let reason):
            return reason
        case .unavailable(let reason):
            return reason
        case .overloaded(let reason):
            return reason
        case .connectRateExceeded(let rate):
            return "new event streams arrive faster than this server accepts them (\(rate) per second); retry later"
        case .idempotencyKeyReused(let reason):
            return reason
        }
    }

    /// The HTTP status this error is answered with.
    public var status: HTTPResponse.Status {
        switch self {
        case .unknownClient, .notFound: return .notFound
        case .invalidEventType, .invalidClientID, .invalidParameter, .invalidUTF8, .malformedRequest:
            return .badRequest
        case .bodyTooLarge: return .contentTooLarge
        case .methodNotAllowed: return .methodNotAllowed
        case .invalidConfiguration: return .internalServerError
        case .banned: return .noContent
        case .shuttingDown, .tooManyClients, .unavailable, .overloaded, .connectRateExceeded: return .serviceUnavailable
        case .unauthorized: return .unauthorized
        case .forbidden: return .forbidden
        case .tooManyConnections: return .tooManyRequests
        case .headersTooLarge: return .requestHeaderFieldsTooLarge
        case .requestTimeout: return .requestTimeout
        case .idempotencyKeyReused: return .unprocessableContent
        }
    }
}
