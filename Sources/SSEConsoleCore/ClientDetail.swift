/// Everything the client detail view shows about one connection, as of the app's last snapshot.
/// Timestamps are Unix seconds. Built by the app from the broker's `ClientInfo` and the events it
/// saw; until then (and after the connection is gone) from the table's row. Another node's
/// connection (``remote``) is known only from that node's snapshots: its counters, not its user
/// agent, resume, token or misses.
public struct ClientDetail: Sendable, Hashable {
    /// One event the connection missed, and why.
    public struct ErrorLine: Sendable, Hashable {
        public var time: Double
        public var text: String
        /// The event it missed; `nil` for an event of its replay.
        public var eventID: UInt64?

        public init(time: Double, text: String, eventID: UInt64? = nil) {
            self.time = time
            self.text = text
            self.eventID = eventID
        }
    }

    /// One event written to the connection.
    public struct Delivery: Sendable, Hashable {
        public var time: Double
        public var eventID: UInt64
        public var type: String
        public var size: Int
        /// Written as part of the replay when it connected (not live).
        public var replayed: Bool

        public init(time: Double, eventID: UInt64, type: String, size: Int, replayed: Bool = false) {
            self.time = time
            self.eventID = eventID
            self.type = type
            self.size = size
            self.replayed = replayed
        }
    }

    /// How many deliveries the view lists.
    public static let deliveryLimit = 20

    public var connectionID: UInt64
    public var id: String
    /// The node it is connected to (`nil`: this stand-alone broker).
    public var node: String?
    /// Set for another node's connection: which snapshot of that node this is.
    public var remote: RemoteSnapshot?
    public var remoteAddress: String
    public var userAgent: String?
    /// `HTTP/1.1` or `h2`.
    public var httpVersion: String?
    /// Empty: every event.
    public var topics: [String]
    public var tokenSubject: String?
    public var tokenExpiresAt: Double?
    public var connectedAt: Double
    /// The `Last-Event-ID` it resumed from; `nil` for a first connect.
    public var resumedFrom: String?
    public var replayedEvents: Int
    public var eventsSent: Int
    public var bytesSent: Int
    public var backlogBytes: Int
    public var consecutiveErrors: Int
    public var totalErrors: Int
    /// Its latest misses, oldest first.
    public var errors: [ErrorLine]
    /// Its latest deliveries, newest first (at most ``deliveryLimit``).
    public var deliveries: [Delivery]
    /// Whether ``deliveries`` is known (the app fills it in; a row alone does not have it).
    public var hasDeliveries: Bool
    public var departure: Departure?

    public init(
        connectionID: UInt64, id: String, node: String? = nil, remoteAddress: String, userAgent: String? = nil,
        httpVersion: String? = nil, topics: [String] = [], tokenSubject: String? = nil,
        tokenExpiresAt: Double? = nil, connectedAt: Double, resumedFrom: String? = nil, replayedEvents: Int = 0,
        eventsSent: Int = 0, bytesSent: Int = 0, backlogBytes: Int = 0, consecutiveErrors: Int = 0,
        totalErrors: Int = 0, errors: [ErrorLine] = [], deliveries: [Delivery] = [], hasDeliveries: Bool = true,
        departure: Departure? = nil, remote: RemoteSnapshot? = nil
    ) {
        self.connectionID = connectionID
        self.id = id
        self.node = node
        self.remote = remote
        self.remoteAddress = remoteAddress
        self.userAgent = userAgent
        self.httpVersion = httpVersion
        self.topics = topics
        self.tokenSubject = tokenSubject
        self.tokenExpiresAt = tokenExpiresAt
        self.connectedAt = connectedAt
        self.resumedFrom = resumedFrom
        self.replayedEvents = replayedEvents
        self.eventsSent = eventsSent
        self.bytesSent = bytesSent
        self.backlogBytes = backlogBytes
        self.consecutiveErrors = consecutiveErrors
        self.totalErrors = totalErrors
        self.errors = errors
        self.deliveries = deliveries
        self.hasDeliveries = hasDeliveries
        self.departure = departure
    }

    /// What the table's row knows, until the app's next snapshot fills in the rest (for another
    /// node's connection, the row is all there is).
    public init(row: ClientRow) {
        self.init(
            connectionID: row.connectionID, id: row.id, node: row.node, remoteAddress: row.remoteAddress,
            httpVersion: row.httpVersion, topics: row.topics, connectedAt: row.connectedAt, eventsSent: row.eventsSent,
            bytesSent: row.bytesSent, backlogBytes: row.backlogBytes, consecutiveErrors: row.consecutiveErrors,
            totalErrors: row.totalErrors, hasDeliveries: false, departure: row.departure, remote: row.remote)
    }

    /// The events of ``errors`` (its recorded misses): listed among the deliveries as missed.
    public var missedEventIDs: Set<UInt64> { Set(errors.lazy.compactMap(\.eventID)) }

    /// Misses not recorded (the broker keeps the last few of a connection; another node's are not
    /// known here at all) that may be among the deliveries listed, which then cannot all be told
    /// apart: 0 when every miss is recorded, or the unrecorded ones are older than the list.
    public var unrecordedMissesInList: Int {
        let unrecorded = remote == nil ? max(0, totalErrors - errors.count) : totalErrors
        guard unrecorded > 0, let oldest = deliveries.prefix(Self.deliveryLimit).last else { return 0 }
        // The unrecorded misses came before the oldest recorded one: outside the list if that one is.
        if remote == nil, let oldestMiss = errors.first {
            let before = oldestMiss.eventID.map { $0 <= oldest.eventID } ?? (oldestMiss.time <= oldest.time)
            if before { return 0 }
        }
        return unrecorded
    }
}

/// The client detail view's state: which connection, what is known of it, how far it is scrolled.
public struct ClientDetailView: Sendable, Hashable {
    public private(set) var detail: ClientDetail
    public private(set) var scrollOffset = 0

    public init(detail: ClientDetail) {
        self.detail = detail
    }

    public var connectionID: UInt64 { detail.connectionID }

    /// Takes the app's newer snapshot of the same connection (others are ignored).
    public mutating func update(_ detail: ClientDetail) {
        guard detail.connectionID == self.detail.connectionID else { return }
        self.detail = detail
    }

    /// Marks the connection as gone, keeping the last snapshot on screen. A snapshot can miss a
    /// connection before the broker's report of why it ended arrives, so a `closed` is replaced
    /// by the reason that comes next (`kicked`, `banned`, …).
    public mutating func markDeparted(_ departure: Departure) {
        if detail.departure == nil || detail.departure?.reason == .closed { detail.departure = departure }
    }

    /// Moves `delta` lines down (negative: up), within the `lineCount` lines the view has.
    public mutating func scroll(by delta: Int, lineCount: Int, viewportHeight: Int) {
        scrollOffset = max(0, min(scrollOffset + delta, lineCount - max(1, viewportHeight)))
    }

}

/// Renders the client detail view in the panes' place: a title, the connection's facts in one or
/// two columns, its recent errors and its last deliveries — as lines, then the visible window.
enum ClientDetailPane {
    typealias Segment = (text: String, style: CellStyle)
    typealias Line = [Segment]

    static func draw(
        _ canvas: inout Canvas, view: ClientDetailView, geometry: LayoutGeometry, now: Double,
        tolerance: Int, theme: Theme, utcOffset: Int
    ) {
        let body = geometry.detailBody
        guard body.count >= 2 else { return }
        let detail = view.detail
        let all = lines(detail, width: canvas.width, now: now, tolerance: tolerance, theme: theme, utcOffset: utcOffset)
        let connection = detail.remote.map { remote in
            "connection \(remote.connectionID) on \(Format.oneLine(detail.node ?? "?", maxCharacters: 64))"
        } ?? "connection \(detail.connectionID)"
        var segments: [Segment] = [
            ("Client \(Format.oneLine(detail.id, maxCharacters: 64))", theme.style(.cyan, bold: true)),
            (connection, theme.style()),
        ]
        if let departure = detail.departure {
            let marker = theme.colors ? "" : "! "
            segments.append(("\(marker)gone: \(departure.reason.label)", theme.style(.red, bold: true)))
        }
        DetailPane.draw(&canvas, body: body, title: segments, lines: all, scrollOffset: view.scrollOffset, theme: theme)
    }

    /// How many lines the view has at `width` (for scrolling).
    static func lineCount(_ detail: ClientDetail, width: Int) -> Int {
        lines(detail, width: width, now: 0, tolerance: 1, theme: Theme(colors: false), utcOffset: 0).count
    }

    static func lines(
        _ detail: ClientDetail, width: Int, now: Double, tolerance: Int, theme: Theme, utcOffset: Int
    ) -> [Line] {
        let label = theme.style(.gray)
        let value = theme.style(bold: true)
        let dim = theme.style(.gray, dim: true)
        func text(_ string: String?, limit: Int = 200) -> String {
            string.map { Format.oneLine($0, maxCharacters: limit) } ?? "–"
        }
        let ago = Format.duration(max(0, now - detail.connectedAt))
        let since = "\(Format.clock(detail.connectedAt, utcOffset: utcOffset)) (\(ago) ago)"
        let token: String
        if let subject = detail.tokenSubject {
            let expiry = detail.tokenExpiresAt.map { at in
                at > now ? "expires in \(Format.duration(at - now))" : "expired"
            } ?? "no expiry"
            token = "\(Format.oneLine(subject, maxCharacters: 64)) · \(expiry)"
        } else {
            token = "none"
        }
        let resume = detail.resumedFrom.map { id in
            "Last-Event-ID \(Format.oneLine(id, maxCharacters: 40)) · \(Format.thousands(detail.replayedEvents)) replayed"
        } ?? "first connect (no Last-Event-ID)"
        let events = "\(Format.thousands(detail.eventsSent)) event\(detail.eventsSent == 1 ? "" : "s")"
        let errorColor = theme.errorLevelColor(detail.consecutiveErrors, tolerance: tolerance)
        var node = detail.node.map { Format.oneLine($0, maxCharacters: 64) } ?? "this broker"
        // Another node's connection: what only that node records is said to be there, not left blank.
        var elsewhere: (String, CellStyle)?
        if let remote = detail.remote {
            node += " · as of its snapshot \(Format.duration(max(0, now - remote.takenAt))) ago"
            elsewhere = ("known on \(Format.oneLine(detail.node ?? "its node", maxCharacters: 64)) only", dim)
        }
        let identity: [(String, String, CellStyle)] = [
            ("id", text(detail.id), value),
            ("node", node, value),
            ("address", text(detail.remoteAddress), value),
            ("protocol", detail.httpVersion ?? "–", value),
            ("user agent", elsewhere?.0 ?? text(detail.userAgent), elsewhere?.1 ?? value),
            ("topics", detail.topics.isEmpty ? "(all events)" : detail.topics.joined(separator: ", "), value),
            ("token", elsewhere?.0 ?? token, elsewhere?.1 ?? value),
        ]
        let traffic: [(String, String, CellStyle)] = [
            ("connected", since, value),
            ("resumed", elsewhere?.0 ?? resume, elsewhere?.1 ?? value),
            ("sent", "\(events) · \(Format.bytes(detail.bytesSent))", value),
            ("backlog", Format.bytes(detail.backlogBytes), value),
            ("errors", "\(detail.consecutiveErrors)/\(tolerance) in a row · \(Format.thousands(detail.totalErrors)) in all",
             theme.style(errorColor, bold: detail.consecutiveErrors > 0)),
        ]
        let labelWidth = 11
        func pair(_ item: (String, String, CellStyle), width: Int) -> Line {
            let room = max(1, width - labelWidth)
            return [
                (TextFit.pad(item.0, toWidth: labelWidth), label), (TextFit.truncate(item.1, toWidth: room), item.2),
            ]
        }
        var result: [Line] = []
        let inner = max(1, width - 2)
        if width >= 100 {
            // Two columns: who it is on the left, what it got on the right.
            let left = inner / 2
            for index in 0..<max(identity.count, traffic.count) {
                var line: Line = []
                if index < identity.count {
                    let cells = pair(identity[index], width: left - 2)
                    line += cells
                    let used = cells.map { displayWidth(of: $0.text) }.reduce(0, +)
                    line.append((String(repeating: " ", count: max(0, left - used)), theme.style()))
                } else {
                    line.append((String(repeating: " ", count: left), theme.style()))
                }
                if index < traffic.count { line += pair(traffic[index], width: inner - left) }
                result.append(line)
            }
        } else {
            for item in identity + traffic { result.append(pair(item, width: inner)) }
        }

        result.append([])
        result.append([("Recent errors", theme.style(.yellow, bold: true))])
        if let elsewhere {
            result.append([(elsewhere.0, elsewhere.1)])
        } else if detail.errors.isEmpty {
            result.append([("none", dim)])
        }
        for error in detail.errors.reversed() {
            let marker = theme.colors ? "" : "! "
            result.append([
                (Format.clock(error.time, utcOffset: utcOffset) + " ", theme.style(.gray)),
                (TextFit.truncate(marker + Format.oneLine(error.text), toWidth: max(1, inner - 9)), theme.style(.red)),
            ])
        }

        result.append([])
        result.append([("Last \(ClientDetail.deliveryLimit) deliveries", theme.style(.yellow, bold: true))])
        guard detail.hasDeliveries else {
            result.append([("…", dim)])
            return result
        }
        if detail.deliveries.isEmpty {
            result.append([("none since the console started", dim)])
            return result
        }
        // Ids follow the clock at start (16 digits today): the column fits the longest shown.
        let shown = detail.deliveries.prefix(ClientDetail.deliveryLimit)
        let idWidth = max(8, shown.map { String($0.eventID).count }.max() ?? 8)
        let typeWidth = max(8, min(40, inner - 9 - (idWidth + 1) - 9 - 7))
        let bold = theme.style(bold: true)
        result.append([
            ("TIME     ", bold), (TextFit.pad("EVENT ID", toWidth: idWidth, alignRight: true) + " ", bold),
            (TextFit.pad("TYPE", toWidth: typeWidth) + " ", bold),
            (TextFit.pad("SIZE", toWidth: 8, alignRight: true), bold),
        ])
        // A recorded miss is not a delivery: `missed` in its size's place.
        let missed = detail.missedEventIDs
        for delivery in shown {
            let type = TextFit.truncate(Format.oneLine(delivery.type, maxCharacters: 160), toWidth: typeWidth)
            let size = missed.contains(delivery.eventID)
                ? (TextFit.pad("missed", toWidth: 8, alignRight: true), theme.style(.red, bold: true))
                : (TextFit.pad(Format.bytes(delivery.size), toWidth: 8, alignRight: true), theme.style(.gray))
            var line: Line = [
                (Format.clock(delivery.time, utcOffset: utcOffset) + " ", theme.style(.gray)),
                (TextFit.pad(String(delivery.eventID), toWidth: idWidth, alignRight: true) + " ", theme.style()),
                (TextFit.pad(type, toWidth: typeWidth) + " ", bold),
                size,
            ]
            if delivery.replayed { line.append((" replay", theme.style(.magenta))) }
            result.append(line)
        }
        let unrecorded = detail.unrecordedMissesInList
        if unrecorded > 0 {
            let misses = "\(Format.thousands(unrecorded)) miss\(unrecorded == 1 ? "" : "es")"
            let note = detail.remote != nil
                ? "\(misses) recorded on \(Format.oneLine(detail.node ?? "its node", maxCharacters: 64)) only: "
                    + "some listed may not have reached it"
                : "\(misses) earlier not recorded: some listed may not have reached it"
            result.append([(TextFit.truncate(note, toWidth: inner), theme.style(.yellow))])
        }
        return result
    }
}
