import Foundation
import NIOCore
import SSEBroker
import SSEConsoleCore

/// The events the console saw last (through ``Broker/listen()``), for the drill-down views: the
/// event detail's whole data, and a client detail's last deliveries, derived from these events,
/// the client's topics and target, and when it connected — so the broker records nothing per
/// delivery for the console.
///
/// Bounded by count (``capacity``) and by the bytes of data it keeps (``maxDataBytes``); each
/// event keeps at most ``EventDetailView/maxDataBytes`` of its data. Older events keep their
/// metadata after their data is dropped. Filled by the feed's listener task, read by the UI thread.
final class RecentEvents: Sendable {
    struct Record: Sendable {
        var id: UInt64
        var time: Double
        /// As topics see it: `message` for an untyped event.
        var type: String
        var target: String?
        var size: Int
        /// Its first ``EventDetailView/maxDataBytes`` bytes, until the byte budget drops it.
        var data: [UInt8]?
    }

    private struct Store {
        var records = CircularBuffer<Record>(initialCapacity: 1024)
        var dataBytes = 0
        /// Index in `records` of the oldest record that still has its data.
        var oldestWithData = 0
    }

    let capacity: Int
    let maxDataBytes: Int
    private let store = Locked(Store())

    init(capacity: Int = 10_000, maxDataBytes: Int = 16 * 1024 * 1024) {
        self.capacity = capacity
        self.maxDataBytes = maxDataBytes
    }

    func record(_ event: Event, at time: Double) {
        guard let id = event.id else { return }
        let kept = Array(event.data.readableBytesView.prefix(EventDetailView.maxDataBytes))
        // As topics see it: no type (or an empty one) is `message`.
        let type = event.type.flatMap { $0.isEmpty ? nil : $0 } ?? Topic.untypedEventType
        let record = Record(
            id: id, time: time, type: type, target: event.target, size: event.data.readableBytes, data: kept)
        self.store.withLock { store in
            if store.records.count == self.capacity {
                let evicted = store.records.removeFirst()
                store.dataBytes -= evicted.data?.count ?? 0
                store.oldestWithData = max(0, store.oldestWithData - 1)
            }
            store.records.append(record)
            store.dataBytes += kept.count
            // Over budget: drop the data of the oldest events (their metadata stays).
            while store.dataBytes > self.maxDataBytes && store.oldestWithData < store.records.count - 1 {
                let index = store.records.index(store.records.startIndex, offsetBy: store.oldestWithData)
                store.dataBytes -= store.records[index].data?.count ?? 0
                store.records[index].data = nil
                store.oldestWithData += 1
            }
        }
    }

    /// The data of event `id` (cut at ``EventDetailView/maxDataBytes``) and its full size, or `nil`
    /// when it is no longer kept.
    func data(of id: UInt64) -> (text: String, totalBytes: Int)? {
        self.store.withLock { store in
            // Ids increase: binary search.
            var low = 0
            var high = store.records.count
            while low < high {
                let middle = (low + high) / 2
                if store.records[store.records.index(store.records.startIndex, offsetBy: middle)].id < id {
                    low = middle + 1
                } else {
                    high = middle
                }
            }
            guard low < store.records.count else { return nil }
            let record = store.records[store.records.index(store.records.startIndex, offsetBy: low)]
            guard record.id == id, let data = record.data else { return nil }
            return (String(decoding: data, as: UTF8.self), record.size)
        }
    }

    /// The newest `limit` events a connection of `client` with `topics`, connected at
    /// `connectedAt`, was sent, newest first: live ones after it connected, and — when it resumed —
    /// the `replayed` newest ones before that, after the id it resumed from. The broker does not
    /// record deliveries one by one: events it missed are among these (the client detail marks
    /// the misses the broker recorded, its last few, and says when older ones may be listed).
    /// `until`: when the connection ended, if it did.
    func deliveries(
        client: String, topics: TopicFilter, connectedAt: Double, resumedFrom: UInt64?, replayed: Int, limit: Int,
        until: Double = .infinity
    ) -> [ClientDetail.Delivery] {
        self.store.withLock { store in
            var result: [ClientDetail.Delivery] = []
            var replayLeft = replayed
            for record in store.records.reversed() {
                guard result.count < limit else { break }
                guard record.time <= until, record.target == nil || record.target == client, topics.matches(record.type)
                else { continue }
                if record.time >= connectedAt {
                    result.append(.init(time: record.time, eventID: record.id, type: record.type, size: record.size))
                } else if replayLeft > 0, let after = resumedFrom, record.id > after {
                    replayLeft -= 1
                    result.append(
                        .init(time: record.time, eventID: record.id, type: record.type, size: record.size, replayed: true))
                } else if replayLeft == 0 {
                    break
                }
            }
            return result
        }
    }
}
