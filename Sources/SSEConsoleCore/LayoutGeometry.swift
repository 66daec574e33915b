/// Where each part of the screen goes for a given terminal size. Shared by rendering and key
/// handling, so page sizes always match what is drawn.
///
/// Top to bottom: header bar, cluster pane (title, column header, rows — only on a cluster node,
/// when shown and when there is room), clients pane (title, column header, rows), log pane (title,
/// rows), message line, command line. The clients pane gets about 40% of the space but shrinks to
/// the row count of the view it shows — clients, topics, bans or audit records — (at least 3) so a
/// short list leaves more room for the log. The cluster pane takes
/// its rows from the log, never from the clients: at most a fifth of the screen, and it is left
/// out rather than squeezing the clients or the log below three rows.
public struct LayoutGeometry: Sendable, Hashable {
    public static let minimumSize = ScreenSize(cols: 20, rows: 8)

    public let size: ScreenSize
    /// Too small for panes: only the header, a notice, the message and command lines are drawn.
    public let isTooSmall: Bool
    public let headerRow: Int
    /// The rates pane's row (sparklines of the last minute) under the header; `nil` when not shown.
    public let ratesRow: Int?
    /// Whether the cluster pane is drawn (asked for and there is room).
    public let showsCluster: Bool
    public let clusterTitleRow: Int
    public let clusterHeaderRow: Int
    public let clusterBody: Range<Int>
    public let clientsTitleRow: Int
    public let clientsHeaderRow: Int
    public let clientsBody: Range<Int>
    public let logTitleRow: Int
    public let logBody: Range<Int>
    public let messageRow: Int
    public let commandRow: Int

    /// - Parameters:
    ///   - clientRowCount: the rows of the view in the clients pane's place (`ConsoleState.shownPaneRowCount`).
    ///   - clusterRowCount: the nodes to show in the cluster pane; `nil` for no cluster pane.
    ///   - wantsRates: whether to give the rates pane a row under the header (it takes it from the
    ///     log, and only when the screen has at least ``minimumRowsForRates`` rows).
    public init(size: ScreenSize, clientRowCount: Int, clusterRowCount: Int? = nil, wantsRates: Bool = false) {
        self.size = size
        let rows = max(0, size.rows)
        headerRow = 0
        messageRow = max(0, rows - 2)
        commandRow = max(0, rows - 1)
        isTooSmall = size.cols < Self.minimumSize.cols || rows < Self.minimumSize.rows
        guard !isTooSmall else {
            ratesRow = nil
            showsCluster = false
            clusterTitleRow = 1
            clusterHeaderRow = 1
            clusterBody = 1..<1
            clientsTitleRow = 1
            clientsHeaderRow = 1
            clientsBody = 1..<1
            logTitleRow = 1
            logBody = 1..<1
            return
        }
        ratesRow = wantsRates && rows >= Self.minimumRowsForRates ? 1 : nil
        let top = ratesRow == nil ? 1 : 2
        let available = rows - 2 - top
        let panesChrome = 3  // two titles and the column header
        let target = max(1, available * 2 / 5 - 2)
        var clientsHeight = min(max(3, clientRowCount), target)
        clientsHeight = max(1, min(clientsHeight, available - panesChrome - 3))

        // The cluster pane: title, column header and up to a fifth of the screen of nodes, if the
        // clients keep their height and the log keeps three rows.
        var clusterHeight = 0
        if let clusterRowCount {
            let room = available - panesChrome - clientsHeight - 3 - 2
            clusterHeight = min(max(1, clusterRowCount), max(1, available / 5), room)
        }
        // One row of several nodes is not a view of the cluster; the header still has its state.
        showsCluster = clusterHeight >= min(2, max(1, clusterRowCount ?? 0))
        let clusterRows = showsCluster ? clusterHeight + 2 : 0
        clusterTitleRow = top
        clusterHeaderRow = top + 1
        clusterBody = showsCluster ? (top + 2)..<(top + 2 + clusterHeight) : top..<top

        let logHeight = max(1, available - panesChrome - clientsHeight - clusterRows)
        clientsTitleRow = top + clusterRows
        clientsHeaderRow = clientsTitleRow + 1
        clientsBody = (clientsHeaderRow + 1)..<(clientsHeaderRow + 1 + clientsHeight)
        logTitleRow = clientsBody.upperBound
        logBody = (logTitleRow + 1)..<(logTitleRow + 1 + logHeight)
    }

    /// Below this the rates pane gives its row back to the log.
    public static let minimumRowsForRates = 16

    /// Rows between the header (and rates pane) and the message line: where a detail view goes.
    public var detailBody: Range<Int> {
        let top = (ratesRow ?? headerRow) + 1
        return top..<max(top, messageRow)
    }

    public var clusterViewportHeight: Int { clusterBody.count }
    public var clientsViewportHeight: Int { clientsBody.count }
    public var logViewportHeight: Int { logBody.count }
}
