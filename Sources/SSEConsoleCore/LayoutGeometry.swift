/// Where each part of the screen goes for a given terminal size. Shared by rendering and key
/// handling, so page sizes always match what is drawn.
///
/// Top to bottom: header bar, clients pane (title, column header, rows), log pane (title, rows),
/// message line, command line. The clients pane gets about 40% of the space but shrinks to its
/// row count (at least 3) so a short list leaves more room for the log.
public struct LayoutGeometry: Sendable, Hashable {
    public static let minimumSize = ScreenSize(cols: 20, rows: 8)

    public let size: ScreenSize
    /// Too small for panes: only the header, a notice, the message and command lines are drawn.
    public let isTooSmall: Bool
    public let headerRow: Int
    public let clientsTitleRow: Int
    public let clientsHeaderRow: Int
    public let clientsBody: Range<Int>
    public let logTitleRow: Int
    public let logBody: Range<Int>
    public let messageRow: Int
    public let commandRow: Int

    public init(size: ScreenSize, clientRowCount: Int) {
        self.size = size
        let rows = max(0, size.rows)
        headerRow = 0
        messageRow = max(0, rows - 2)
        commandRow = max(0, rows - 1)
        isTooSmall = size.cols < Self.minimumSize.cols || rows < Self.minimumSize.rows
        guard !isTooSmall else {
            clientsTitleRow = 1
            clientsHeaderRow = 1
            clientsBody = 1..<1
            logTitleRow = 1
            logBody = 1..<1
            return
        }
        let available = rows - 3
        let panesChrome = 3  // two titles and the column header
        let target = max(1, available * 2 / 5 - 2)
        var clientsHeight = min(max(3, clientRowCount), target)
        clientsHeight = max(1, min(clientsHeight, available - panesChrome - 3))
        let logHeight = max(1, available - panesChrome - clientsHeight)
        clientsTitleRow = 1
        clientsHeaderRow = 2
        clientsBody = 3..<(3 + clientsHeight)
        logTitleRow = clientsBody.upperBound
        logBody = (logTitleRow + 1)..<(logTitleRow + 1 + logHeight)
    }

    public var clientsViewportHeight: Int { clientsBody.count }
    public var logViewportHeight: Int { logBody.count }
}
