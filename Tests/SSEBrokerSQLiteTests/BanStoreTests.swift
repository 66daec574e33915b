import Foundation
import Logging
import SSEBroker
import Testing

@testable import SSEBrokerSQLite

/// A stand-alone broker's bans in the history file: kept across a restart (a new broker on the
/// same file), with who set them and until when; unbans and expired bans gone.
@Suite(.timeLimit(.minutes(1)))
struct BanStoreTests {
    let directory: String
    var path: String { self.directory + "/history.sqlite" }
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    init() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("sse-bans-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
    }

    private func run(_ body: (Broker, SQLiteEventHistory) async throws -> Void) async throws {
        let history = try SQLiteEventHistory(path: self.path, logger: self.logger)
        let broker = try Broker(logger: self.logger, journal: history)
        try broker.useBanStore(history)
        try await body(broker, history)
        broker.shutdown()
        await history.close()
    }

    @Test func bans_surviveARestart_withWhoAndUntilWhen_andUnbansAndExpiredOnesDoNot() async throws {
        defer { try? FileManager.default.removeItem(atPath: self.directory) }
        try await self.run { broker, _ in
            try await broker.ban("mallory", for: .seconds(3600), origin: .console)
            try await broker.ban("eve", for: nil, origin: .http("10.0.0.7:53012"))
            try await broker.ban("trudy", for: nil, origin: .console)
            try broker.ban("brief", for: .milliseconds(1))  // over before the restart
            #expect(try await broker.unban("trudy", origin: .console))
        }
        try await self.run { broker, history in
            let bans = broker.bans
            #expect(bans.map(\.clientID) == ["eve", "mallory"])
            #expect(bans.map(\.setBy) == ["http 10.0.0.7:53012", "console"])
            #expect(bans[0].until == nil)
            let until = try #require(bans[1].until)
            #expect(abs(until.timeIntervalSince(bans[1].setAt) - 3600) < 0.01)
            #expect(throws: BrokerError.banned("mallory")) { try broker.checkAdmission(of: "mallory") }
            try broker.checkAdmission(of: "trudy")
            try broker.checkAdmission(of: "brief")
            // The next write deletes the expired ban from the file too.
            try broker.ban("next")
            #expect(try history.loadBans().map(\.clientID) == ["eve", "mallory", "next"])
        }
    }
}
