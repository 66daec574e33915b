/// Columns the client table can be sorted by.
public enum ClientColumn: String, Sendable, Hashable, CaseIterable {
    case id, address, age, events, errors, totalErrors, backlog

    /// Name shown in the pane title.
    public var title: String {
        switch self {
        case .id: "id"
        case .address: "address"
        case .age: "age"
        case .events: "events"
        case .errors: "errors"
        case .totalErrors: "total errors"
        case .backlog: "backlog"
        }
    }
}

/// The client list: rows sorted by a column, a selection that follows its connection across
/// updates and re-sorts, and a scroll position that keeps the selection visible.
///
/// Everything is O(n) or O(n log n) per update; rendering asks only for `visibleRange`, so 10,000
/// rows cost one sort per frame and the formatting of one screenful. The other nodes' rows (the
/// all-nodes table) change only with their snapshots, every second or two: they are sorted when
/// they change and merged with this node's, sorted each update, in O(n).
public struct ClientTable: Sendable {
    /// Rows in display order.
    public private(set) var rows: [ClientRow] = []
    public private(set) var sortColumn: ClientColumn
    public private(set) var sortAscending: Bool
    /// Connection the selection follows.
    public private(set) var selectedConnectionID: UInt64?
    /// Index of the selected row in `rows`.
    public private(set) var selectedIndex: Int?
    /// Index of the first row shown.
    public private(set) var scrollOffset = 0
    /// How long departed rows stay visible, in seconds.
    public var fadeDuration: Double
    /// This node's rows and the fading ones, sorted: everything not in `remote`.
    private var local: [ClientRow] = []
    /// The other nodes' rows as last given, sorted, and which version of them.
    private var remote = RemoteBlock()
    /// How many times the other nodes' rows were sorted (not while they and the order are unchanged).
    public private(set) var remoteSorts = 0

    private struct RemoteBlock: Sendable {
        var version: RemoteClientRows.Version?
        /// The order `rows` is sorted in.
        var order: (column: ClientColumn, ascending: Bool)?
        var rows: [ClientRow] = []
        var hasHTTP2 = false
    }

    public init(sortColumn: ClientColumn = .id, ascending: Bool = true, fadeDuration: Double = 5) {
        self.sortColumn = sortColumn
        self.sortAscending = ascending
        self.fadeDuration = fadeDuration
    }

    public var count: Int { rows.count }

    /// Rows that have not departed.
    public var connectedCount: Int { rows.reduce(0) { $0 + ($1.departure == nil ? 1 : 0) } }

    public var selectedRow: ClientRow? { selectedIndex.map { rows[$0] } }

    /// Distinct ids of connected rows, sorted — the candidates for tab completion.
    public var clientIDs: [String] {
        Array(Set(rows.lazy.filter { $0.departure == nil }.map(\.id))).sorted()
    }

    /// The exact topics the connected clients subscribed to (patterns are no event type), sorted.
    public var topics: [String] {
        Array(Set(rows.lazy.filter { $0.departure == nil }.flatMap(\.topics).filter { !$0.contains("*") })).sorted()
    }

    /// Replaces the rows with the app's latest snapshot: this node's (and its departures) in
    /// `newRows`, the other nodes' in `remote` (`nil`: this node's only).
    ///
    /// Departed rows are kept until `fadeDuration` has passed, even if the app stops sending them,
    /// so the app may report a departure just once. A connected row that simply vanishes fades out
    /// as `closed` — another node's too, when its node's newer snapshot no longer has it.
    public mutating func update(_ newRows: [ClientRow], remote remoteRows: RemoteClientRows? = nil, now: Double) {
        let incoming = Set(newRows.map(\.connectionID))
        var merged = newRows.filter { row in
            guard let departure = row.departure else { return true }
            return now - departure.at < fadeDuration
        }
        for old in local where !incoming.contains(old.connectionID) {
            if let faded = fading(old, now: now) { merged.append(faded) }
        }
        if remoteRows?.version != remote.version {
            let rows = remoteRows?.rows ?? []
            let keys = Set(rows.map(\.connectionID))
            for old in remote.rows where !keys.contains(old.connectionID) {
                if let faded = fading(old, now: now) { merged.append(faded) }
            }
            // A connection back in a later snapshot is not fading as well.
            merged.removeAll { $0.departure != nil && keys.contains($0.connectionID) }
            remote = RemoteBlock(
                version: remoteRows?.version, rows: rows, hasHTTP2: rows.contains { $0.httpVersion != "HTTP/1.1" })
        }
        local = merged
        resort()
    }

    /// `row` as it fades: departed as `closed` now if it had not departed; `nil` once faded out.
    private func fading(_ row: ClientRow, now: Double) -> ClientRow? {
        var row = row
        if row.departure == nil { row.departure = Departure(reason: .closed, at: now) }
        return now - row.departure!.at < fadeDuration ? row : nil
    }

    /// Forgets the other nodes' rows without fading them (the table went back to this node's).
    public mutating func dropRemoteRows() {
        remote = RemoteBlock()
        local.removeAll { $0.remote != nil }
        resort()
    }

    /// Whether any row is not HTTP/1.1: the table then shows each row's protocol (with one
    /// protocol throughout, the column would only take room).
    public private(set) var hasHTTP2 = false

    /// Removes departed rows whose fade time is over (for frames without a new snapshot).
    public mutating func prune(now: Double) {
        local.removeAll { row in row.departure.map { now - $0.at >= fadeDuration } ?? false }
        resort()
    }

    public mutating func setSort(_ column: ClientColumn, ascending: Bool = true) {
        sortColumn = column
        sortAscending = ascending
        resort()
    }

    /// Sorts by the next column, ascending.
    public mutating func cycleSortColumn() {
        let all = ClientColumn.allCases
        let next = all[(all.firstIndex(of: sortColumn)! + 1) % all.count]
        setSort(next, ascending: true)
    }

    public mutating func reverseSort() {
        setSort(sortColumn, ascending: !sortAscending)
    }

    /// Selects the row of a connection, if present.
    public mutating func select(connectionID: UInt64) {
        guard let index = rows.firstIndex(where: { $0.connectionID == connectionID }) else { return }
        select(index: index)
    }

    /// Moves the selection by `delta` rows (clamped) and scrolls it into view.
    public mutating func moveSelection(by delta: Int, viewportHeight: Int) {
        guard !rows.isEmpty else { return }
        select(index: min(max(0, (selectedIndex ?? 0) + delta), rows.count - 1))
        scrollToSelection(viewportHeight: viewportHeight)
    }

    public mutating func pageUp(viewportHeight: Int) {
        moveSelection(by: -max(1, viewportHeight - 1), viewportHeight: viewportHeight)
    }

    public mutating func pageDown(viewportHeight: Int) {
        moveSelection(by: max(1, viewportHeight - 1), viewportHeight: viewportHeight)
    }

    public mutating func selectFirst(viewportHeight: Int) {
        moveSelection(by: -rows.count, viewportHeight: viewportHeight)
    }

    public mutating func selectLast(viewportHeight: Int) {
        moveSelection(by: rows.count, viewportHeight: viewportHeight)
    }

    /// Adjusts `scrollOffset` so the selection is inside a view of `viewportHeight` rows.
    public mutating func scrollToSelection(viewportHeight: Int) {
        scrollOffset = visibleRange(viewportHeight: viewportHeight).lowerBound
    }

    /// Rows a view of `viewportHeight` rows shows: the stored offset, moved just enough to contain
    /// the selection and clamped so the view is never needlessly short. Pure, so a resize between
    /// key presses still renders correctly.
    public func visibleRange(viewportHeight: Int) -> Range<Int> {
        let height = max(0, viewportHeight)
        guard height > 0, !rows.isEmpty else { return 0..<0 }
        var offset = min(scrollOffset, max(0, rows.count - height))
        if let selected = selectedIndex {
            if selected < offset { offset = selected }
            if selected >= offset + height { offset = selected - height + 1 }
        }
        return offset..<min(rows.count, offset + height)
    }

    private mutating func select(index: Int) {
        selectedIndex = index
        selectedConnectionID = rows[index].connectionID
    }

    /// Sorts this node's rows, and the other nodes' if they changed or the order did, merges them
    /// into `rows` and finds the selection again.
    private mutating func resort() {
        let column = sortColumn
        let ascending = sortAscending
        let precedes = { (a: ClientRow, b: ClientRow) -> Bool in
            let order = Self.compare(a, b, by: column)
            if order != 0 { return ascending ? order < 0 : order > 0 }
            return a.connectionID < b.connectionID  // total order: stable across frames, and mergeable
        }
        local.sort(by: precedes)
        if !remote.rows.isEmpty, remote.order.map({ $0.column != column || $0.ascending != ascending }) ?? true {
            remote.rows.sort(by: precedes)
            remoteSorts += 1
        }
        remote.order = (column, ascending)
        if remote.rows.isEmpty {
            rows = local
        } else if local.isEmpty {
            rows = remote.rows
        } else {
            var merged: [ClientRow] = []
            merged.reserveCapacity(local.count + remote.rows.count)
            var l = 0
            var r = 0
            while l < local.count && r < remote.rows.count {
                if precedes(remote.rows[r], local[l]) {
                    merged.append(remote.rows[r])
                    r += 1
                } else {
                    merged.append(local[l])
                    l += 1
                }
            }
            merged.append(contentsOf: local[l...])
            merged.append(contentsOf: remote.rows[r...])
            rows = merged
        }
        hasHTTP2 = remote.hasHTTP2 || local.contains { $0.httpVersion != "HTTP/1.1" }
        if let id = selectedConnectionID, let index = rows.firstIndex(where: { $0.connectionID == id }) {
            selectedIndex = index
        } else if !rows.isEmpty {
            // The selected connection is gone: keep the cursor at the same place in the list.
            select(index: min(selectedIndex ?? 0, rows.count - 1))
        } else {
            selectedIndex = nil
            selectedConnectionID = nil
        }
    }

    private static func compare(_ a: ClientRow, _ b: ClientRow, by column: ClientColumn) -> Int {
        func order<T: Comparable>(_ x: T, _ y: T) -> Int { x < y ? -1 : (x > y ? 1 : 0) }
        switch column {
        case .id: return order(a.id, b.id)
        case .address: return order(a.remoteAddress, b.remoteAddress)
        case .age: return order(b.connectedAt, a.connectedAt)  // youngest first when ascending
        case .events: return order(a.eventsSent, b.eventsSent)
        case .errors: return order(a.consecutiveErrors, b.consecutiveErrors)
        case .totalErrors: return order(a.totalErrors, b.totalErrors)
        case .backlog: return order(a.backlogBytes, b.backlogBytes)
        }
    }
}
