import NIOCore
import SSEBroker

/// A token bucket for new event streams (``ServerLimits/maxConnectRate``): `rate` tokens a second,
/// at most `rate` saved up, so a node takes a burst of one second's worth and then `rate` a second.
/// Past it `GET /connect` gets `503` with `Retry-After`: a fleet reconnecting at once (a deploy, a
/// network blip) is spread out instead of landing on one node together. Thread-safe; O(1).
final class ConnectRateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: NIODeadline
    }

    let rate: Int
    private let bucket: Locked<Bucket>

    init(rate: Int, now: NIODeadline = .now()) {
        self.rate = rate
        self.bucket = Locked(Bucket(tokens: Double(rate), updated: now))
    }

    /// Takes a token. - Throws: ``BrokerError/connectRateExceeded(perSecond:)`` when there is none.
    func take(now: NIODeadline = .now()) throws(BrokerError) {
        let rate = Double(self.rate)
        let taken = self.bucket.withLock { bucket -> Bool in
            let elapsed = Double((now - bucket.updated).nanoseconds) / 1e9
            bucket.tokens = min(rate, bucket.tokens + max(0, elapsed) * rate)
            bucket.updated = now
            guard bucket.tokens >= 1 else { return false }
            bucket.tokens -= 1
            return true
        }
        if !taken { throw .connectRateExceeded(perSecond: self.rate) }
    }
}
