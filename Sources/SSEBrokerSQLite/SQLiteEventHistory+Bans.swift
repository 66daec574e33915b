import Foundation
import GRDB
import SSEBroker

/// The history file keeps a stand-alone broker's bans too (``Broker/useBanStore(_:)``): one small
/// table, written synchronously (a ban is rare and must not be lost to a crash right after it is
/// reported), beside the events the writer thread writes.
extension SQLiteEventHistory: BanStore {
    public func loadBans() throws -> [Ban] {
        do {
            return try self.database.read { db in
                try Row.fetchAll(db, sql: "SELECT client_id, until, set_at, set_by FROM ban ORDER BY client_id").map { row in
                    let until: Double? = row["until"]
                    let setAt: Double = row["set_at"]
                    return Ban(
                        clientID: row["client_id"], until: until.map(Date.init(timeIntervalSince1970:)),
                        setAt: Date(timeIntervalSince1970: setAt), setBy: row["set_by"]
                    )
                }
            }
        } catch {
            throw SQLiteEventHistoryError.cannotRead(path: self.path, reason: Self.describe(error))
        }
    }

    public func saveBan(_ ban: Ban) throws {
        try self.database.write { db in
            // Expired bans go when the next one is written: the table stays as small as the bans in force.
            try db.execute(sql: "DELETE FROM ban WHERE until < ?", arguments: [Date().timeIntervalSince1970])
            try db.execute(
                sql: "INSERT OR REPLACE INTO ban (client_id, until, set_at, set_by) VALUES (?, ?, ?, ?)",
                arguments: [ban.clientID, ban.until?.timeIntervalSince1970, ban.setAt.timeIntervalSince1970, ban.setBy]
            )
        }
    }

    public func deleteBan(clientID: String) throws {
        try self.database.write { db in
            try db.execute(sql: "DELETE FROM ban WHERE client_id = ?", arguments: [clientID])
        }
    }
}
