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
