import Foundation

/// One state-changing action, as the broker reports it to its ``AuditSink``: a publish
/// (`broadcast`, `broadcastTo`), a `kick`, a `ban` or an `unban`. Only actions that took effect are
/// recorded (a kick of an id nobody has changes nothing).
public struct AuditRecord: Sendable, Hashable, Codable {
    /// When the action took effect.
    public var time: Date
    /// `broadcast`, `broadcastTo`, `kick`, `ban` or `unban`.
    public var action: String
    /// Who asked: `console`, `http`, `api` (``ActionOrigin/name``, or the event's origin).
    public var origin: String
    /// The peer of an HTTP request.
    public var remoteAddress: String?
    /// The cluster node it happened on (filled by the sink, which knows it); `nil` stand-alone.
    public var node: String?
    /// The action's arguments and result: `client`, `type`, `bytes`, `eventId`, `recipients`,
    /// `duration`, `closed`, `nodes`.
    public var arguments: [String: String]

    public init(
        time: Date = Date(), action: String, origin: String, remoteAddress: String? = nil, node: String? = nil,
        arguments: [String: String]
    ) {
        self.time = time
        self.action = action
        self.origin = origin
        self.remoteAddress = remoteAddress
        self.node = node
        self.arguments = arguments
    }
}

/// Where a ``Broker`` reports what changed its state.
///
/// ``record(_:)`` is called on the thread that acted — an event loop for an HTTP publish — so it
/// must never block: queue the record and write it elsewhere.
public protocol AuditSink: Sendable {
    func record(_ record: AuditRecord)
}
