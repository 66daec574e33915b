import Foundation
import NIOCore

/// What a resume (`Last-Event-ID`) found: whether every event after the client's id could be
/// replayed. Sent as the `SSE-Replay` response header; a gap is also announced in the stream by an
/// `sse-gap` event before the replayed ones, so an `EventSource` app can refetch its state.
public enum ReplayStatus: Sendable, Hashable {
    /// Every event after the requested id that this client may see is replayed.
    case complete
    /// The broker cannot prove that nothing was missed: the id is older than the oldest event kept,
    /// from before a restart that lost events, unknown, or not an id of this broker. What is kept
    /// after it is still replayed.
    /// - Parameter oldestID: the oldest event the broker still has, if any.
    case gap(oldestID: UInt64?)

    /// The `SSE-Replay` header's value: `complete` or `gap`.
    public var headerValue: String {
        switch self {
        case .complete: "complete"
        case .gap: "gap"
        }
    }

    /// The `sse-gap` event announcing a gap to the client (no `id:`, so the client's last event id
    /// stays what it sent): `data` is `{"lastEventId":"…","newestId":"…","oldestId":"…"|null}`.
    static func gapEvent(lastEventID: String, oldestID: UInt64?, newestID: UInt64) -> ByteBuffer {
        let gap = Gap(lastEventId: lastEventID, newestId: String(newestID), oldestId: oldestID.map(String.init))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Three strings cannot fail to encode; should it ever, the client still learns of the gap.
        let json = (try? encoder.encode(gap)) ?? Data(#"{"lastEventId":null,"oldestId":null}"#.utf8)
        var event = EventEncoder.encodeFields(type: "sse-gap", data: ByteBuffer(bytes: json))
        event.writeInteger(UInt8(ascii: "\n"))  // the blank line that ends an event without an id
        return event
    }

    private struct Gap: Encodable {
        var lastEventId: String
        var newestId: String
        var oldestId: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.lastEventId, forKey: .lastEventId)
            try container.encode(self.newestId, forKey: .newestId)
            try container.encode(self.oldestId, forKey: .oldestId)  // null, not omitted
        }

        private enum CodingKeys: String, CodingKey {
            case lastEventId, newestId, oldestId
        }
    }
}
