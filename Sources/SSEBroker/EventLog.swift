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

    /// Publishes `event` at most once per ``IdempotencyKey/key`` across every node: the first publish
    /// with a key stores key → id with the event (in the same transaction); a later one with the same
    /// key and fingerprint publishes nothing and gets the first one's ``Delivery`` back (`replayed`),
    /// one with another fingerprint throws ``BrokerError/idempotencyKeyReused(_:)``. Keys are kept
    /// for the backplane's idempotency window.
    ///
    /// The default publishes with ``publish(_:to:)``: a backplane without it deduplicates nothing
    /// across nodes (the server's own store still does on one node).
    func publish(_ event: Event, to target: String?, idempotency: IdempotencyKey) async throws(BrokerError) -> IdempotentDelivery
}

extension EventBackplane {
    public func publish(_ event: Event, to target: String?, idempotency: IdempotencyKey) async throws(BrokerError)
        -> IdempotentDelivery
    {
        IdempotentDelivery(delivery: try await self.publish(event, to: target), replayed: false)
    }
}

/// The `Idempotency-Key` of a publish (IETF draft-ietf-httpapi-idempotency-key-header) and a
/// fingerprint of the request it came with, to tell a retry from a different request reusing the key.
public struct IdempotencyKey: Sendable, Hashable {
    /// The key as the client sent it (validated by the server: printable ASCII, 1 to 255 bytes).
    public var key: String
    /// A digest of what the request asks for (type, target, body); equal for a retry.
    public var fingerprint: String

    public init(key: String, fingerprint: String) {
        self.key = key
        self.fingerprint = fingerprint
    }
}

/// The answer to a publish made under an ``IdempotencyKey``.
public struct IdempotentDelivery: Sendable, Hashable {
    /// The delivery of the first publish with the key.
    public var delivery: Delivery
    /// Whether this is the answer of an earlier publish (nothing was published now).
    public var replayed: Bool

    public init(delivery: Delivery, replayed: Bool) {
        self.delivery = delivery
        self.replayed = replayed
    }
}
