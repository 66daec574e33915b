/// Terminal dimensions in cells.
public struct ScreenSize: Sendable, Hashable {
    public var cols: Int
    public var rows: Int

    public init(cols: Int, rows: Int) {
        self.cols = cols
        self.rows = rows
    }
}

/// What key handling needs to know about the outside world.
public struct KeyContext: Sendable, Hashable {
    /// Current terminal size (page sizes depend on it).
    public var screen: ScreenSize
    /// Ids offered by tab completion; `nil` uses the connected ids of the client table.
    public var clientIDs: [String]?
    /// Topics offered by tab completion; `nil` uses the topics of the client table.
    public var topics: [String]?

    public init(screen: ScreenSize, clientIDs: [String]? = nil, topics: [String]? = nil) {
        self.screen = screen
        self.clientIDs = clientIDs
        self.topics = topics
    }
}
