import Foundation
import SSEBroker

/// A verified subscriber token.
public struct SubscriberToken: Sendable, Equatable {
    /// The client id the token was issued for (its `sub` claim).
    public var subject: String
    /// When it stops being valid (its `exp` claim); the stream is closed then.
    public var expiresAt: Date?
    /// The topics it may subscribe to (its `topics` claim); `nil`: any. A connection that asks for
    /// none gets exactly these.
    public var topics: [Topic]?

    public init(subject: String, expiresAt: Date? = nil, topics: [Topic]? = nil) {
        self.subject = subject
        self.expiresAt = expiresAt
        self.topics = topics
    }
}

/// Why a subscriber token was refused.
public enum SubscriberTokenError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    case unsupportedAlgorithm(String)
    case badSignature
    case expired(Date)
    case notYetValid(Date)
    case invalidSubject(String)

    public var description: String {
        switch self {
        case .malformed(let reason): "malformed token: \(reason)"
        case .unsupportedAlgorithm(let alg): "unsupported token algorithm \"\(alg)\" (only HS256 is accepted)"
        case .badSignature: "the token's signature does not match"
        case .expired(let date): "the token expired at \(Self.format(date))"
        case .notYetValid(let date): "the token is not valid before \(Self.format(date))"
        case .invalidSubject(let reason): "the token's subject is not a valid client id: \(reason)"
        }
    }

    private static func format(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
