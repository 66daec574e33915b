import Foundation
import Logging
import NIOEmbedded
import SSETestSupport
import Testing

@testable import SSEBroker

/// A publish's audit record keeps its fields as values and formats its arguments when read: it must
/// read, compare, hash and encode exactly as a record built with a dictionary does.
@Suite struct AuditRecordTests {
    final class CollectingSink: AuditSink, @unchecked Sendable {
        let records = Locked<[AuditRecord]>([])
        func record(_ record: AuditRecord) { self.records.withLock { $0.append(record) } }
    }

    @Test func publishRecord_readsComparesAndEncodesLikeADictionaryRecord() throws {
        let sink = CollectingSink()
        let broker = try Broker(
            configuration: .predictable, logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }), audit: sink)
        let loop = EmbeddedEventLoop()
        let alice = try RecordingTransport.subscribed(to: broker, "alice", on: loop)
        try broker.broadcast(Event(type: "price", data: "42", origin: .console))
        try broker.broadcast(Event(data: "hello", origin: .http).from("10.0.0.7:53012"), to: "alice")
        loop.run()
        _ = alice

        let records = sink.records.withLock { $0 }
        try #require(records.count == 2)
        #expect(records.map(\.action) == ["broadcast", "broadcastTo"])
        #expect(records.map(\.origin) == ["console", "http"])
        #expect(records.map(\.remoteAddress) == [nil, "10.0.0.7:53012"])
        #expect(records[0].arguments == ["type": "price", "bytes": "2", "eventId": "1", "recipients": "1"])
        #expect(records[1].arguments == ["client": "alice", "bytes": "5", "eventId": "2", "recipients": "1"])

        let eager = AuditRecord(
            time: records[1].time, action: "broadcastTo", origin: "http", remoteAddress: "10.0.0.7:53012",
            arguments: ["client": "alice", "bytes": "5", "eventId": "2", "recipients": "1"]
        )
        #expect(records[1] == eager)
        #expect(records[1].hashValue == eager.hashValue)
        #expect(records[0] != eager)

        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(try encoder.encode(records[1]) == encoder.encode(eager))
        let decoded = try JSONDecoder().decode(AuditRecord.self, from: encoder.encode(records[1]))
        #expect(decoded == eager)

        // Setting the arguments replaces the formatted ones.
        var changed = records[1]
        changed.arguments["note"] = "x"
        #expect(changed.arguments == ["client": "alice", "bytes": "5", "eventId": "2", "recipients": "1", "note": "x"])
        #expect(changed != records[1])
    }

    @Test func noAuditSink_publishesAsBefore() throws {
        let broker = try Broker()
        let loop = EmbeddedEventLoop()
        let alice = try RecordingTransport.subscribed(to: broker, "alice", on: loop)
        let delivery = try broker.broadcast(Event(data: "x"), to: "alice")
        loop.run()
        #expect(delivery.recipients == 1)
        #expect(alice.dataLines == ["x"])
        #expect(throws: BrokerError.unknownClient("bob")) { try broker.broadcast(Event(data: "x"), to: "bob") }
        #expect(broker.backplane == nil)
    }
}
