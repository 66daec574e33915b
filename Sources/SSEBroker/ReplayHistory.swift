import Foundation
import NIOCore

/// The latest published events, already encoded, for `Last-Event-ID` replay. Bounded by count and
/// by bytes. Not thread-safe: the broker keeps it under its lock.
///
/// It also knows how far back it is complete (``horizon``): every event with a higher id is kept,
/// any at or below it may be lost (evicted, published before this process started, or lost in a
/// crash). That is what makes a resume decidable (``ReplayStatus``).
struct ReplayHistory {
    struct Entry {
        var id: UInt64
        /// The event's type as topics see it (``TopicFilter/normalize(_:)``: `message` for none).
        var type: String
        var target: String?
        var encoded: ByteBuffer
    }

    /// What a resume gets: the events to write, oldest first, and whether they are all it missed.
    struct Replay {
        var events: [ByteBuffer] = []
        var status: ReplayStatus?
    }

    private var entries: CircularBuffer<Entry>
    private var bytes = 0
    let maxCount: Int
    let maxBytes: Int
    /// Every event with a higher id is kept; one at or below it may be lost.
    private(set) var horizon: UInt64

    /// - Parameter horizon: the id the broker's events start after: what came before is unknown.
    init(maxCount: Int, maxBytes: Int, horizon: UInt64) {
        self.maxCount = maxCount
        self.maxBytes = maxBytes
        self.horizon = horizon
        self.entries = CircularBuffer(initialCapacity: min(max(maxCount, 1), 1024))
    }

    var count: Int { self.entries.count }

    /// The oldest event kept.
    var oldestID: UInt64? { self.entries.first?.id }

    mutating func append(id: UInt64, type: String = Topic.untypedEventType, target: String?, encoded: ByteBuffer) {
        guard self.maxCount > 0 else {
            self.horizon = id
            return
        }
        self.entries.append(Entry(id: id, type: type, target: target, encoded: encoded))
        self.bytes += encoded.readableBytes
        while self.entries.count > self.maxCount || (self.bytes > self.maxBytes && self.entries.count > 1) {
            let evicted = self.entries.removeFirst()
            self.bytes -= evicted.encoded.readableBytes
            self.horizon = evicted.id
        }
    }

    /// Starts over from restored events (oldest first): what came before the first is unknown,
    /// and so is anything after `lostAfter` up to `floor` (ids handed out by a run that crashed
    /// before storing them).
    mutating func restart(from events: [Entry], floor: UInt64) {
        self.entries.removeAll()
        self.bytes = 0
        self.horizon = events.first.map { $0.id - 1 } ?? floor
        for event in events {
            self.append(id: event.id, type: event.type, target: event.target, encoded: event.encoded)
        }
        if let last = events.last, floor > last.id {
            self.horizon = floor
        }
    }

    /// The events after `lastEventID` that `clientID` should see, oldest first (broadcasts and the
    /// events targeted at it, of the types `topics` match), and whether that is everything it missed.
    /// - Parameters:
    ///   - lastEventID: what the client sent, as it sent it; `nil` for a first connect.
    ///   - newestID: the id of the newest event published.
    ///   - idsAheadAreLive: in a cluster an id above `newestID` is one this node has yet to deliver
    ///     (it will, live), not an unknown one.
    func replay(
        after lastEventID: String?,
        newestID: UInt64,
        for clientID: String,
        topics: TopicFilter,
        idsAheadAreLive: Bool
    ) -> Replay {
        guard let lastEventID else { return Replay() }
        guard let after = UInt64(lastEventID.trimmingCharacters(in: .whitespaces)) else {
            // Not one of ours: nothing to resume from; the client is told to refetch instead.
            return Replay(status: .gap(oldestID: self.oldestID))
        }
        if after > newestID {
            return Replay(status: idsAheadAreLive ? .complete : .gap(oldestID: self.oldestID))
        }
        let status: ReplayStatus = after >= self.horizon ? .complete : .gap(oldestID: self.oldestID)
        return Replay(events: self.events(after: after, for: clientID, topics: topics), status: status)
    }

    func events(after lastEventID: UInt64, for clientID: String, topics: TopicFilter = .everything) -> [ByteBuffer] {
        // Ids are increasing: binary search for the first entry past lastEventID.
        var low = 0
        var high = self.entries.count
        while low < high {
            let middle = (low + high) / 2
            if self.entries[self.entries.index(self.entries.startIndex, offsetBy: middle)].id <= lastEventID {
                low = middle + 1
            } else {
                high = middle
            }
        }
        var result: [ByteBuffer] = []
        var index = self.entries.index(self.entries.startIndex, offsetBy: low)
        while index != self.entries.endIndex {
            let entry = self.entries[index]
            if entry.target == nil || entry.target == clientID, topics.matches(normalized: entry.type) {
                result.append(entry.encoded)
            }
            index = self.entries.index(after: index)
        }
        return result
    }
}
