import NIOCore

/// A published event with everything needed to deliver or replay it later: what a durable history
/// stores and what a cluster's shared log carries between nodes.
public struct LoggedEvent: Sendable, Hashable {
    /// The event id (the SSE `id:` field). Ids increase; they need not be contiguous.
    public var id: UInt64
    /// The event type; `nil` dispatches as `message`.
    public var type: String?
    /// The payload.
    public var data: ByteBuffer
    /// The client id of a targeted event; `nil` for a broadcast.
    public var target: String?
    /// Who published it.
    public var origin: EventOrigin

    public init(id: UInt64, type: String?, data: ByteBuffer, target: String?, origin: EventOrigin) {
        self.id = id
        self.type = type
        self.data = data
        self.target = target
        self.origin = origin
    }

    /// The event as ``Broker/listen()`` yields it.
    public var event: Event {
        var event = Event(type: self.type, data: self.data, origin: self.origin)
        event.id = self.id
        event.target = self.target
        return event
    }
}

/// Where a broker's events go besides its clients: a durable history (see `SSEBrokerSQLite`).
///
/// The broker calls ``record(_:)`` for every event it publishes or delivers, in id order, while it
/// holds its registry lock: an implementation must only queue the event (and write it elsewhere),
/// never block.
public protocol EventJournal: Sendable {
    func record(_ event: LoggedEvent)
}

/// Where a broker's publishes go when the event id comes from somewhere else: a log shared by
/// several broker nodes (see `SSEBrokerPostgres`).
///
/// With a backplane attached (``Broker/attach(_:)``), ``Broker/publish(_:to:)`` hands each event to
/// it; the backplane assigns the id, makes the event durable and announces it, and every node —
/// this one too — delivers it with ``Broker/deliver(_:)`` in id order.
public protocol EventBackplane: Sendable {
    /// Publishes `event` (to every client, or to every connection of `target` on any node).
    /// - Returns: the assigned id and how many connections the event is expected to reach.
    /// - Throws: ``BrokerError/unknownClient(_:)`` when no node has `target`,
    ///   ``BrokerError/unavailable(_:)`` when the event cannot be made durable now.
    func publish(_ event: Event, to target: String?) async throws(BrokerError) -> Delivery
}
