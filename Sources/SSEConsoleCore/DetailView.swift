/// A drill-down view drawn in the panes' place.
public enum DetailView: Sendable, Hashable {
    /// One connection (Enter on a client).
    case client(ClientDetailView)
    /// One event of the log (Enter on a log entry).
    case event(EventDetailView)
}

/// Opening, feeding, scrolling and closing the drill-down views, and the log pane's selection.
extension ConsoleState {
    /// The connection the client detail view shows, if it is open: the app feeds it with
    /// ``updateClientDetail(_:)`` at each snapshot.
    public var inspectedConnectionID: UInt64? {
        if case .client(let view) = detail { return view.connectionID }
        return nil
    }

    /// What the client detail view shows, as last fed (`nil`: it is not open). For another node's
    /// connection, `remote` says so: the app refreshes it from that node's snapshots.
    public var inspectedClient: ClientDetail? {
        if case .client(let view) = detail { return view.detail }
        return nil
    }

    /// The client detail's newer snapshot (ignored unless that connection's view is open).
    public mutating func updateClientDetail(_ newDetail: ClientDetail) {
        guard case .client(var view) = detail else { return }
        view.update(newDetail)
        detail = .client(view)
    }

    /// The inspected connection is gone: its view stays, marked.
    public mutating func markInspectedClientDeparted(_ departure: Departure) {
        guard case .client(var view) = detail else { return }
        view.markDeparted(departure)
        detail = .client(view)
    }

    /// The data the app found for the event the event detail shows (`nil`: no longer kept).
    public mutating func setEventData(_ text: String?, totalBytes: Int? = nil) {
        guard case .event(var view) = detail else { return }
        view.setData(text, totalBytes: totalBytes)
        detail = .event(view)
    }

    /// Records the rates sampled at `time`, for the sparklines; shows the rates pane.
    public mutating func recordRates(eventsIn: Double, eventsOut: Double, at time: Double) {
        var history = rates ?? RateHistory()
        history.record(eventsIn: eventsIn, eventsOut: eventsOut, at: time)
        rates = history
    }

    /// Closes the drill-down view; the table keeps its selection, so the same row is selected again.
    public mutating func closeDetail() {
        guard detail != nil else { return }
        detail = nil
        mode = .navigate
        clearMessage()
    }

    /// The log entry selected in the log pane (with a viewport of `viewportHeight` rows).
    public var selectedLogEntry: LogEntry? {
        let total = log.visibleCount
        guard total > 0 else { return nil }
        return log.visibleEntry(at: total - 1 - min(logSelection, total - 1))
    }

    /// Enter in navigate mode: the selected client's or log entry's detail; on the cluster pane,
    /// the command line as before.
    mutating func openDetail(geometry: LayoutGeometry) -> [ConsoleAction] {
        switch focus {
        case .clients where !isTopicsViewVisible:
            guard let row = clients.selectedRow else {
                setMessage("no client selected", severity: .error)
                return []
            }
            detail = .client(ClientDetailView(detail: ClientDetail(row: row)))
            // The hint line says what the keys do; an old result would only distract.
            clearMessage()
            return []
        case .log:
            guard let entry = selectedLogEntry else {
                setMessage("the log is empty", severity: .error)
                return []
            }
            var view = EventDetailView(entry: entry)
            detail = .event(view)
            clearMessage()
            guard let id = entry.eventID else {
                view.setData(entry.message)
                detail = .event(view)
                return []
            }
            return [.inspectEvent(eventID: id)]
        default:
            mode = .command
            return []
        }
    }

    /// Keys while a drill-down view is open (navigate mode).
    mutating func handleDetailKey(_ key: Key, geometry: LayoutGeometry) -> [ConsoleAction] {
        guard let current = detail else { return [] }
        let height = max(1, geometry.detailBody.count - 1)
        let width = geometry.size.cols
        switch current {
        case .client(var view):
            let count = ClientDetailPane.lineCount(view.detail, width: width)
            if let delta = Self.scrollDelta(key, page: height, lineCount: count) {
                view.scroll(by: delta, lineCount: count, viewportHeight: height)
                detail = .client(view)
                return []
            }
            let id = view.detail.id
            switch key {
            case .character("k"): return [.execute(.kick(clientID: id))]
            case .character("B"): return [.execute(.ban(clientID: id, duration: nil))]
            // Not `b` as well: everywhere else `b` is the bans view.
            case .character("m"):
                prefillCommandLine("broadcastTo \(Command.token(id)) ")
                let shown = Format.oneLine(id, maxCharacters: 64)
                setMessage("type the event type and data · Enter sends to \(shown) · Esc cancels", severity: .info)
                return []
            default: break
            }
        case .event(var view):
            let count = EventDetailPane.lineCount(view, width: width)
            if let delta = Self.scrollDelta(key, page: height, lineCount: count) {
                view.scroll(by: delta, lineCount: count, viewportHeight: height)
                detail = .event(view)
                return []
            }
        }
        switch key {
        case .escape, .backspace, .left: closeDetail()
        case .character("q"): return [.quit]
        case .character("?"): isHelpVisible = true
        case .character(":"), .character("i"): mode = .command
        default: break
        }
        return []
    }

    /// How far a scrolling key moves a detail view (Home and End: past either end, clamped
    /// there); `nil` for any other key.
    private static func scrollDelta(_ key: Key, page: Int, lineCount: Int) -> Int? {
        switch key {
        case .up: -1
        case .down: 1
        case .pageUp: -max(1, page - 1)
        case .pageDown: max(1, page - 1)
        case .home: -lineCount
        case .end: lineCount
        default: nil
        }
    }

    /// `r`: shows or hides the rates pane.
    mutating func toggleRatesPane() {
        isRatesPaneVisible.toggle()
        let text = isRatesPaneVisible ? "rates pane shown (r hides it)" : "rates pane hidden (r shows it)"
        setMessage(text, severity: .info)
    }

    /// Moves the log selection `delta` entries back in time (negative: forward), scrolling just
    /// enough to keep it on screen. Away from the newest entry the log pauses, so the selected
    /// entry stays put while new ones arrive.
    mutating func moveLogSelection(by delta: Int, viewportHeight height: Int) {
        let total = log.visibleCount
        guard total > 0 else { return }
        logSelection = max(0, min(logSelection + delta, total - 1))
        let offset = min(log.scrollOffset, log.maxOffset(viewportHeight: height))
        if logSelection < offset {
            log.scrollDown(by: offset - logSelection, viewportHeight: height)
        } else if logSelection > offset + height - 1 {
            log.scrollUp(by: logSelection - (offset + height - 1), viewportHeight: height)
        }
        if logSelection == 0 { log.scrollToLive() }
    }

    /// After an append: the selection counts back from the newest visible entry, so a new visible
    /// entry moves it one further; and a selection off the newest pauses the log (the view stays).
    mutating func keepLogSelection(after entry: LogEntry) {
        guard logSelection > 0 else { return }
        let total = log.visibleCount
        guard total > 0, log.visibleEntry(at: total - 1) == entry else { return }
        logSelection = min(logSelection + 1, total - 1)
        if !log.isPaused { log.scrollUp(by: 1, viewportHeight: 1) }
    }
}
