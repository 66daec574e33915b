import HTTPTypes
import NIOCore
import SSEBroker
import Synchronization
import Testing

/// A recording mock of `EventBroker`, the way the Go original's README mocks its `Broker`
/// interface: code under test takes `some EventBroker`, the test decides what each call returns
/// and checks what was called. Only the public API is used (no `@testable`).
final class MockBroker: EventBroker {
    enum Call: Equatable {
        case broadcast(type: String?, data: String)
        case broadcastTo(id: String, type: String?, data: String)
        case kick(String)
    }

    private let state = Mutex<(calls: [Call], connected: Set<String>)>(([], []))

    init(connected: Set<String>) {
        self.state.withLock { $0.connected = connected }
    }

    var calls: [Call] { self.state.withLock { $0.calls } }

    func broadcast(_ event: Event) throws(BrokerError) -> Delivery {
        self.state.withLock { state in
            state.calls.append(.broadcast(type: event.type, data: event.dataString))
            return Delivery(eventID: UInt64(state.calls.count), recipients: state.connected.count)
        }
    }

    func broadcast(_ event: Event, to clientID: String) throws(BrokerError) -> Delivery {
        try self.state.withLock { state throws(BrokerError) in
            state.calls.append(.broadcastTo(id: clientID, type: event.type, data: event.dataString))
            guard state.connected.contains(clientID) else { throw .unknownClient(clientID) }
            return Delivery(eventID: UInt64(state.calls.count), recipients: 1)
        }
    }

    func listen() -> AsyncStream<Event> { AsyncStream { $0.finish() } }

    func kick(_ clientID: String) throws(BrokerError) -> Int {
        try self.state.withLock { state throws(BrokerError) in
            state.calls.append(.kick(clientID))
            guard state.connected.remove(clientID) != nil else { throw .unknownClient(clientID) }
            return 1
        }
    }

    var clients: [ClientInfo] {
        self.state.withLock { state in
            state.connected.sorted().enumerated().map { ClientInfo(connectionID: UInt64($0.offset), clientID: $0.element) }
        }
    }
}

@Suite struct MockBrokerTests {
    /// The producer endpoint's logic, run against the mock: it decodes the query, validates the
    /// body and calls the right broker method with the right arguments.
    @Test func broadcastRequest_callsBroadcastTo_withTheDecodedQuery() throws {
        let mock = MockBroker(connected: ["alice"])
        let head = HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/broadcast?type=price%20tick&id=alice")
        let delivery = try BroadcastRequest(request: head).publish(body: ByteBuffer(string: "101"), on: mock)
        #expect(delivery == Delivery(eventID: 1, recipients: 1))
        #expect(mock.calls == [.broadcastTo(id: "alice", type: "price tick", data: "101")])
    }

    @Test func broadcastRequest_withoutID_broadcasts() throws {
        let mock = MockBroker(connected: ["alice", "bob"])
        let head = HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/broadcast")
        let delivery = try BroadcastRequest(request: head).publish(body: ByteBuffer(), on: mock)
        #expect(delivery.recipients == 2)
        #expect(mock.calls == [.broadcast(type: nil, data: "")])
    }

    @Test func broadcastRequest_surfacesTheBrokersError() throws {
        let mock = MockBroker(connected: [])
        let head = HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/broadcast?id=ghost")
        #expect(throws: BrokerError.unknownClient("ghost")) {
            try BroadcastRequest(request: head).publish(body: ByteBuffer(string: "x"), on: mock)
        }
        #expect(BrokerError.unknownClient("ghost").status == .notFound)
    }

    @Test func broadcastRequest_refusesABodyThatIsNotUTF8_beforeCallingTheBroker() throws {
        let mock = MockBroker(connected: ["alice"])
        let head = HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/broadcast")
        #expect(throws: BrokerError.invalidUTF8) {
            try BroadcastRequest(request: head).publish(body: ByteBuffer(bytes: [0xFF, 0xFE]), on: mock)
        }
        #expect(mock.calls.isEmpty)
    }

    @Test func mock_kick_forgetsTheClient() throws {
        let mock: any EventBroker = MockBroker(connected: ["alice"])
        #expect(try mock.kick("alice") == 1)
        #expect(mock.clients.isEmpty)
        #expect(throws: BrokerError.unknownClient("alice")) { try mock.kick("alice") }
    }
}
