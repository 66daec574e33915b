import HTTPTypes
import SSEBroker

/// Cross-origin resource sharing for browser pages on other origins.
///
/// With an explicit list, a listed `Origin` is echoed in `Access-Control-Allow-Origin` (with
/// `Vary: Origin`) and credentials — the token cookie — are allowed; with `*`, any origin may read
/// but never with credentials (browsers refuse `*` with credentials, rightly). A request whose
/// `Origin` is not allowed is refused with `403`, so a page elsewhere cannot even make a simple
/// `POST /broadcast`. Preflight `OPTIONS` requests for both endpoints are answered with `204`.
public struct CORSPolicy: Sendable, Equatable {
    /// `nil` means any origin (`*`).
    public let allowedOrigins: Set<String>?
    /// Whether `Access-Control-Allow-Credentials: true` is sent; only ever with an explicit list.
    public let allowsCredentials: Bool
    /// How long a browser may cache a preflight answer. Default 10 min.
    public var maxAge: Duration = .seconds(600)

    /// - Parameters:
    ///   - allowedOrigins: `scheme://host[:port]` origins, or `["*"]` for any.
    ///   - allowCredentials: send `Access-Control-Allow-Credentials: true` (explicit origins only).
    /// - Throws: ``BrokerError/invalidConfiguration(_:)`` for an empty list, a malformed origin, `*`
    ///   mixed with origins, or credentials with `*`.
    public init(allowedOrigins: [String], allowCredentials: Bool = true) throws(BrokerError) {
        guard !allowedOrigins.isEmpty else { throw .invalidConfiguration("no CORS origin given") }
        if allowedOrigins.contains("*") {
            guard allowedOrigins.count == 1 else { throw .invalidConfiguration("CORS origin \"*\" cannot be combined with others") }
            self.allowedOrigins = nil
            self.allowsCredentials = false
            return
        }
        var origins = Set<String>()
        for origin in allowedOrigins {
            let normalized = Self.normalize(origin)
            guard normalized.hasPrefix("http://") || normalized.hasPrefix("https://"),
                !normalized.dropFirst(8).contains("/"), !normalized.contains(where: { $0.isWhitespace || $0.isNewline })
            else {
                throw .invalidConfiguration("CORS origin \"\(origin)\" is not of the form scheme://host[:port]")
            }
            origins.insert(normalized)
        }
        self.allowedOrigins = origins
        self.allowsCredentials = allowCredentials
    }

    private static func normalize(_ origin: String) -> String {
        var text = origin.lowercased()
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// Whether a request from `origin` is allowed.
    public func allows(_ origin: String) -> Bool {
        guard let allowedOrigins else { return true }
        return allowedOrigins.contains(Self.normalize(origin))
    }

    /// The headers for an actual (non-preflight) response to an allowed `origin`.
    public func responseHeaders(for origin: String) -> HTTPFields {
        var headers = HTTPFields()
        if self.allowedOrigins == nil {
            headers[.accessControlAllowOrigin] = "*"
        } else {
            headers[.accessControlAllowOrigin] = origin
            headers[.vary] = "Origin"
            if self.allowsCredentials {
                headers[.accessControlAllowCredentials] = "true"
            }
        }
        headers[.accessControlExposeHeaders] = "X-SSE-Client-ID, Retry-After, WWW-Authenticate, Idempotent-Replayed"
        return headers
    }

    /// The headers of a `204` answer to a preflight from an allowed `origin` for `methods`.
    public func preflightHeaders(for origin: String, methods: [HTTPRequest.Method]) -> HTTPFields {
        var headers = self.responseHeaders(for: origin)
        headers[.accessControlAllowMethods] = (methods + [.options]).map(\.rawValue).joined(separator: ", ")
        // Last-Event-ID: a reconnecting EventSource sends it; Authorization: tokens from fetch-based clients;
        // Idempotency-Key: retries from fetch-based producers.
        headers[.accessControlAllowHeaders] = "Authorization, Content-Type, Last-Event-ID, Idempotency-Key"
        headers[.accessControlMaxAge] = String(self.maxAge.components.seconds)
        return headers
    }
}
