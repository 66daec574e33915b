import HTTPTypes
import NIOCore
import SSEBroker

/// The rules of one HTTP/1.1 connection, or of one HTTP/2 stream, serving the broker's endpoints:
/// routing, CORS, credentials, body limits, deadlines, and every refusal's response.
///
/// A value type, as NIO's own protocol handlers have one (`HTTPServerPipelineHandler`,
/// `HTTP2ConnectionStateMachine`): ``BrokerHTTPHandler`` feeds it what arrives (a request head, a
/// body part, the end, a deadline passing, a publish's outcome) and performs the ``Action`` it
/// returns. It never touches a channel, a clock or the broker, so every rule is tested without a
/// socket (`BrokerRequestStateMachineTests`). Each state carries exactly the data valid in it.
///
/// The protocol difference stays outside: the handler says whether a request leaves its connection
/// open (`keepAlive`, HTTP/1's rule; always true on an HTTP/2 stream, which its codec ends).
struct BrokerRequestStateMachine {
    /// What the rules depend on; fixed for a connection's life.
    struct Configuration {
        var routes: BrokerRoutes
        var extraRoutes: [HTTPRoute]
        var security: ServerSecurity
        var maxBodyBytes: Int
        var errorHandler: HTTPErrorHandler?
    }

    /// A request being served, with what its responses need.
    struct Request {
        var head: HTTPRequest
        /// Whether the connection stays open after this request's response.
        var keepAlive: Bool
        /// CORS headers for its responses (empty without a policy or an `Origin`).
        var cors: HTTPFields = [:]
        /// The `WWW-Authenticate` challenge for a `401`.
        var challenge = SecurityRefusal.realm
    }

    private enum State {
        /// Waiting for a request head; `answered`: this connection has had a response already.
        case idle(answered: Bool)
        /// A `GET /connect` whose end has not arrived.
        case connecting(Request, ConnectRequest, SubscriberToken?)
        /// A `POST /broadcast` reading its body, with its `Idempotency-Key` if it has one.
        case readingBody(Request, BroadcastRequest, ByteBuffer, idempotencyKey: String?)
        /// One of the extra routes, answered at the end (its body is dropped).
        case routing(Request, HTTPRoute)
        /// Answered already; the rest of the request is read and dropped.
        case discarding
        /// A complete `POST /broadcast` whose outcome the handler reports with ``published(_:replayed:)``.
        case publishing(Request)
        /// A complete `GET /connect` the handler is admitting (``streamRefused(_:)`` or ``streamStarted()``).
        case admitting(Request)
        /// An event stream now, or closing: nothing more is read or answered.
        case done
        /// Only while an associated value is modified in place (no copy of a body being appended to).
        case modifying
    }

    /// What the handler does about the deadline in force (one at a time: the head's, then the body's).
    enum Deadline: Equatable {
        case unchanged
        case cancel
        /// Arm (replacing any): a request head must arrive within it.
        case head(Duration)
        /// Arm (replacing any): the request's body must arrive within it.
        case body(Duration)
    }

    /// A complete response to write.
    struct Response {
        var head: HTTPResponse
        var body: ByteBuffer
        /// `false`: close the connection once it is written (whatever was pipelined behind is dropped).
        var keepAlive: Bool
        /// It answers no request (the head never arrived in time): on HTTP/1.1 it is written past
        /// the pipelining handler, which has nothing to pair it with.
        var unsolicited = false
        /// For a refusal: the error (to log and count) and the refused request, if it had a head.
        var refusal: (error: BrokerError, request: HTTPRequest?)?
    }

    enum Effect {
        case none
        /// Send `100 Continue` (the producer waits for it before its body).
        case sendContinue
        case respond(Response)
        /// Publish `event`; report the outcome with ``published(_:replayed:)``.
        case publish(Event, BroadcastRequest, body: ByteBuffer, idempotencyKey: String?)
        /// Admit and start a subscriber's stream; report a refusal with ``streamRefused(_:)``, a
        /// start with ``streamStarted()``.
        case startStream(HTTPRequest, ConnectRequest, SubscriberToken?, cors: HTTPFields)
        /// Close the connection without a response (one was sent, or none can be).
        case close
    }

    struct Action {
        var deadline: Deadline
        var effect: Effect
        static let none = Action(deadline: .unchanged, effect: .none)
    }

    private let configuration: Configuration
    private var state = State.idle(answered: false)

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Whether a subscriber stream has taken over or the connection is closing.
    var isDone: Bool {
        if case .done = self.state { return true }
        return false
    }

    // MARK: Inputs

    /// The connection is open: the first head must arrive in time.
    func connectionStarted() -> Action {
        guard case .idle = self.state else { return .none }
        return Action(deadline: .head(self.configuration.security.limits.headerTimeout), effect: .none)
    }

    mutating func receivedHead(_ head: HTTPRequest, keepAlive: Bool) -> Action {
        switch self.state {
        case .idle, .discarding: break
        case .connecting, .readingBody, .routing, .publishing, .admitting, .done, .modifying: return .none
        }
        var request = Request(head: head, keepAlive: keepAlive)
        let path = Self.path(of: head)
        let method: HTTPRequest.Method
        do throws(BrokerError) {
            switch path {
            case self.configuration.routes.connect: method = .get
            case self.configuration.routes.broadcast: method = .post
            default:
                // Extra routes (a page, metrics, health) carry no broker data: no tokens or CORS.
                let candidates = self.configuration.extraRoutes.filter { $0.path == path }
                guard !candidates.isEmpty else { throw .notFound(path: path) }
                guard let route = candidates.first(where: { $0.method == head.method }) else {
                    throw .methodNotAllowed(method: head.method, allowed: candidates.map(\.method))
                }
                self.state = .routing(request, route)
                return Action(deadline: .body(self.configuration.security.limits.bodyTimeout), effect: .none)
            }
            let security = self.configuration.security
            if let cors = security.cors, let origin = head.headerFields[.origin] {
                // A request from a browser page must come from an allowed origin.
                guard cors.allows(origin) else { throw .forbidden("origin \(origin) is not allowed") }
                request.cors = cors.responseHeaders(for: origin)
            }
            if head.method == .options, let cors = security.cors {
                guard let origin = head.headerFields[.origin] else {
                    throw .forbidden("a CORS preflight request needs an Origin header")
                }
                self.state = .discarding
                return self.respond(
                    HTTPErrorResponse(status: .noContent, headerFields: cors.preflightHeaders(for: origin, methods: [method])),
                    to: Request(head: head, keepAlive: keepAlive)
                )
            }
            guard head.method == method else {
                throw .methodNotAllowed(method: head.method, allowed: security.cors == nil ? [method] : [method, .options])
            }
            if method == .get {
                var connect = try ConnectRequest(request: head)
                let token: SubscriberToken?
                do {
                    token = try security.authenticateSubscriber(head, request: &connect)
                } catch {
                    request.challenge = error.challenge
                    throw error.error
                }
                self.state = .connecting(request, connect, token)
                return Action(deadline: .body(security.limits.bodyTimeout), effect: .none)
            }
            let grant: PublisherGrant
            do {
                grant = try security.authenticatePublisher(head.headerFields)
            } catch {
                request.challenge = error.challenge
                throw error.error
            }
            let broadcast = try BroadcastRequest(request: head)
            do {
                try grant.authorize(type: broadcast.type)
            } catch {
                request.challenge = error.challenge
                throw error.error
            }
            let fields = try PublishFields(head.headerFields)
            let limit = self.configuration.maxBodyBytes
            let length = fields.contentLength
            if let length, length > limit {
                // Refused before a byte of it is read.
                return self.refuse(request, .bodyTooLarge(limit: limit), then: .close)
            }
            // Room for the announced body, so that its chunks are copied in once; a chunked one grows.
            var body = ByteBuffer()
            if let length, length > 0 { body.reserveCapacity(length) }
            self.state = .readingBody(request, broadcast, body, idempotencyKey: fields.idempotencyKey)
            return Action(deadline: .body(security.limits.bodyTimeout), effect: fields.expectsContinue ? .sendContinue : .none)
        } catch {
            // An unauthenticated producer's body is not worth reading.
            let close = head.method == .post && (error.status == .unauthorized || error.status == .forbidden)
            return self.refuse(request, error, then: close ? .close : .discardRest)
        }
    }

    mutating func receivedBody(_ chunk: ByteBuffer) -> Action {
        guard case .readingBody(let request, let broadcast, var body, let key) = self.state else { return .none }
        let limit = self.configuration.maxBodyBytes
        guard body.readableBytes + chunk.readableBytes <= limit else {
            return self.refuse(request, .bodyTooLarge(limit: limit), then: .close)
        }
        self.state = .modifying  // drop the state's reference, so the append does not copy
        var chunk = chunk
        body.writeBuffer(&chunk)
        self.state = .readingBody(request, broadcast, body, idempotencyKey: key)
        return .none
    }

    mutating func receivedEnd() -> Action {
        switch self.state {
        case .connecting(let request, let connect, let token):
            self.state = .admitting(request)
            return Action(deadline: .cancel, effect: .startStream(request.head, connect, token, cors: request.cors))
        case .readingBody(let request, let broadcast, let body, let key):
            let event: Event
            do throws(BrokerError) {
                event = try broadcast.event(body: body)
            } catch {
                return self.refuse(request, error, then: .idle)
            }
            self.state = .publishing(request)
            return Action(deadline: .cancel, effect: .publish(event, broadcast, body: body, idempotencyKey: key))
        case .routing(let request, let route):
            self.state = .idle(answered: true)
            return self.respond(route.handler(request.head), to: request)
        case .discarding:
            self.state = .idle(answered: true)
            return .none
        case .idle, .publishing, .admitting, .done, .modifying:
            return .none
        }
    }

    /// The deadline in force passed.
    mutating func deadlinePassed() -> Action {
        let limits = self.configuration.security.limits
        switch self.state {
        case .idle(answered: true), .discarding:
            // An idle keep-alive connection, or a refused request still trickling in: hang up quietly.
            self.state = .done
            return Action(deadline: .unchanged, effect: .close)
        case .idle(answered: false):
            var action = self.refuse(
                nil,
                .requestTimeout("the request line and headers did not arrive within \(Self.describe(limits.headerTimeout))"),
                then: .close
            )
            if case .respond(var response) = action.effect {
                response.unsolicited = true
                action.effect = .respond(response)
            }
            return action
        case .connecting(let request, _, _), .readingBody(let request, _, _, _), .routing(let request, _):
            return self.refuse(
                request,
                .requestTimeout("the request body did not arrive within \(Self.describe(limits.bodyTimeout))"),
                then: .close
            )
        case .publishing, .admitting, .done, .modifying:
            return .none
        }
    }

    /// The request could not be parsed (`error` says why): answered if it can still be, and the
    /// connection is closed (an HTTP/1 parser cannot resynchronise).
    mutating func receivedMalformedRequest(_ error: BrokerError) -> Action {
        switch self.state {
        case .idle, .connecting, .readingBody, .routing:
            return self.refuse(nil, error, then: .close)
        case .discarding, .publishing, .admitting:
            // This request has its response, or will have: a second is not allowed.
            self.state = .done
            return Action(deadline: .cancel, effect: .close)
        case .done, .modifying:
            return .none
        }
    }

    /// The connection failed (reset, TLS error): nothing more is done on it.
    mutating func connectionFailed() -> Action {
        if case .done = self.state { return .none }
        self.state = .done
        return Action(deadline: .cancel, effect: .close)
    }

    /// The outcome of a ``Effect/publish(_:_:body:idempotencyKey:)``: `202` with the delivery
    /// (`Idempotent-Replayed: true` when it is an earlier request's), or the refusal.
    mutating func published(_ result: Result<Delivery, BrokerError>, replayed: Bool) -> Action {
        guard case .publishing(let request) = self.state else { return .none }
        switch result {
        case .success(let delivery):
            self.state = .idle(answered: true)
            var fields: HTTPFields = [.contentType: "application/json"]
            if replayed { fields[.idempotentReplayed] = "true" }
            return self.respond(
                HTTPErrorResponse(status: .accepted, headerFields: fields, body: BroadcastRequest.responseBody(for: delivery)),
                to: request
            )
        case .failure(let error):
            return self.refuse(request, error, then: .idle)
        }
    }

    /// The stream of a ``Effect/startStream(_:_:_:cors:)`` was refused (a limit, a ban).
    mutating func streamRefused(_ error: BrokerError) -> Action {
        guard case .admitting(let request) = self.state else { return .none }
        return self.refuse(request, error, then: .idle)
    }

    /// The stream of a ``Effect/startStream(_:_:_:cors:)`` has taken the connection over.
    mutating func streamStarted() {
        self.state = .done
    }

    // MARK: Responses

    /// What happens on a connection after a refusal.
    enum AfterRefusal {
        /// The request is complete: the next one is read.
        case idle
        /// The rest of this request is read and dropped, then the next one is read.
        case discardRest
        /// The connection is closed once the response is written.
        case close
    }

    /// The response for `error` (``HTTPErrorResponse/refusal(_:to:errorHandler:challenge:limits:)``).
    /// - Parameter request: `nil` when the request was refused before its head was complete.
    private mutating func refuse(_ request: Request?, _ error: BrokerError, then next: AfterRefusal) -> Action {
        let response = HTTPErrorResponse.refusal(
            error,
            to: request?.head,
            errorHandler: self.configuration.errorHandler,
            challenge: request?.challenge ?? SecurityRefusal.realm,
            limits: self.configuration.security.limits
        )
        let keepAlive = (request?.keepAlive ?? false) && next != .close
        switch next {
        case .idle: self.state = .idle(answered: true)
        case .discardRest: self.state = .discarding
        case .close: self.state = .done
        }
        var action = self.respond(response, to: request, keepAlive: keepAlive)
        if case .respond(var written) = action.effect {
            written.refusal = (error, request?.head)
            action.effect = .respond(written)
        }
        return action
    }

    /// Answers `request` with `response` (plus its CORS headers, `Content-Length` and `Connection`).
    /// The caller has set the next state; a response that closes the connection makes it done.
    /// Either way it is settled before the handler writes: the pipelining handler hands the next
    /// request on from inside that write.
    private mutating func respond(
        _ response: HTTPErrorResponse,
        to request: Request?,
        keepAlive: Bool? = nil
    ) -> Action {
        let keepAlive = keepAlive ?? request?.keepAlive ?? false
        var fields = response.headerFields
        for field in request?.cors ?? [:] where fields[field.name] == nil {
            fields.append(field)
        }
        if response.status != .noContent {
            fields[.contentLength] = String(response.body.readableBytes)
        }
        fields[.connection] = keepAlive ? "keep-alive" : "close"
        if !keepAlive { self.state = .done }
        let body = response.status == .noContent ? ByteBuffer() : response.body
        return Action(
            deadline: keepAlive ? .head(self.configuration.security.limits.headerTimeout) : .cancel,
            effect: .respond(
                Response(head: HTTPResponse(status: response.status, headerFields: fields), body: body, keepAlive: keepAlive)
            )
        )
    }

    // MARK: Helpers

    /// The path without the query.
    static func path(of head: HTTPRequest) -> String {
        let target = head.path ?? ""
        // On the UTF-8 view: a `Character` search is several times slower.
        guard let query = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return target }
        return String(Substring(target.utf8[..<query]))
    }

    static func describe(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds == 0 { return "\(seconds) s" }
        let value = Double(seconds) + Double(attoseconds) / 1e18
        return "\((value * 1000).rounded() / 1000) s"
    }
}

extension HTTPField.Name {
    /// `Idempotency-Key`: a producer's retry of the same request publishes once.
    public static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    /// `Idempotent-Replayed: true` on the answer to a retry.
    public static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}
