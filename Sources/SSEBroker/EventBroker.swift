/// What a broker does, as a protocol so you can mock it in tests (the Go original's `broker.Broker`).
///
/// ``Broker`` is the implementation; ``SSEBrokerServer`` serves it over HTTP.
public protocol EventBroker: Sendable {
    /// Sends `event` to every connected client and every listener.
    /// - Returns: the assigned event id and how many connections it was handed to.
    @discardableResult
    func broadcast(_ event: Event) throws(BrokerError) -> Delivery

    /// Sends `event` to every connection of the client `clientID` (a client may have several, such as
    /// two browser tabs) and to every listener.
    /// - Throws: ``BrokerError/unknownClient(_:)`` if no connection has that id.
    @discardableResult
    func broadcast(_ event: Event, to clientID: String) throws(BrokerError) -> Delivery

    /// Publishes `event` to every client (`clientID == nil`) or to every connection of `clientID`,
    /// waiting for the shared log when the broker is a cluster node. The default calls
    /// ``broadcast(_:)`` or ``broadcast(_:to:)``.
    @discardableResult
    func publish(_ event: Event, to clientID: String?) async throws(BrokerError) -> Delivery

    /// A stream of everything published (broadcasts and targeted events), in id order. Any number of
    /// listeners may exist; one that does not read never slows a broadcast — its buffer is bounded
    /// and what it drops is counted in ``BrokerStatistics/listenerDrops``.
    func listen() -> AsyncStream<Event>

    /// Disconnects every connection of `clientID`. Its `EventSource` will reconnect.
    /// - Returns: how many connections were closed.
    @discardableResult
    func kick(_ clientID: String) throws(BrokerError) -> Int

    /// A snapshot of the open connections.
    var clients: [ClientInfo] { get }

    /// Disconnects every connection of `clientID` — on every node of a cluster — on behalf of
    /// `origin` (recorded in the audit trail). The default calls ``kick(_:)``.
    /// - Throws: ``BrokerError/unknownClient(_:)`` when no connection has that id.
    @discardableResult
    func kick(_ clientID: String, origin: ActionOrigin) async throws(BrokerError) -> ClosedConnections

    /// Disconnects `clientID` everywhere and answers its connects with `204 No Content` on every
    /// node until `duration` has passed (`nil`: until ``unban(_:origin:)``). The default throws
    /// ``BrokerError/unavailable(_:)``.
    @discardableResult
    func ban(_ clientID: String, for duration: Duration?, origin: ActionOrigin) async throws(BrokerError) -> ClosedConnections

    /// Lifts a ban everywhere. - Returns: whether `clientID` was banned. The default returns `false`.
    @discardableResult
    func unban(_ clientID: String, origin: ActionOrigin) async throws(BrokerError) -> Bool
}

extension EventBroker {
    @discardableResult
    public func kick(_ clientID: String, origin: ActionOrigin) async throws(BrokerError) -> ClosedConnections {
        ClosedConnections(connections: try self.kick(clientID), nodes: 1)
    }

    @discardableResult
    public func ban(_ clientID: String, for duration: Duration?, origin: ActionOrigin) async throws(BrokerError)
        -> ClosedConnections
    {
        throw .unavailable("this broker does not ban")
    }

    @discardableResult
    public func unban(_ clientID: String, origin: ActionOrigin) async throws(BrokerError) -> Bool {
        false
    }
}

extension EventBroker {
    @discardableResult
    public func publish(_ event: Event, to clientID: String?) async throws(BrokerError) -> Delivery {
        if let clientID {
            return try self.broadcast(event, to: clientID)
        }
        return try self.broadcast(event)
    }
}

/// The result of publishing an event.
public struct Delivery: Sendable, Hashable {
    /// The id the event carries on the wire.
    public var eventID: UInt64
    /// How many connections the event was handed to.
    public var recipients: Int

    public init(eventID: UInt64, recipients: Int) {
        self.eventID = eventID
        self.recipients = recipients
    }
}
