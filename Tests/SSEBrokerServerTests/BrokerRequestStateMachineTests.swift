import HTTPTypes
import NIOCore
import SSEBroker
import Testing

@testable import SSEBrokerServer

/// The request rules as a value: inputs in, actions out. No channel, clock or broker — the handler
/// that performs these actions is tested over an `EmbeddedChannel` and real sockets elsewhere.
@Suite struct BrokerRequestStateMachineTests {
    typealias Machine = BrokerRequestStateMachine

    static let limits = ServerLimits(headerTimeout: .seconds(10), bodyTimeout: .seconds(30), retryAfter: .seconds(5))

    static func machine(
        security: ServerSecurity = ServerSecurity(limits: limits),
        maxBodyBytes: Int = 16,
        errorHandler: HTTPErrorHandler? = nil,
        extraRoutes: [HTTPRoute] = []
    ) -> Machine {
        Machine(
            configuration: .init(
                routes: BrokerRoutes(),
                extraRoutes: extraRoutes,
                security: security,
                maxBodyBytes: maxBodyBytes,
                errorHandler: errorHandler
            )
        )
    }

    static func request(_ method: HTTPRequest.Method, _ path: String, _ fields: HTTPFields = [:]) -> HTTPRequest {
        HTTPRequest(method: method, scheme: nil, authority: nil, path: path, headerFields: fields)
    }

    /// The response of `action`, or a recorded failure.
    static func response(_ action: Machine.Action, sourceLocation: SourceLocation = #_sourceLocation) -> Machine.Response? {
        guard case .respond(let response) = action.effect else {
            Issue.record("expected a response, got \(action.effect)", sourceLocation: sourceLocation)
            return nil
        }
        return response
    }

    static func text(_ response: Machine.Response?) -> String {
        response.map { String(buffer: $0.body) } ?? ""
    }

    @Test func broadcast_armsTheBodyDeadline_publishesAtTheEnd_andAnswers202KeepingTheConnection() throws {
        var machine = Self.machine()
        #expect(machine.connectionStarted().deadline == .head(.seconds(10)))
        let head = machine.receivedHead(Self.request(.post, "/broadcast?type=price&id=alice"), keepAlive: true)
        #expect(head.deadline == .body(.seconds(30)))
        guard case .none = head.effect else { Issue.record("unexpected \(head.effect)"); return }
        _ = machine.receivedBody(ByteBuffer(string: "10"))
        _ = machine.receivedBody(ByteBuffer(string: "1"))
        let end = machine.receivedEnd()
        #expect(end.deadline == .cancel)
        guard case .publish(let event, let request, let body, let key) = end.effect else {
            Issue.record("expected a publish, got \(end.effect)")
            return
        }
        #expect(String(buffer: event.data) == "101" && event.type == "price")
        #expect(request.clientID == "alice" && String(buffer: body) == "101" && key == nil)
        // Nothing is read while the publish is in flight.
        #expect(machine.deadlinePassed().deadline == .unchanged)
        let answer = machine.published(.success(Delivery(eventID: 7, recipients: 1)), replayed: false)
        #expect(answer.deadline == .head(.seconds(10)))
        let response = try #require(Self.response(answer))
        #expect(response.head.status == .accepted && response.keepAlive && response.refusal == nil)
        #expect(response.head.headerFields[.connection] == "keep-alive")
        #expect(response.head.headerFields[.contentType] == "application/json")
        #expect(Self.text(response) == "{\"id\":\"7\",\"delivered\":1}\n")
        #expect(response.head.headerFields[.contentLength] == "25")
        // The next request on the connection is served.
        guard case .none = machine.receivedHead(Self.request(.post, "/broadcast"), keepAlive: true).effect else {
            Issue.record("the next request was not taken")
            return
        }
    }

    @Test func aResponseThatClosesTheConnection_endsIt_andNothingAfterIsProcessed() throws {
        var machine = Self.machine()
        _ = machine.receivedHead(Self.request(.post, "/broadcast"), keepAlive: false)
        _ = machine.receivedEnd()
        let response = try #require(Self.response(machine.published(.success(Delivery(eventID: 1, recipients: 0)), replayed: false)))
        #expect(!response.keepAlive && response.head.headerFields[.connection] == "close")
        #expect(machine.isDone)
        guard case .none = machine.receivedHead(Self.request(.post, "/broadcast"), keepAlive: true).effect else {
            Issue.record("a request after a closing response was processed")
            return
        }
    }

    @Test func idempotentReplay_isMarked() throws {
        var machine = Self.machine()
        _ = machine.receivedHead(Self.request(.post, "/broadcast", [.idempotencyKey: "k-1"]), keepAlive: true)
        guard case .publish(_, _, _, let key) = machine.receivedEnd().effect else { Issue.record("no publish"); return }
        #expect(key == "k-1")
        let response = try #require(Self.response(machine.published(.success(Delivery(eventID: 1, recipients: 0)), replayed: true)))
        #expect(response.head.headerFields[.idempotentReplayed] == "true")
    }

    @Test func unknownPath_is404_theRestIsDropped_andTheConnectionServesTheNextRequest() throws {
        var machine = Self.machine()
        let response = try #require(Self.response(machine.receivedHead(Self.request(.post, "/nope?x=1"), keepAlive: true)))
        #expect(response.head.status == .notFound && response.keepAlive)
        #expect(Self.text(response) == "404 Not Found: no endpoint at /nope\n")
        #expect(response.refusal?.error == .notFound(path: "/nope"))
        #expect(response.refusal?.request?.path == "/nope?x=1")
        guard case .none = machine.receivedBody(ByteBuffer(string: "ignored")).effect, case .none = machine.receivedEnd().effect else {
            Issue.record("the rest of a refused request was not dropped")
            return
        }
        _ = machine.receivedHead(Self.request(.post, "/broadcast"), keepAlive: true)
        guard case .publish = machine.receivedEnd().effect else { Issue.record("the next request was not served"); return }
    }

    @Test func wrongMethod_is405_withAllow_andExtraRoutesListTheirMethods() throws {
        var machine = Self.machine(extraRoutes: [.get("/page") { _ in .text("page") }, HTTPRoute(.delete, "/page") { _ in .text("gone") }])
        let connect = try #require(Self.response(machine.receivedHead(Self.request(.post, "/connect"), keepAlive: true)))
        #expect(connect.head.status == .methodNotAllowed && connect.head.headerFields[.allow] == "GET")
        _ = machine.receivedEnd()
        let page = try #require(Self.response(machine.receivedHead(Self.request(.put, "/page"), keepAlive: true)))
        #expect(page.head.headerFields[.allow] == "GET, DELETE")
        _ = machine.receivedEnd()
        _ = machine.receivedHead(Self.request(.delete, "/page"), keepAlive: true)
        let route = try #require(Self.response(machine.receivedEnd()))
        #expect(route.head.status == .ok && Self.text(route) == "gone" && route.refusal == nil)
    }

    @Test func declaredBodyOverTheLimit_is413AndCloses_withoutContinue() throws {
        var machine = Self.machine()
        let head = Self.request(.post, "/broadcast", [.contentLength: "17", .expect: "100-continue"])
        let response = try #require(Self.response(machine.receivedHead(head, keepAlive: true)))
        #expect(response.head.status == .contentTooLarge && !response.keepAlive && machine.isDone)
    }

    @Test func expectContinue_isAnsweredBeforeTheBody() {
        var machine = Self.machine()
        let head = Self.request(.post, "/broadcast", [.contentLength: "2", .expect: "100-continue"])
        guard case .sendContinue = machine.receivedHead(head, keepAlive: true).effect else {
            Issue.record("no 100 Continue")
            return
        }
    }

    @Test func idempotencyKey_isPassedOn_butTwoAre400_andAnInvalidOneIs400() throws {
        var machine = Self.machine()
        _ = machine.receivedHead(Self.request(.post, "/broadcast", [.idempotencyKey: "k-1"]), keepAlive: true)
        guard case .publish(_, _, _, let key) = machine.receivedEnd().effect else {
            Issue.record("expected a publish")
            return
        }
        #expect(key == "k-1")
        var fields: HTTPFields = [.idempotencyKey: "a"]
        fields.append(HTTPField(name: .idempotencyKey, value: "b"))
        machine = Self.machine()
        let twice = try #require(Self.response(machine.receivedHead(Self.request(.post, "/broadcast", fields), keepAlive: true)))
        #expect(twice.head.status == .badRequest && Self.text(twice).contains("more than one Idempotency-Key"))
        machine = Self.machine()
        let invalid = Self.request(.post, "/broadcast", [.idempotencyKey: String(repeating: "k", count: 1000)])
        #expect(try #require(Self.response(machine.receivedHead(invalid, keepAlive: true))).head.status == .badRequest)
    }

    @Test func bodyGrowingPastTheLimit_is413AndCloses() throws {
        var machine = Self.machine()
        _ = machine.receivedHead(Self.request(.post, "/broadcast"), keepAlive: true)
        _ = machine.receivedBody(ByteBuffer(string: String(repeating: "x", count: 16)))
        let response = try #require(Self.response(machine.receivedBody(ByteBuffer(string: "y"))))
        #expect(response.head.status == .contentTooLarge && !response.keepAlive)
    }

    @Test func bodyThatIsNotUTF8_is400_andTheConnectionStays() throws {
        var machine = Self.machine()
        _ = machine.receivedHead(Self.request(.post, "/broadcast"), keepAlive: true)
        _ = machine.receivedBody(ByteBuffer(bytes: [0xFF, 0xFE]))
        let response = try #require(Self.response(machine.receivedEnd()))
        #expect(response.head.status == .badRequest && response.keepAlive && !machine.isDone)
    }

    @Test func headDeadline_is408ForAConnectionThatNeverSentOne_andAQuietCloseForAnIdleKeepAlive() throws {
        var silent = Self.machine()
        let timeout = try #require(Self.response(silent.deadlinePassed()))
        #expect(timeout.head.status == .requestTimeout && timeout.unsolicited && !timeout.keepAlive)
        #expect(Self.text(timeout).contains("the request line and headers did not arrive within 10 s"))
        #expect(timeout.refusal?.request == nil)

        var idle = Self.machine()
        _ = idle.receivedHead(Self.request(.get, "/nope"), keepAlive: true)
        _ = idle.receivedEnd()
        guard case .close = idle.deadlinePassed().effect else { Issue.record("an idle keep-alive was not closed"); return }
    }

    @Test func bodyDeadline_is408AndCloses() throws {
        var machine = Self.machine()
        _ = machine.receivedHead(Self.request(.post, "/broadcast"), keepAlive: true)
        let response = try #require(Self.response(machine.deadlinePassed()))
        #expect(response.head.status == .requestTimeout && !response.keepAlive && !response.unsolicited)
        #expect(Self.text(response).contains("the request body did not arrive within 30 s"))
    }

    @Test func producerWithoutAToken_is401WithAChallenge_andTheConnectionCloses() throws {
        let security = ServerSecurity(publishToken: try PublishToken("t0ken"), limits: Self.limits)
        var missing = Self.machine(security: security)
        let none = try #require(Self.response(missing.receivedHead(Self.request(.post, "/broadcast"), keepAlive: true)))
        #expect(none.head.status == .unauthorized && !none.keepAlive)
        #expect(none.head.headerFields[.wwwAuthenticate] == #"Bearer realm="sse-broker""#)

        var wrong = Self.machine(security: security)
        let bad = try #require(
            Self.response(wrong.receivedHead(Self.request(.post, "/broadcast", [.authorization: "Bearer nope"]), keepAlive: true))
        )
        #expect(bad.head.headerFields[.wwwAuthenticate] == #"Bearer realm="sse-broker", error="invalid_token""#)

        var right = Self.machine(security: security)
        _ = right.receivedHead(Self.request(.post, "/broadcast", [.authorization: "Bearer t0ken"]), keepAlive: true)
        guard case .publish = right.receivedEnd().effect else { Issue.record("the right token did not publish"); return }
    }

    @Test func connect_startsAStream_orIsRefusedWithTheRightAnswer() throws {
        var machine = Self.machine()
        #expect(machine.receivedHead(Self.request(.get, "/connect?id=alice&topic=price"), keepAlive: true).deadline == .body(.seconds(30)))
        let end = machine.receivedEnd()
        guard case .startStream(let head, let request, let token, let cors) = end.effect else {
            Issue.record("no stream, got \(end.effect)")
            return
        }
        #expect(head.path == "/connect?id=alice&topic=price" && request.clientID == "alice" && token == nil && cors.isEmpty)
        let full = try #require(Self.response(machine.streamRefused(.tooManyClients(limit: 1))))
        #expect(full.head.status == .serviceUnavailable && full.head.headerFields[.retryAfter] == "5" && full.keepAlive)

        var banned = Self.machine()
        _ = banned.receivedHead(Self.request(.get, "/connect?id=mallory"), keepAlive: true)
        _ = banned.receivedEnd()
        let refused = try #require(Self.response(banned.streamRefused(.banned("mallory"))))
        #expect(refused.head.status == .noContent && refused.body.readableBytes == 0)
        #expect(refused.head.headerFields[.contentLength] == nil)

        var started = Self.machine()
        _ = started.receivedHead(Self.request(.get, "/connect"), keepAlive: true)
        _ = started.receivedEnd()
        started.streamStarted()
        #expect(started.isDone)
    }

    @Test func overload_is503_retryAfterOneSecond() throws {
        var machine = Self.machine()
        _ = machine.receivedHead(Self.request(.post, "/broadcast"), keepAlive: true)
        _ = machine.receivedEnd()
        let response = try #require(Self.response(machine.published(.failure(.overloaded("busy")), replayed: false)))
        #expect(response.head.status == .serviceUnavailable && response.head.headerFields[.retryAfter] == "1")
        #expect(response.keepAlive, "a producer that was pushed back keeps its connection")
    }

    @Test func malformedRequest_isAnsweredAndCloses_unlessItsRequestHasAResponseAlready() throws {
        var fresh = Self.machine()
        let response = try #require(Self.response(fresh.receivedMalformedRequest(.malformedRequest("bad"))))
        #expect(response.head.status == .badRequest && !response.keepAlive)

        var publishing = Self.machine()
        _ = publishing.receivedHead(Self.request(.post, "/broadcast"), keepAlive: true)
        _ = publishing.receivedEnd()
        guard case .close = publishing.receivedMalformedRequest(.malformedRequest("bad")).effect else {
            Issue.record("a second answer was allowed")
            return
        }
    }

    @Test func cors_refusesOtherOrigins_answersPreflights_andAddsItsHeaders() throws {
        let cors = try CORSPolicy(allowedOrigins: ["https://app.example"])
        let security = ServerSecurity(cors: cors, limits: Self.limits)
        var other = Self.machine(security: security)
        let refused = try #require(
            Self.response(other.receivedHead(Self.request(.get, "/connect", [.origin: "https://evil.example"]), keepAlive: true))
        )
        #expect(refused.head.status == .forbidden)

        var preflight = Self.machine(security: security)
        let answer = try #require(
            Self.response(preflight.receivedHead(Self.request(.options, "/broadcast", [.origin: "https://app.example"]), keepAlive: true))
        )
        #expect(answer.head.status == .noContent && answer.head.headerFields[.accessControlAllowMethods] == "POST, OPTIONS")

        var allowed = Self.machine(security: security)
        _ = allowed.receivedHead(Self.request(.post, "/broadcast", [.origin: "https://app.example"]), keepAlive: true)
        _ = allowed.receivedEnd()
        let accepted = try #require(Self.response(allowed.published(.success(Delivery(eventID: 1, recipients: 0)), replayed: false)))
        #expect(accepted.head.headerFields[.accessControlAllowOrigin] == "https://app.example")
    }

    @Test func errorHandler_shapesRefusals_andGetsAPlaceholderWhenThereWasNoHead() throws {
        let handler: HTTPErrorHandler = { request, status, _ in
            .text("\(status.code) \(request.method.rawValue) [\(request.path ?? "-")]")
        }
        var routed = Self.machine(errorHandler: handler)
        let notFound = try #require(Self.response(routed.receivedHead(Self.request(.get, "/nope"), keepAlive: true)))
        #expect(Self.text(notFound) == "404 GET [/nope]")
        var malformed = Self.machine(errorHandler: handler)
        let bad = try #require(Self.response(malformed.receivedMalformedRequest(.malformedRequest("x"))))
        #expect(Self.text(bad) == "400 GET []")
    }
}
