import Foundation
import NIOEmbedded
import Synchronization
import Testing

@testable import SSEBroker

/// What a connection's `ClientInfo` tells the console's client detail beyond the counters: the
/// resume, the token, the protocol and the last misses with their reasons.
@Suite struct ClientDiagnosticsTests {
    let loop = EmbeddedEventLoop()

    @Test func firstConnect_hasNoResume_noToken_noErrors_andHTTP11() throws {
        let broker = try Broker()
        _ = try RecordingTransport.subscribed(to: broker, "a", on: self.loop)
        let info = try #require(broker.clients.first)
        #expect(info.resumedFrom == nil && info.replayedEvents == 0)
        #expect(info.tokenSubject == nil && info.tokenExpiresAt == nil)
        #expect(info.recentErrors.isEmpty && info.httpVersion == "HTTP/1.1" && info.userAgent == "test")
    }

    @Test func resume_recordsTheLastEventIDAndHowManyWereReplayed() throws {
        let broker = try Broker()
        for n in 1...5 { try broker.broadcast(Event(type: n % 2 == 0 ? "even" : "odd", data: "\(n)")) }
        _ = try RecordingTransport.subscribed(to: broker, "all", lastEventID: "2", on: self.loop)
        _ = try RecordingTransport.subscribed(to: broker, "odd", lastEventID: "2", topics: ["odd"], on: self.loop)
        let byID = Dictionary(uniqueKeysWithValues: broker.clients.map { ($0.clientID, $0) })
        #expect(byID["all"]?.resumedFrom == "2" && byID["all"]?.replayedEvents == 3)
        #expect(byID["odd"]?.resumedFrom == "2" && byID["odd"]?.replayedEvents == 2)
    }

    @Test func token_isShownOnceRecorded() throws {
        let broker = try Broker()
        let client = try RecordingTransport.subscribed(to: broker, "alice", on: self.loop)
        let expiry = Date(timeIntervalSince1970: 2_000_000_000)
        client.subscription?.recordToken(subject: "alice", expiresAt: expiry)
        let info = try #require(broker.clients.first)
        #expect(info.tokenSubject == "alice" && info.tokenExpiresAt == expiry)
    }

    @Test func misses_keepTheLatestWithTheirReason_boundedPerConnection() throws {
        let broker = try Broker(configuration: BrokerConfiguration(writeTimeout: .zero, tolerance: 100))
        let client = try RecordingTransport.subscribed(to: broker, "slow", on: self.loop)
        client.subscription?.writabilityChanged(isWritable: false)
        client.bufferedBytes = 4_096
        let ids = try (1...12).map { n in try broker.broadcast(Event(data: String(repeating: "x", count: n))).eventID }
        self.loop.run()
        let info = try #require(broker.clients.first)
        #expect(info.totalErrors == 12)
        #expect(info.recentErrors.count == Subscription.recentErrorLimit)
        let last = try #require(info.recentErrors.last)
        #expect(last.eventID == ids[11] && last.consecutive == 12 && last.backlogBytes == 4_096)
        #expect(last.description.contains("4096 bytes queued") && last.description.contains("(12 in a row)"))
        #expect(info.recentErrors.first?.eventID == ids[4])
    }
}

extension ClientDiagnosticsTests {
    /// The console snapshots `clients` four times a second; the diagnostics add one uncontended lock
    /// per connection to it. Prints what 10,000 connections cost (debug build) for the record.
    @Test func snapshotOfTenThousandConnections_carriesEachOnesDiagnostics() throws {
        let broker = try Broker()
        try broker.broadcast(Event(data: "e1"))
        let transports = try (0..<10_000).map { n in
            try RecordingTransport.subscribed(to: broker, "c\(n)", lastEventID: n % 2 == 0 ? "0" : nil, on: self.loop)
        }
        let clock = ContinuousClock()
        let started = clock.now
        let clients = broker.clients
        let elapsed = clock.now - started
        #expect(clients.count == transports.count)
        #expect(clients.filter { $0.resumedFrom == "0" && $0.replayedEvents == 1 }.count == 5_000)
        print("broker.clients with 10,000 connections: \(elapsed) (debug build)")
    }
}
