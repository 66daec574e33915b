import Crypto
import NIOConcurrencyHelpers
import NIOCore
import SSEBroker

/// Remembers the answers of `POST /broadcast` requests made with an `Idempotency-Key` header
/// (IETF draft-ietf-httpapi-idempotency-key-header), so a retried request publishes nothing and
/// gets the first answer again.
///
/// - A key is remembered for ``window`` after its first request (default 24 hours), and at most
///   ``capacity`` keys are kept (default 10,000, about 2 MB): past that the oldest is forgotten first.
///   Publishes in flight are never forgotten, so the bound is `capacity` plus the publishes in flight.
/// - Only successful publishes (`202`) are remembered. A refused or failed one forgets its key, so a
///   retry tries again; requests that arrived while it was in flight get the same refusal.
/// - Each key carries a fingerprint of its request (``fingerprint(of:body:)``); the same key with
///   another fingerprint is refused with `422` (``BrokerError/idempotencyKeyReused(_:)``).
///
/// One store serves a whole server (``BrokerServer`` makes one); every operation takes one short
/// lock of its own (never the broker's) and is O(1) amortised. Thread-safe.
public final class IdempotencyStore: Sendable {
    /// How long a key is remembered.
    public let window: Duration
    /// How many keys are remembered at most.
    public let capacity: Int

    /// The longest key accepted, in bytes.
    public static let maxKeyBytes = 255

    /// What ``begin(_:)`` decided.
    public enum Admission: Sendable {
        /// The first request with this key: publish, then call ``finish(_:with:)``.
        case proceed
        /// The key's publish is done: answer with its delivery (`Idempotent-Replayed: true`).
        case replay(Delivery)
        /// The key's publish is in flight: its result completes this future.
        case wait(EventLoopFuture<Result<Delivery, BrokerError>>)
        /// The key was used with another request.
        case mismatch(BrokerError)
    }

    private enum Status {
        case inFlight([EventLoopPromise<Result<Delivery, BrokerError>>])
        case done(Delivery)
    }

    private struct Entry {
        var fingerprint: String
        /// Tells this entry from an earlier one with the same key in ``State/order``.
        var generation: UInt64
        var status: Status
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Keys in the order they were first seen, with their generation and deadline; an item whose
        /// generation no longer matches its entry was forgotten already and is skipped.
        var order = CircularBuffer<(key: String, generation: UInt64, expires: NIODeadline)>()
        var generations: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())

    /// - Parameters:
    ///   - window: how long a key is remembered after its first request. Default 24 hours.
    ///   - capacity: the most keys remembered; the oldest is forgotten first. Default 10,000.
    /// - Throws: ``BrokerError/invalidConfiguration(_:)`` for a window that is not positive or a capacity below 1.
    public init(window: Duration = .seconds(24 * 3600), capacity: Int = 10_000) throws(BrokerError) {
        guard window > .zero else { throw .invalidConfiguration("the idempotency window must be positive (got \(window))") }
        guard capacity >= 1 else { throw .invalidConfiguration("the idempotency capacity must be at least 1 (got \(capacity))") }
        self.window = window
        self.capacity = capacity
    }

    /// Checks the value of an `Idempotency-Key` header: 1 to ``maxKeyBytes`` printable ASCII
    /// characters (a structured-field string's contents; surrounding quotes are removed).
    /// - Returns: the key.
    /// - Throws: ``BrokerError/invalidParameter(_:)`` naming the problem.
    public static func validateKey(_ value: String) throws(BrokerError) -> String {
        var key = Substring(value)
        // The draft defines the header as an sf-string ("..."); bare tokens are common in practice.
        if key.count >= 2, key.hasPrefix("\""), key.hasSuffix("\"") {
            key = key.dropFirst().dropLast()
        }
        guard !key.isEmpty else { throw .invalidParameter("the Idempotency-Key header is empty") }
        guard key.utf8.count <= Self.maxKeyBytes else {
            throw .invalidParameter(
                "the Idempotency-Key header is \(key.utf8.count) bytes long; the limit is \(Self.maxKeyBytes)"
            )
        }
        if let offset = key.utf8.firstIndex(where: { $0 < 0x20 || $0 > 0x7E }) {
            let position = key.utf8.distance(from: key.utf8.startIndex, to: offset) + 1
            throw .invalidParameter("the Idempotency-Key header must be printable ASCII; byte \(position) is not")
        }
        return String(key)
    }

    /// A digest of what a `POST /broadcast` asks for: its type, its target and its body (not how the
    /// query string was spelled). Hex SHA-256, so it is the same on every node of a cluster.
    public static func fingerprint(of request: BroadcastRequest, body: ByteBuffer) -> String {
        var hasher = SHA256()
        // Types and ids cannot contain NUL (Validation refuses control characters): unambiguous.
        hasher.update(data: Array("broadcast\u{0}\(request.type ?? "")\u{0}\(request.clientID ?? "")\u{0}".utf8))
        body.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize().map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// Claims `key` for a request, or tells how to answer it.
    /// - Parameter eventLoop: where a waiting request's future completes.
    public func begin(_ key: IdempotencyKey, on eventLoop: any EventLoop) -> Admission {
        let now = NIODeadline.now()
        return self.state.withLockedValue { state -> Admission in
            self.evict(&state, now: now, makingRoom: false)
            if let entry = state.entries[key.key] {
                guard entry.fingerprint == key.fingerprint else {
                    return .mismatch(
                        .idempotencyKeyReused(
                            "the Idempotency-Key \"\(key.key)\" was already used with a different request "
                                + "(another event type, target or body); use a new key for a new event"
                        )
                    )
                }
                switch entry.status {
                case .done(let delivery):
                    return .replay(delivery)
                case .inFlight(var waiters):
                    let promise = eventLoop.makePromise(of: Result<Delivery, BrokerError>.self)
                    waiters.append(promise)
                    state.entries[key.key]!.status = .inFlight(waiters)
                    return .wait(promise.futureResult)
                }
            }
            self.evict(&state, now: now, makingRoom: true)
            state.generations += 1
            let generation = state.generations
            state.entries[key.key] = Entry(fingerprint: key.fingerprint, generation: generation, status: .inFlight([]))
            state.order.append((key.key, generation, now + TimeAmount(self.window)))
            return .proceed
        }
    }

    /// Records the outcome of the publish ``begin(_:on:)`` let `key` make, and answers the requests
    /// that waited for it. A success is remembered; a failure forgets the key.
    public func finish(_ key: IdempotencyKey, with result: Result<Delivery, BrokerError>) {
        let waiters = self.state.withLockedValue { state -> [EventLoopPromise<Result<Delivery, BrokerError>>] in
            guard let entry = state.entries[key.key], case .inFlight(let waiters) = entry.status else { return [] }
            switch result {
            case .success(let delivery): state.entries[key.key]!.status = .done(delivery)
            case .failure: state.entries[key.key] = nil
            }
            return waiters
        }
        for waiter in waiters {
            waiter.succeed(result)
        }
    }

    /// How many keys are remembered (done or in flight).
    public var count: Int {
        self.state.withLockedValue { $0.entries.count }
    }

    /// Forgets expired keys and, to make room for one more (`makingRoom`), the oldest finished ones
    /// past the capacity. A publish in flight keeps its key (and the ones after it) until it finishes.
    /// The capacity counts the items of `order`, forgotten ones too, so `order` is bounded as well.
    private func evict(_ state: inout State, now: NIODeadline, makingRoom: Bool) {
        while let oldest = state.order.first {
            guard let entry = state.entries[oldest.key], entry.generation == oldest.generation else {
                state.order.removeFirst()  // forgotten already (a failed publish)
                continue
            }
            guard oldest.expires <= now || (makingRoom && state.order.count >= self.capacity) else { return }
            if case .inFlight = entry.status { return }
            state.entries[oldest.key] = nil
            state.order.removeFirst()
        }
    }
}
