import Foundation
import Testing

@testable import SSEConsoleCore

private let now = Fixtures.now
private let small = KeyContext(screen: ScreenSize(cols: 80, rows: 24))

/// Another node's connection as its snapshot decodes: the fields of `ClientInfo` it has.
fileprivate struct SnapshotClient {
    var connectionID: UInt64
    var clientID: String
    var remoteAddress: String?
    var connectedAt: Double
    var eventsSent = 0
    var bytesSent = 0
    var consecutiveErrors = 0
    var totalErrors = 0
    var backlogBytes = 0
    var topics: [String] = []
    var httpVersion = "HTTP/1.1"
}

/// As `ConsoleFeed.row(for:)` converts a `ClientInfo`.
fileprivate func row(_ client: SnapshotClient) -> ClientRow {
    var row = ClientRow(
        connectionID: client.connectionID, id: client.clientID, remoteAddress: client.remoteAddress ?? "-",
        connectedAt: client.connectedAt, eventsSent: client.eventsSent, bytesSent: client.bytesSent,
        consecutiveErrors: client.consecutiveErrors, totalErrors: client.totalErrors, backlogBytes: client.backlogBytes,
        topics: client.topics, departure: nil)
    row.httpVersion = client.httpVersion
    return row
}

fileprivate func clients(_ count: Int, prefix: String) -> [SnapshotClient] {
    (0..<count).map { n in
        SnapshotClient(
            connectionID: UInt64(n + 1), clientID: "\(prefix)-\((n * 7_919) % 100_003)",
            remoteAddress: "10.\(n / 65_536).\(n / 256 % 256).\(n % 256):\(40_000 + n % 20_000)", connectedAt: now - Double(n % 5_000),
            eventsSent: (n * 31) % 10_007, bytesSent: n * 100, consecutiveErrors: n % 3, totalErrors: n % 17,
            backlogBytes: (n * 13) % 4_096, topics: n % 2 == 0 ? ["news"] : [])
    }
}

fileprivate typealias Snapshot = (node: String, takenAt: Double, clients: [SnapshotClient])

/// The all-nodes table: the other nodes' rows converted and sorted once per snapshot, and the client
/// detail of another node's connection.
@Suite struct AllNodesTests {
    // MARK: Rows from snapshots

    @Test func remoteRows_convertOnlyTheSnapshotsThatChanged_andKeyByNode() {
        var remote = RemoteClientRows()
        let b = clients(3, prefix: "b")
        let c = clients(2, prefix: "c")
        let changed1 = remote.update([("node-b", 100, b), ("node-c", 100, c)] as [Snapshot], row: row)
        #expect(changed1)
        #expect(remote.conversions == 5 && remote.rows.count == 5)
        // Connection 1 on node-b and on node-c are two rows with two keys; each keeps its own id.
        let first = remote.rows.filter { $0.remote?.connectionID == 1 }
        #expect(first.map(\.node) == ["node-b", "node-c"])
        #expect(Set(first.map(\.connectionID)).count == 2)
        #expect(first[0].connectionID == RemoteClientRows.key(node: "node-b", connectionID: 1))
        #expect(first.allSatisfy { $0.remote?.takenAt == 100 })
        let version = remote.version

        // The same snapshots again (four refreshes a second between two snapshots): nothing converted.
        let changed2 = remote.update([("node-b", 100, b), ("node-c", 100, c)] as [Snapshot], row: row)
        #expect(!changed2)
        #expect(remote.conversions == 5 && remote.version == version)
        // node-b's next snapshot: only its rows are converted.
        let changed3 = remote.update([("node-b", 102, b), ("node-c", 100, c)] as [Snapshot], row: row)
        #expect(changed3)
        #expect(remote.conversions == 8 && remote.version != version)
        #expect(remote.rows.filter { $0.node == "node-b" }.allSatisfy { $0.remote?.takenAt == 102 })
        // node-b leaves: its rows go, nothing is converted.
        let changed4 = remote.update([("node-c", 100, c)] as [Snapshot], row: row)
        #expect(changed4)
        #expect(remote.conversions == 8 && remote.rows.map(\.node) == ["node-c", "node-c"])
        // Two instances never share a version (a table given a new one sorts it).
        #expect(RemoteClientRows().version != RemoteClientRows().version)
    }

    @Test(arguments: ClientColumn.allCases)
    func allNodesTable_mergesInTheOrderOfOneSortOfEverything(column: ClientColumn) {
        var remote = RemoteClientRows()
        remote.update([("node-b", 100, clients(400, prefix: "b")), ("node-c", 100, clients(300, prefix: "c"))] as [Snapshot], row: row)
        let local = Fixtures.rows.map { row in
            var row = row
            row.node = "node-a"
            return row
        }
        for ascending in [true, false] {
            var merged = ClientTable(sortColumn: column, ascending: ascending)
            merged.update(local, remote: remote, now: now)
            var whole = ClientTable(sortColumn: column, ascending: ascending)
            whole.update(local + remote.rows, now: now)
            #expect(merged.rows.map(\.connectionID) == whole.rows.map(\.connectionID), "\(column) \(ascending)")
        }
    }

    @Test func allNodesTable_sortsTheOtherNodesRowsOnlyWhenTheyOrTheOrderChange() {
        var remote = RemoteClientRows()
        remote.update([("node-b", 100, clients(1_000, prefix: "b"))] as [Snapshot], row: row)
        var table = ClientTable()
        table.update(Fixtures.rows, remote: remote, now: now)
        #expect(table.remoteSorts == 1 && table.count == 1_005)
        table.select(connectionID: RemoteClientRows.key(node: "node-b", connectionID: 500))
        // Refreshes with this node's rows changing and the same snapshot: merged, not sorted again.
        for step in 1...10 {
            var rows = Fixtures.rows
            rows[0].eventsSent += step
            table.update(rows, remote: remote, now: now + Double(step) / 4)
        }
        #expect(table.remoteSorts == 1 && table.count == 1_005)
        #expect(table.selectedRow?.remote?.connectionID == 500)
        table.cycleSortColumn()
        #expect(table.remoteSorts == 2)
        remote.update([("node-b", 102, clients(999, prefix: "b"))] as [Snapshot], row: row)
        table.update(Fixtures.rows, remote: remote, now: now + 3)
        #expect(table.remoteSorts == 3)
        // The connection node-b's newer snapshot no longer has fades out as closed, as a local one would.
        let gone = table.rows.first { $0.remote?.connectionID == 1_000 }
        #expect(gone?.departure == Departure(reason: .closed, at: now + 3))
        #expect(table.connectedCount == 4 + 999)
        table.update(Fixtures.rows, remote: remote, now: now + 9)
        #expect(!table.rows.contains { $0.remote?.connectionID == 1_000 })
    }

    @Test func backToThisNode_theOtherNodesRowsGoWithoutFadingAsClosed() {
        var state = Self.allNodesState()
        #expect(state.clients.count == 7)
        _ = state.applyLocal(.clientScope(.thisNode))
        state.updateClients([Self.alice], now: now + 1)
        #expect(state.clients.rows.map(\.id) == ["alice"])
    }

    /// Measures one refresh of a 3 × 10,000-client table the old way (every remote client converted,
    /// keyed and sorted on every refresh) and the new way; asserts only that both give the same rows
    /// and that the new way converts and sorts the other nodes' rows once. Timing belongs in
    /// benchmarks: the numbers are printed (a debug build's).
    @Test func allNodesRefresh_3x10000_convertsAndSortsTheOtherNodesRowsOncePerSnapshot() {
        let snapshots: [Snapshot] = [("node-b", 100, clients(10_000, prefix: "b")), ("node-c", 100, clients(10_000, prefix: "c"))]
        let local = clients(10_000, prefix: "a").map { client in
            var local = row(client)
            local.node = "node-a"
            return local
        }
        let refreshes = 4
        let clock = ContinuousClock()

        var before = ClientTable()
        var beforeConversions = 0
        let old = clock.measure {
            for step in 0..<refreshes {
                var fresh = RemoteClientRows()  // what the old code did: convert and key every row, every refresh
                fresh.update(snapshots, row: row)
                beforeConversions += fresh.conversions
                before.update(local + fresh.rows, now: now + Double(step) / 4)
            }
        }

        var after = ClientTable()
        var remote = RemoteClientRows()
        let new = clock.measure {
            for step in 0..<refreshes {
                remote.update(snapshots, row: row)
                after.update(local, remote: remote, now: now + Double(step) / 4)
            }
        }
        print("all-nodes refresh, 3 × 10,000 clients: \(old / refreshes) before, \(new / refreshes) after (per refresh, debug build)")
        #expect(beforeConversions == 20_000 * refreshes)
        #expect(remote.conversions == 20_000)
        #expect(after.remoteSorts == 1)
        #expect(after.count == 30_000)
        #expect(after.rows.map(\.connectionID) == before.rows.map(\.connectionID))
    }

    // MARK: Another node's client detail

    static let alice: ClientRow = {
        var alice = Fixtures.rows[0]
        alice.node = "node-a"
        return alice
    }()

    fileprivate static let carol = SnapshotClient(
        connectionID: 7, clientID: "carol", remoteAddress: "10.0.0.9:50000", connectedAt: now - 90, eventsSent: 12,
        bytesSent: 4_096, consecutiveErrors: 1, totalErrors: 4, topics: ["news"], httpVersion: "h2")

    static func remote(takenAt: Double = now - 2, carol: Bool = true) -> RemoteClientRows {
        var remote = RemoteClientRows()
        var b = clients(5, prefix: "b").map { client in
            var client = client
            client.connectionID += 100
            return client
        }
        if carol { b.append(Self.carol) }
        remote.update([("node-b", takenAt, b)] as [Snapshot], row: row)
        return remote
    }

    static func allNodesState(remote: RemoteClientRows = remote()) -> ConsoleState {
        var state = ConsoleState()
        state.updateCluster(ClusterView(state: .online, nodeName: "node-a", nodes: [], head: 0, lastDelivered: 0))
        _ = state.applyLocal(.clientScope(.allNodes))
        state.updateClients([alice], remote: remote, now: now)
        return state
    }

    @Test func remoteDetail_keepsItsNodeAndProtocol_andSaysWhatOnlyItsNodeKnows() {
        let remote = Self.remote()
        var state = Self.allNodesState(remote: remote)
        let key = RemoteClientRows.key(node: "node-b", connectionID: 7)
        state.clients.select(connectionID: key)
        state.press(.escape, .enter, context: small)
        let inspected = state.inspectedClient
        #expect(inspected?.connectionID == key && inspected?.node == "node-b" && inspected?.httpVersion == "h2")
        #expect(inspected?.remote == RemoteSnapshot(connectionID: 7, takenAt: now - 2))

        // The app's refresh: the same snapshot still has it.
        guard case .present(let row) = remote.sighting(node: "node-b", key: key, seenAt: now - 2) else {
            Issue.record("carol is in node-b's snapshot")
            return
        }
        var detail = ClientDetail(row: row)
        detail.deliveries = [.init(time: now - 1, eventID: 41, type: "news", size: 12)]
        detail.hasDeliveries = true
        state.updateClientDetail(detail)
        let text = Fixtures.render(state, cols: 120, rows: 40).plainText.joined(separator: "\n")
        #expect(text.contains("Client carol") && text.contains("connection 7 on node-b"))
        #expect(text.contains("node-b · as of its snapshot 2s ago"))
        #expect(text.contains("h2") && text.contains("10.0.0.9:50000") && text.contains("1/3 in a row · 4 in all"))
        #expect(!text.contains("this broker") && !text.contains("gone"))
        // User agent, token, resume and misses: known on node-b only, and said so (not blank, not "none").
        #expect(text.components(separatedBy: "known on node-b only").count - 1 == 4)
        #expect(text.contains("news") && text.contains("4 misses recorded on node-b only"))
        // k and B act on its id (cluster-wide, by the executor).
        #expect(state.type("k", context: small) == [.execute(.kick(clientID: "carol"))])
        #expect(state.type("B", context: small) == [.execute(.ban(clientID: "carol", duration: nil))])
    }

    @Test func remoteDetail_isGoneOnlyWhenItsNodesNewerSnapshotNoLongerHasIt() {
        let key = RemoteClientRows.key(node: "node-b", connectionID: 7)
        let seenAt = now - 2
        // Its node missing from the snapshots (not answering): no word, not gone.
        #expect(RemoteClientRows().sighting(node: "node-b", key: key, seenAt: seenAt) == .unknown)
        // A snapshot of its node no newer than the one it was seen in: not gone either.
        #expect(Self.remote(takenAt: seenAt, carol: false).sighting(node: "node-b", key: key, seenAt: seenAt) == .unknown)
        // The next snapshot without it: gone, by then.
        let newer = Self.remote(takenAt: now, carol: false)
        #expect(newer.sighting(node: "node-b", key: key, seenAt: seenAt) == .gone(at: now))

        var state = Self.allNodesState()
        state.clients.select(connectionID: key)
        state.press(.escape, .enter, context: small)
        state.markInspectedClientDeparted(Departure(reason: .closed, at: now))
        #expect(Fixtures.render(state, cols: 120, rows: 40).plainText[1].contains("gone: closed"))
    }
}
