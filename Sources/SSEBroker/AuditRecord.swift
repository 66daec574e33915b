import Foundation

/// One state-changing action, as the broker reports it to its ``AuditSink``: a publish
/// (`broadcast`, `broadcastTo`), a `kick`, a `ban` or an `unban`. Only actions that took effect are
/// recorded (a kick of an id nobody has changes nothing).
///
/// A publish is recorded on the publisher's event loop for every event, so its record keeps its
/// fields as they are (a few references and integers) and builds the ``arguments`` dictionary, with
/// its number-to-string conversions, only when something reads them: the audit writer's thread, the
/// console's `audit` view. Built eagerly, that dictionary was the largest single cost of a targeted
/// publish after the socket work (measured with perf on the targeted workload).
public struct AuditRecord: Sendable {
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
    public var arguments: [String: String] {
        get {
            switch self.storage {
            case .arguments(let arguments): return arguments
            case .publish(let publish): return publish.arguments
            }
        }
        set { self.storage = .arguments(newValue) }
    }

    private var storage: Storage

    private enum Storage: Sendable {
        case arguments([String: String])
        case publish(Publish)
    }

    /// A publish's arguments as values, formatted when read.
    private struct Publish: Sendable {
        var type: String?
        var client: String?
        var bytes: Int
        var eventID: UInt64
        var recipients: Int

        var arguments: [String: String] {
            var arguments = [
                "bytes": String(self.bytes), "eventId": String(self.eventID), "recipients": String(self.recipients),
            ]
            if let type = self.type { arguments["type"] = type }
            if let client = self.client { arguments["client"] = client }
            return arguments
        }
    }

    public init(
        time: Date = Date(), action: String, origin: String, remoteAddress: String? = nil, node: String? = nil,
        arguments: [String: String]
    ) {
        self.time = time
        self.action = action
        self.origin = origin
        self.remoteAddress = remoteAddress
        self.node = node
        self.storage = .arguments(arguments)
    }

    /// A publish that took effect: `broadcastTo` with a `client`, else `broadcast`. Costs no
    /// allocation of its own; ``arguments`` are formatted when read.
    init(
        publishOfType type: String?, to client: String?, bytes: Int, eventID: UInt64, recipients: Int,
        origin: String, remoteAddress: String?
    ) {
        self.time = Date()
        self.action = client == nil ? "broadcast" : "broadcastTo"
        self.origin = origin
        self.remoteAddress = remoteAddress
        self.node = nil
        self.storage = .publish(
            Publish(type: type, client: client, bytes: bytes, eventID: eventID, recipients: recipients)
        )
    }
}

extension AuditRecord: Hashable {
    public static func == (lhs: AuditRecord, rhs: AuditRecord) -> Bool {
        lhs.time == rhs.time && lhs.action == rhs.action && lhs.origin == rhs.origin
            && lhs.remoteAddress == rhs.remoteAddress && lhs.node == rhs.node && lhs.arguments == rhs.arguments
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.time)
        hasher.combine(self.action)
        hasher.combine(self.origin)
        hasher.combine(self.remoteAddress)
        hasher.combine(self.node)
        hasher.combine(self.arguments)
    }
}

extension AuditRecord: Codable {
    private enum CodingKeys: String, CodingKey {
        case time, action, origin, remoteAddress, node, arguments
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            time: try container.decode(Date.self, forKey: .time),
            action: try container.decode(String.self, forKey: .action),
            origin: try container.decode(String.self, forKey: .origin),
            remoteAddress: try container.decodeIfPresent(String.self, forKey: .remoteAddress),
            node: try container.decodeIfPresent(String.self, forKey: .node),
            arguments: try container.decode([String: String].self, forKey: .arguments)
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.time, forKey: .time)
        try container.encode(self.action, forKey: .action)
        try container.encode(self.origin, forKey: .origin)
        try container.encodeIfPresent(self.remoteAddress, forKey: .remoteAddress)
        try container.encodeIfPresent(self.node, forKey: .node)
        try container.encode(self.arguments, forKey: .arguments)
    }
}

/// Where a ``Broker`` reports what changed its state.
///
/// ``record(_:)`` is called on the thread that acted — an event loop for an HTTP publish — so it
/// must never block: queue the record and write it elsewhere. Reading a publish's
/// ``AuditRecord/arguments`` formats them: do that off the acting thread too.
public protocol AuditSink: Sendable {
    func record(_ record: AuditRecord)
}
