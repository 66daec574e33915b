import NIOHTTP1
import SSEBroker

/// A request refused by ``ServerSecurity``'s credential checks: the error to answer, and the
/// `WWW-Authenticate` challenge to send with a `401`.
public struct SecurityRefusal: Error, Sendable {
    /// What to answer (``BrokerError/unauthorized(_:)`` or ``BrokerError/forbidden(_:)``).
    public var error: BrokerError
    /// The `WWW-Authenticate` value; `error="invalid_token"` when a credential was presented but refused.
    public var challenge: String

    static let realm = #"Bearer realm="sse-broker""#
    static let invalidToken = #"Bearer realm="sse-broker", error="invalid_token""#
}

extension ServerSecurity {
    /// Checks the `Authorization: Bearer` token of a `POST /broadcast` against ``publishToken``; any
    /// request passes without one. Used by ``BrokerHTTPHandler`` and by the Hummingbird adapter.
    public func authenticatePublisher(_ headers: HTTPHeaders) throws(SecurityRefusal) {
        guard let token = self.publishToken else { return }
        guard let presented = bearerToken(in: headers) else {
            throw SecurityRefusal(
                error: .unauthorized("publishing needs an Authorization: Bearer token"), challenge: SecurityRefusal.realm
            )
        }
        guard token.accepts(presented) else {
            throw SecurityRefusal(
                error: .unauthorized("the bearer token is not valid for publishing"), challenge: SecurityRefusal.invalidToken
            )
        }
    }

    /// With ``subscriberTokens`` on, a `GET /connect` needs a valid token, `?id=` (if given) must be
    /// its subject, and the subject becomes the request's client id.
    /// - Returns: the verified token; `nil` when subscriber tokens are off.
    public func authenticateSubscriber(_ head: HTTPRequestHead, request: inout ConnectRequest) throws(SecurityRefusal)
        -> SubscriberToken?
    {
        guard let verifier = self.subscriberTokens else { return nil }
        let query: QueryParameters
        do {
            query = try QueryParameters(uri: head.uri)
        } catch {
            throw SecurityRefusal(error: error, challenge: SecurityRefusal.realm)
        }
        guard let credential = verifier.credential(in: head, query: query) else {
            throw SecurityRefusal(
                error: .unauthorized(
                    "subscribing needs a token: an Authorization: Bearer header, the \(verifier.cookieName) cookie "
                        + "or the \(verifier.queryParameter) query parameter"
                ),
                challenge: SecurityRefusal.realm
            )
        }
        let token: SubscriberToken
        do {
            token = try verifier.verify(credential)
        } catch {
            throw SecurityRefusal(error: .unauthorized("\(error)"), challenge: SecurityRefusal.invalidToken)
        }
        if let requested = request.clientID, requested != token.subject {
            throw SecurityRefusal(
                error: .forbidden("the token is for client id \"\(token.subject)\", not \"\(requested)\""),
                challenge: SecurityRefusal.realm
            )
        }
        request.clientID = token.subject
        return token
    }
}
