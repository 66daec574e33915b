import HTTPTypes
import SSEBroker

extension HTTPErrorResponse {
    /// The response to a refused request, as every server in this package answers it: built by
    /// `errorHandler` (or ``plainText(status:error:)``), `204` for a banned id (how a server tells an
    /// `EventSource` to stop reconnecting), plus the headers the status needs when the handler
    /// left them out: `Allow` for `405`, `WWW-Authenticate` for `401`, `Retry-After` for `503` and
    /// `429`.
    /// - Parameters:
    ///   - request: the refused request; `nil` before its head was parsed (the error handler gets
    ///     ``BrokerHTTPHandler/placeholderRequest``).
    ///   - challenge: the `WWW-Authenticate` of a `401` (``SecurityRefusal/challenge``).
    ///   - limits: where `Retry-After` comes from: 1 s for overload and connect rates (they clear
    ///     within a second), ``ServerLimits/retryAfter`` for a full server or a shutdown.
    public static func refusal(
        _ error: BrokerError,
        to request: HTTPRequest?,
        errorHandler: HTTPErrorHandler?,
        challenge: String = SecurityRefusal.realm,
        limits: ServerLimits = ServerLimits()
    ) -> HTTPErrorResponse {
        let status = error.status
        if case .banned = error { return HTTPErrorResponse(status: .noContent) }
        var response =
            errorHandler?(request ?? BrokerHTTPHandler.placeholderRequest, status, error)
            ?? HTTPErrorResponse.plainText(status: status, error: error)
        if case .methodNotAllowed(_, let allowed) = error, response.headerFields[.allow] == nil {
            response.headerFields[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
        }
        if status == .unauthorized, response.headerFields[.wwwAuthenticate] == nil {
            response.headerFields[.wwwAuthenticate] = challenge
        }
        if status == .serviceUnavailable || status == .tooManyRequests, response.headerFields[.retryAfter] == nil {
            let seconds: Int64 =
                switch error {
                case .overloaded, .connectRateExceeded: 1
                default: limits.retryAfterSeconds
                }
            response.headerFields[.retryAfter] = String(seconds)
        }
        return response
    }
}
