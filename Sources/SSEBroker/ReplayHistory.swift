import NIOCore

/// The latest published events, already encoded, for `Last-Event-ID` replay. Bounded by count and
/// by bytes. Not thread-safe: the broker keeps it under its lock.
struct ReplayHistory {
    struct Entry {
        var id: UInt64
        var target: String?
        var encoded: ByteBuffer
    }

    private var entries: CircularBuffer<Entry>
    private var bytes = 0
    let maxCount: Int
    let maxBytes: Int

    init(maxCount: Int, maxBytes: Int) {
        self.maxCount = maxCount
        self.maxBytes = maxBytes
        self.entries = CircularBuffer(initialCapacity: min(max(maxCount, 1), 1024))
    }

    var count: Int { self.entries.count }

    mutating func append(id: UInt64, target: String?, encoded: ByteBuffer) {
        guard self.maxCount > 0 else { return }
        self.entries.append(Entry(id: id, target: target, encoded: encoded))
        self.bytes += encoded.readableBytes
        while self.entries.count > self.maxCount || (self.bytes > self.maxBytes && self.entries.count > 1) {
            self.bytes -= self.entries.removeFirst().encoded.readableBytes
        }
    }

    /// The events after `lastEventID` that `clientID` should see, oldest first: broadcasts and the
    /// events targeted at it. An id newer than anything kept (say, from before a restart) replays
    /// nothing; one older than the oldest kept replays everything kept.
    func events(after lastEventID: UInt64, for clientID: String) -> [ByteBuffer] {
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
            if entry.target == nil || entry.target == clientID {
                result.append(entry.encoded)
            }
            index = self.entries.index(after: index)
        }
        return result
    }
}
