/// The pane that navigation keys act on.
public enum Pane: String, Sendable, Hashable {
    case cluster, clients, log
}

/// `command`: typing edits the command line (the default). `navigate`: single keys act on panes.
public enum InputMode: String, Sendable, Hashable {
    case command, navigate
}

/// How the message line is coloured.
public enum MessageSeverity: String, Sendable, Hashable {
    case ok, error, info
}

/// The result of the last command, shown above the command line.
public struct ResultMessage: Sendable, Hashable {
    public var text: String
    public var severity: MessageSeverity

    public init(_ text: String, severity: MessageSeverity) {
        self.text = text
        self.severity = severity
    }
}

/// The whole UI state as one value. The app owns it on its UI thread: it feeds clients and log
/// entries, passes keys to `handle(_:context:)`, performs the returned actions, reports results
/// with `setMessage(_:severity:)`, and renders with `Layout.render`.
public struct ConsoleState: Sendable {
    public var editor: LineEditor
    public var clients: ClientTable
    public var log: EventLog
    public var focus: Pane = .clients
    public var mode: InputMode = .command
    public var isHelpVisible = false
    public var message: ResultMessage?
    /// The cluster this broker is a node of, as of the last sample; `nil` for a stand-alone broker.
    public private(set) var cluster: ClusterView?
    /// Whether the cluster pane is wanted (`n` toggles it); it shows only on a cluster node.
    public var isClusterPaneVisible = true
    /// First node row shown in the cluster pane.
    public private(set) var clusterScroll = 0
    /// Whether the topics view is shown in the clients pane's place (`t` or `topics` switch to it).
    public var isTopicsViewVisible = false
    /// The topics view's rows, as of the app's last snapshot (fed only while it is shown).
    public private(set) var topics = TopicsView()
    /// The drill-down view shown in the panes' place (Enter opens it, Esc closes it).
    public internal(set) var detail: DetailView?
    /// The log entry selected in the log pane, counted back from the newest visible one (0: the
    /// newest, which the selection follows while the log is live).
    public internal(set) var logSelection = 0
    /// The last minute of events/s, drawn as sparklines under the header; `nil` until the app records rates.
    public internal(set) var rates: RateHistory?
    /// Whether the rates pane is wanted (`r` toggles it).
    public var isRatesPaneVisible = true
    /// The bans or audit view, shown in the clients pane's place (`nil`: clients or topics). See ConsoleState+Ops.
    public internal(set) var opsPanel: OpsPanel?
    /// The bans view's rows, as of the app's last snapshot (fed only while it is shown).
    public internal(set) var bans = SelectableList<BanRow>()
    /// The audit view's rows, newest first (fed only while it is shown).
    public internal(set) var audit = SelectableList<AuditRow>()
    /// Whether the clients table shows this node's connections or every node's (`a`, `clients all`).
    public internal(set) var clientScope: ClientScope = .thisNode
    /// What the console put on the command line (`m` in the client detail, `/`), until the line is
    /// sent: Esc clears the line while it still reads exactly that, so a cancelled `m` does not come
    /// back at the next `:`; a line with anything typed on it stays, as Esc always leaves it.
    var commandPrefill: String?
    /// Active Tab cycle: the matches and which one is shown.
    private var completionCycle: (candidates: [String], index: Int, start: Int)?

    public init(
        editor: LineEditor = LineEditor(), clients: ClientTable = ClientTable(),
        log: EventLog = EventLog()
    ) {
        self.editor = editor
        self.clients = clients
        self.log = log
    }

    // MARK: Feeding data

    /// Replaces the topics view's rows with the latest snapshot.
    public mutating func updateTopics(_ rows: [TopicRow]) {
        topics.update(rows)
    }

    /// `t`: the topics view in the clients pane's place, or the clients again.
    public mutating func toggleTopicsView() {
        isTopicsViewVisible.toggle()
        opsPanel = nil
        focus = .clients
        setMessage(
            isTopicsViewVisible ? "topics view (t: back to the clients · s sort · S reverse)" : "clients view (t: topics)",
            severity: .info
        )
    }

    /// Replaces the client rows with the latest snapshot: this node's, and in the all-nodes table
    /// the other nodes' (see `ClientTable.update`).
    public mutating func updateClients(_ rows: [ClientRow], remote: RemoteClientRows? = nil, now: Double) {
        clients.update(rows, remote: remote, now: now)
    }

    /// Replaces the cluster view with the latest sample (`nil`: not a cluster node).
    public mutating func updateCluster(_ view: ClusterView?) {
        cluster = view
        if view == nil && focus == .cluster { focus = .clients }
    }

    /// Whether the cluster pane is asked for: on a cluster node, unless hidden with `n`.
    public var wantsClusterPane: Bool { cluster != nil && isClusterPaneVisible }

    /// The screen's geometry for this state (the panes' sizes depend on the rows they hold).
    public func geometry(for size: ScreenSize) -> LayoutGeometry {
        LayoutGeometry(
            size: size, clientRowCount: shownPaneRowCount,
            clusterRowCount: wantsClusterPane ? cluster?.nodes.count : nil,
            wantsRates: rates != nil && isRatesPaneVisible)
    }

    /// The rows of the view in the clients pane's place — the clients, the topics, the bans or the
    /// audit trail: the pane is sized by what it shows.
    var shownPaneRowCount: Int {
        switch opsPanel {
        case .bans: bans.rows.count
        case .audit: audit.rows.count
        case nil: isTopicsViewVisible ? topics.rows.count : clients.count
        }
    }

    /// `clusterScroll` kept within the rows a viewport of `height` can show.
    public func clampedClusterScroll(viewportHeight height: Int) -> Int {
        max(0, min(clusterScroll, (cluster?.nodes.count ?? 0) - max(1, height)))
    }

    public mutating func appendLog(_ entry: LogEntry) {
        log.append(entry)
        keepLogSelection(after: entry)
    }

    public mutating func appendLog(contentsOf entries: some Sequence<LogEntry>) {
        for entry in entries { appendLog(entry) }
    }

    /// Shows the outcome of a command on the message line.
    public mutating func setMessage(_ text: String, severity: MessageSeverity) {
        message = ResultMessage(text, severity: severity)
    }

    public mutating func clearMessage() {
        message = nil
    }

    /// Applies the commands that only change the UI (`clear`, `filter`, `help`, `clients`) and
    /// returns `true`; returns `false` for commands the app must carry out with the broker.
    public mutating func applyLocal(_ command: Command) -> Bool {
        if applyOps(command) { return true }
        switch command {
        case .clear:
            log.clear()
            logSelection = 0
            setMessage("log cleared", severity: .ok)
        case .filter(let text):
            log.setFilter(text)
            logSelection = 0
            if let text {
                setMessage("filter \"\(text)\": \(Format.thousands(log.visibleCount)) of \(Format.thousands(log.count)) entries", severity: .info)
            } else {
                setMessage("filter cleared", severity: .info)
            }
        case .help:
            isHelpVisible = true
        case .topics(nil):
            detail = nil
            if !isTopicsViewVisible { toggleTopicsView() }
        case .clients:
            detail = nil
            isTopicsViewVisible = false
            opsPanel = nil
            focus = .clients
            setMessage("\(Format.thousands(clients.connectedCount)) clients connected", severity: .info)
        case .nodes:
            guard let cluster else {
                setMessage(Self.notAClusterNode, severity: .error)
                return true
            }
            detail = nil
            isClusterPaneVisible = true
            focus = .cluster
            setMessage(cluster.summary, severity: cluster.isOnline ? .info : .error)
        default:
            return false
        }
        return true
    }

    /// The answer to `nodes` (and `n`) on a broker that is not part of a cluster.
    public static let notAClusterNode = "nodes: not a cluster node (start with --cluster URL)"

    // MARK: Keys

    /// Handles one key and returns what the app must do.
    public mutating func handle(_ key: Key, context: KeyContext) -> [ConsoleAction] {
        let geometry = geometry(for: context.screen)
        if key == .resize {
            clients.scrollToSelection(viewportHeight: geometry.clientsViewportHeight)
            return [.redraw]
        }
        if isHelpVisible {
            isHelpVisible = false  // the key only closes the overlay
            return []
        }
        if key != .tab && key != .backTab { completionCycle = nil }
        switch key {
        case .ctrl(let letter) where letter.lowercased() == "c": return [.quit]
        case .ctrl(let letter) where letter.lowercased() == "l": return [.redraw]
        case .function(1):
            isHelpVisible = true
            return []
        default:
            break
        }
        switch mode {
        case .command: return handleCommandMode(key, context: context, geometry: geometry)
        case .navigate where detail != nil: return handleDetailKey(key, geometry: geometry)
        case .navigate: return handleNavigateMode(key, geometry: geometry)
        }
    }

    private mutating func handleCommandMode(_ key: Key, context: KeyContext, geometry: LayoutGeometry) -> [ConsoleAction] {
        switch key {
        case .character(let character):
            if character == "?" && editor.isEmpty {
                isHelpVisible = true
            } else if !character.unicodeScalars.contains(where: CommandParser.isControl) {
                editor.insert(character)
            }
        case .enter:
            return submit()
        case .backspace: editor.backspace()
        case .delete: editor.deleteForward()
        case .left: editor.moveLeft()
        case .right: editor.moveRight()
        case .home: editor.moveToStart()
        case .end: editor.moveToEnd()
        case .up: editor.historyPrevious()
        case .down: editor.historyNext()
        case .pageUp where detail != nil, .pageDown where detail != nil:
            return handleDetailKey(key, geometry: geometry)
        case .pageUp: log.scrollUp(by: geometry.logViewportHeight, viewportHeight: geometry.logViewportHeight)
        case .pageDown: log.scrollDown(by: geometry.logViewportHeight, viewportHeight: geometry.logViewportHeight)
        case .tab: complete(context: context, forward: true)
        case .backTab: complete(context: context, forward: false)
        case .escape:
            if let prefill = commandPrefill, editor.text == prefill {
                editor.clear()
                clearMessage()  // "… Esc cancels": done
            }
            commandPrefill = nil
            mode = .navigate
        case .ctrl(let letter):
            switch letter.lowercased() {
            case "a": editor.moveToStart()
            case "e": editor.moveToEnd()
            case "b": editor.moveLeft()
            case "f": editor.moveRight()
            case "h": editor.backspace()
            case "d": editor.deleteForward()
            case "u": editor.killToStart()
            case "k": editor.killToEnd()
            case "w": editor.deleteWordBackward()
            case "y": editor.yank()
            case "p": editor.historyPrevious()
            case "n": editor.historyNext()
            default: break
            }
        case .function, .resize:
            break
        }
        return []
    }

    private mutating func submit() -> [ConsoleAction] {
        let line = editor.text
        guard line.contains(where: { !$0.isWhitespace }) else { return [] }
        do {
            let command = try CommandParser.parse(line)
            _ = editor.commit()
            commandPrefill = nil
            message = nil
            return [.execute(command)]
        } catch {
            // Keep the line so the user can fix it.
            setMessage(error.message, severity: .error)
            return []
        }
    }

    private mutating func complete(context: KeyContext, forward: Bool) {
        if let cycle = completionCycle {
            let count = cycle.candidates.count
            let index = (cycle.index + (forward ? 1 : -1) + count) % count
            editor.replace(cycle.start..<editor.cursor, with: cycle.candidates[index])
            completionCycle = (cycle.candidates, index, cycle.start)
            return
        }
        let ids = context.clientIDs ?? clients.clientIDs
        let result = Completion.complete(
            editor.characters, cursor: editor.cursor, clientIDs: ids, topics: context.topics ?? clients.topics)
        switch result.candidates.count {
        case 0:
            setMessage("no completions", severity: .info)
        case 1:
            editor.replace(result.wordRange, with: result.replacement)
            let next = editor.cursor < editor.characters.count ? editor.characters[editor.cursor] : nil
            if next != " " { editor.insert(" ") } else { editor.moveRight() }
            message = nil
        default:
            editor.replace(result.wordRange, with: result.replacement)
            // The next Tab starts with the first match (index -1 + 1).
            completionCycle = (result.candidates, forward ? -1 : 0, result.wordRange.lowerBound)
            let shown = result.candidates.prefix(50).joined(separator: " ")
            setMessage("\(result.candidates.count) matches: \(shown)", severity: .info)
        }
    }

    private mutating func handleNavigateMode(_ key: Key, geometry: LayoutGeometry) -> [ConsoleAction] {
        let clientsHeight = geometry.clientsViewportHeight
        let logHeight = geometry.logViewportHeight
        if focus == .cluster && !geometry.showsCluster { focus = .clients }
        if let actions = handleOpsKey(key, geometry: geometry) { return actions }
        switch key {
        case .up, .down, .pageUp, .pageDown, .home, .end:
            if focus == .cluster {
                let height = geometry.clusterViewportHeight
                let last = max(0, (cluster?.nodes.count ?? 0) - height)
                var scroll = clampedClusterScroll(viewportHeight: height)
                switch key {
                case .up: scroll -= 1
                case .down: scroll += 1
                case .pageUp: scroll -= height
                case .pageDown: scroll += height
                case .home: scroll = 0
                default: scroll = last
                }
                clusterScroll = max(0, min(scroll, last))
            } else if focus == .clients && isTopicsViewVisible {
                switch key {
                case .up: topics.scroll(by: -1, viewportHeight: clientsHeight)
                case .down: topics.scroll(by: 1, viewportHeight: clientsHeight)
                case .pageUp: topics.scroll(by: -max(1, clientsHeight - 1), viewportHeight: clientsHeight)
                case .pageDown: topics.scroll(by: max(1, clientsHeight - 1), viewportHeight: clientsHeight)
                case .home: topics.scrollToTop()
                default: topics.scrollToBottom(viewportHeight: clientsHeight)
                }
            } else if focus == .clients {
                switch key {
                case .up: clients.moveSelection(by: -1, viewportHeight: clientsHeight)
                case .down: clients.moveSelection(by: 1, viewportHeight: clientsHeight)
                case .pageUp: clients.pageUp(viewportHeight: clientsHeight)
                case .pageDown: clients.pageDown(viewportHeight: clientsHeight)
                case .home: clients.selectFirst(viewportHeight: clientsHeight)
                default: clients.selectLast(viewportHeight: clientsHeight)
                }
            } else {
                switch key {
                case .up: moveLogSelection(by: 1, viewportHeight: logHeight)
                case .down: moveLogSelection(by: -1, viewportHeight: logHeight)
                case .pageUp: moveLogSelection(by: logHeight, viewportHeight: logHeight)
                case .pageDown: moveLogSelection(by: -logHeight, viewportHeight: logHeight)
                case .home: moveLogSelection(by: log.visibleCount, viewportHeight: logHeight)
                default:
                    logSelection = 0
                    log.scrollToLive()
                }
            }
        case .tab, .backTab:
            var panes: [Pane] = [.clients, .log]
            if geometry.showsCluster { panes.insert(.cluster, at: 0) }
            let index = panes.firstIndex(of: focus) ?? 0
            let step = key == .tab ? 1 : panes.count - 1
            focus = panes[(index + step) % panes.count]
        case .enter:
            return openDetail(geometry: geometry)
        case .character(let character):
            switch character {
            case "r": toggleRatesPane()
            case "k": return actOnSelection { .kick(clientID: $0) }
            case "B": return actOnSelection { .ban(clientID: $0, duration: nil) }
            case "s" where isTopicsViewVisible: topics.cycleSortColumn()
            case "S" where isTopicsViewVisible: topics.reverseSort()
            case "s": clients.cycleSortColumn()
            case "S": clients.reverseSort()
            case "t": toggleTopicsView()
            case "/": prefillCommandLine("filter ")
            case ":", "i": mode = .command
            case "q": return [.quit]
            case "?": isHelpVisible = true
            case "c": return [.execute(.clear)]
            case "n": toggleClusterPane()
            case "G":
                logSelection = 0
                log.scrollToLive()
            case "g": moveLogSelection(by: log.visibleCount, viewportHeight: logHeight)
            default: break
            }
        default:
            break
        }
        return []
    }

    /// Opens the command line with `text` on it, which Esc clears again while it is untouched.
    mutating func prefillCommandLine(_ text: String) {
        mode = .command
        editor.setText(text)
        commandPrefill = text
    }

    /// `n`: shows or hides the cluster pane (the header keeps the cluster's state either way).
    private mutating func toggleClusterPane() {
        guard cluster != nil else {
            setMessage(Self.notAClusterNode, severity: .error)
            return
        }
        isClusterPaneVisible.toggle()
        if isClusterPaneVisible {
            focus = .cluster
        } else if focus == .cluster {
            focus = .clients
        }
        setMessage(isClusterPaneVisible ? "cluster pane shown (n hides it)" : "cluster pane hidden (n shows it)", severity: .info)
    }

    private mutating func actOnSelection(_ command: (String) -> Command) -> [ConsoleAction] {
        guard !isTopicsViewVisible else {
            setMessage("the topics view has no client selected (t: back to the clients)", severity: .error)
            return []
        }
        guard let row = clients.selectedRow else {
            setMessage("no client selected", severity: .error)
            return []
        }
        return [.execute(command(row.id))]
    }
}
