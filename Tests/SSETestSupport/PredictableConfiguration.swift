import SSEBroker

extension BrokerConfiguration {
    /// The defaults, but with ids counting from 1 and the `retry:` hint without jitter, so tests
    /// can name them. (The default seeds ids from the clock and jitters the hint: see
    /// ``EventIDSeed`` and ``BrokerConfiguration/retryJitter``.)
    public static var predictable: BrokerConfiguration {
        BrokerConfiguration(eventIDSeed: .after(0), retryJitter: 0)
    }
}
