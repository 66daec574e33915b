import HTTPTypes
import SSEBroker

/// A request refused by ``ServerSecurity``'s credential checks: the error to answer, and the
/// `WWW-Authenticate` challenge to send with a `401`.
public struct SecurityRefusal: Error, Sendable {
    /// What to answer (``BrokerError/unauthorized(_:)`` or ``BrokerError/forbidden(_:)``).
    public var error: BrokerError
    /// The `WWW-Authenticate` value; `error="invalid_token"` when a credential was presented but refused.
    public var challenge: String

    /// The challenge of a request that presented no credential.
    public static let realm = #"Bearer realm="sse-broker""#
    static let invalidToken = #"Bearer realm="sse-broker", error="invalid_token""#
}

extension ServerSecurity {
    /// Checks the `Authorization: Bearer` token of a `POST /broadcast`: ``publishToken`` may publish
    /// anything, a publisher token (``publisherTokens``) the types of its `publish` claim; any request
    /// passes when neither is set. Used by ``BrokerHTTPHandler`` and by the Hummingbird adapter,
    /// before the request's parameters are even parsed.
    /// - Returns: what the credentials allow; check the event's type with ``PublisherGrant/authorize(type:)``.
    public func authenticatePublisher(_ headers: HTTPFields) throws(SecurityRefusal) -> PublisherGrant {
        guard self.publishToken != nil || self.publisherTokens != nil else { return .anything }
        guard let presented = bearerToken(in: headers) else {
            throw SecurityRefusal(
                error: .unauthorized("publishing needs an Authorization: Bearer token"), challenge: SecurityRefusal.realm
            )
        }
        if let token = self.publishToken, token.accepts(presented) {
            return .anything
        }
        // A JWT has dots; anything else is a wrong shared token, whatever else is configured.
        if let verifier = self.publisherTokens, presented.contains(".") {
            do {
                return .token(try verifier.verify(presented))
            } catch {
                throw SecurityRefusal(error: .unauthorized("\(error)"), challenge: SecurityRefusal.invalidToken)
            }
        }
        throw SecurityRefusal(
            error: .unauthorized("the bearer token is not valid for publishing"), challenge: SecurityRefusal.invalidToken
        )
    }

    /// With ``subscriberTokens`` on, a `GET /connect` needs a valid token, `?id=` (if given) must be
    /// its subject, and the subject becomes the request's client id.
    /// - Returns: the verified token; `nil` when subscriber tokens are off.
    public func authenticateSubscriber(_ head: HTTPRequest, request: inout ConnectRequest) throws(SecurityRefusal)
        -> SubscriberToken?
    {
        guard let verifier = self.subscriberTokens else { return nil }
        let query: QueryParameters
        do {
            query = try QueryParameters(uri: head.path ?? "")
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
        if let allowed = token.topics {
            request.topics = try Self.topics(request.topics, allowedBy: allowed)
        }
        return token
    }

    /// With a `topics` claim: every requested topic must be allowed by one of the claim's (a pattern
    /// only by the same pattern or `*`), and a request for no topic gets exactly the claim's —
    /// never every event.
    static func topics(_ requested: TopicFilter, allowedBy allowed: [Topic]) throws(SecurityRefusal) -> TopicFilter {
        func forbidden(_ reason: String) -> SecurityRefusal {
            SecurityRefusal(error: .forbidden(reason), challenge: SecurityRefusal.realm)
        }
        guard !allowed.isEmpty else { throw forbidden("the token allows no topic (its \"topics\" claim is empty)") }
        if requested.isEverything {
            do {
                return try TopicFilter(allowed)
            } catch {
                throw forbidden("the token's \"topics\" claim has more topics than a connection may have")
            }
        }
        for topic in requested.topics where !topic.isAllowed(by: allowed) {
            throw forbidden("the token does not allow topic \(Topic.quotedForMessage(topic.rawValue))")
        }
        return requested
    }
}
