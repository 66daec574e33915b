extension Broker {
    /// Publishes `event` as ``publish(_:to:)`` does, under an `Idempotency-Key`: with a backplane the
    /// key goes with the event to the shared log, so a retry on any node gets the first publish's
    /// ``Delivery`` back instead of publishing again (see ``EventBackplane/publish(_:to:idempotency:)``).
    /// Stand-alone there is nothing to share: the event is published, and the server's own store
    /// remembers the key.
    /// - Throws: what ``publish(_:to:)`` throws, and ``BrokerError/idempotencyKeyReused(_:)`` when the
    ///   shared log has the key for a different request.
    public func publish(_ event: Event, to target: String?, idempotency: IdempotencyKey) async throws(BrokerError)
        -> IdempotentDelivery
    {
        guard let backplane = self.backplane else {
            return IdempotentDelivery(delivery: try await self.publish(event, to: target), replayed: false)
        }
        if let type = event.type {
            try Validation.validateEventType(type)
        }
        if let target {
            try Validation.validateClientID(target)
        }
        guard !self.isShuttingDown else { throw .shuttingDown }
        // Not counted in `statistics.published`: the counter is private to Broker.swift (see the
        // integration note: this belongs in `Broker.publish(_:to:idempotency:)` there).
        return try await backplane.publish(event, to: target, idempotency: idempotency)
    }
}
