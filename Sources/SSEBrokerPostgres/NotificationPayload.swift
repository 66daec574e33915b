import Foundation
import NIOCore
import SSEBroker

/// The text a node sends with `NOTIFY` for each event it commits.
///
/// `NOTIFY` payloads are text (no NUL, valid UTF-8) of less than 8,000 bytes. An event that fits is
/// carried whole, so the other nodes need no query to deliver it:
///
///     <id> US <target> US <type> US <origin> US <data…>
///
/// (US is the unit separator, U+001F, which validation keeps out of ids and types; the data is last
/// and may contain anything that fits.) An event that does not fit is announced by id only, `<id>`,
/// and each node reads it from the events table.
///
/// A kick, ban or unban made on one node is announced on the same channel, so it reaches every node
/// on the connection that already listens, starting with a separator (which no event payload does;
/// an earlier version ignores it, with a warning):
///
///     US kick US <node> US <client>
///     US ban US <node> US <client> US <until, Unix seconds, or empty> US <set at> US <set by>
///     US unban US <node> US <client>
enum NotificationPayload: Equatable {
    case event(LoggedEvent)
    case reference(UInt64)
    case control(ControlMessage)

    /// A kick, ban or unban, from `node`.
    enum ControlMessage: Equatable {
        case kick(node: String, clientID: String)
        case ban(node: String, Ban)
        case unban(node: String, clientID: String)

        var node: String {
            switch self {
            case .kick(let node, _), .ban(let node, _), .unban(let node, _): node
            }
        }
    }

    /// The payload announcing `message`. Control characters in the free text (`set by`) are dropped.
    static func encode(_ message: ControlMessage) -> String {
        let us = "\u{1F}"
        func clean(_ text: String) -> String {
            String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }))
        }
        switch message {
        case .kick(let node, let clientID):
            return us + "kick" + us + clean(node) + us + clientID
        case .unban(let node, let clientID):
            return us + "unban" + us + clean(node) + us + clientID
        case .ban(let node, let ban):
            let until = ban.until.map { String($0.timeIntervalSince1970) } ?? ""
            return us + "ban" + us + clean(node) + us + ban.clientID + us + until + us + String(ban.setAt.timeIntervalSince1970)
                + us + String(clean(ban.setBy).prefix(512))
        }
    }

    private static func decodeControl(_ payload: String) -> ControlMessage? {
        let fields = payload.split(separator: "\u{1F}", omittingEmptySubsequences: false).dropFirst().map(String.init)
        guard fields.count >= 3, !fields[2].isEmpty else { return nil }
        switch fields[0] {
        case "kick" where fields.count == 3: return .kick(node: fields[1], clientID: fields[2])
        case "unban" where fields.count == 3: return .unban(node: fields[1], clientID: fields[2])
        case "ban" where fields.count == 6:
            guard let setAt = Double(fields[4]) else { return nil }
            var until: Date?
            if !fields[3].isEmpty {
                guard let seconds = Double(fields[3]) else { return nil }
                until = Date(timeIntervalSince1970: seconds)
            }
            let ban = Ban(
                clientID: fields[2], until: until, setAt: Date(timeIntervalSince1970: setAt), setBy: fields[5], node: fields[1]
            )
            return .ban(node: fields[1], ban)
        default: return nil
        }
    }

    /// Payloads must stay below PostgreSQL's 8,000-byte limit.
    static let maxBytes = 7_999
    private static let separator = UInt8(0x1F)

    /// The payload announcing `event`: the event itself when it fits, else its id.
    static func encode(_ event: LoggedEvent) -> String {
        String(event.id) + self.suffix(type: event.type, target: event.target, origin: event.origin, data: event.data)
    }

    /// What follows the id in the payload: empty when the event does not fit (or is not text), so
    /// it is announced by id. The id is not known yet when the publisher builds this (the database
    /// draws it), so room is left for the longest one.
    static func suffix(type: String?, target: String?, origin: EventOrigin, data: ByteBuffer) -> String {
        let origin = origin.rawValue.unicodeScalars.contains { $0.value < 0x20 } ? "?" : origin.rawValue
        let head = "\u{1F}\(target ?? "")\u{1F}\(type ?? "")\u{1F}\(origin)\u{1F}"
        let bytes = data.readableBytesView
        guard self.longestID + head.utf8.count + bytes.count <= self.maxBytes, !bytes.contains(0),
            let text = String(validating: bytes, as: UTF8.self)
        else { return "" }
        return head + text
    }

    /// Digits in the largest id (`Int64.max`, the sequence's limit).
    private static let longestID = String(Int64.max).utf8.count

    /// Parses a payload; `nil` for one this version does not understand.
    static func decode(_ payload: String) -> NotificationPayload? {
        let utf8 = payload.utf8
        if utf8.first == self.separator {
            return self.decodeControl(payload).map(NotificationPayload.control)
        }
        guard let firstSeparator = utf8.firstIndex(of: self.separator) else {
            return UInt64(payload).map(NotificationPayload.reference)
        }
        var fields: [Substring.UTF8View] = []
        var start = utf8.startIndex
        var index = firstSeparator
        while fields.count < 4 {
            guard let end = utf8[start...].firstIndex(of: self.separator) else { return nil }
            fields.append(Substring(payload)[start..<end].utf8)
            start = utf8.index(after: end)
            index = start
        }
        guard let id = UInt64(Substring(fields[0])) else { return nil }
        let target = Substring(fields[1])
        let type = Substring(fields[2])
        let origin = Substring(fields[3])
        return .event(
            LoggedEvent(
                id: id,
                type: type.isEmpty ? nil : String(type),
                data: ByteBuffer(bytes: utf8[index...]),
                target: target.isEmpty ? nil : String(target),
                origin: EventOrigin(rawValue: String(origin))
            )
        )
    }
}
