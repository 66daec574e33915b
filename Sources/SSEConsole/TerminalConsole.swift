import Foundation
import SSEBroker
import SSEBrokerPostgres
import SSEBrokerServer
import SSEConsoleCore
import Synchronization

/// The full-screen console. The broker and its server run on their NIO event loops; this console
/// runs one UI thread that owns every curses call, reads keys, and draws from snapshots at most
/// 20 times a second — and only when something changed (or once a second for the clocks). It never
/// holds a broker lock while drawing and the broker never waits for it.
final class TerminalConsole: Sendable {
    private let broker: Broker
    private let listenURL: String
    private let feed: ConsoleFeed
    private let noColor: Bool
    /// `--ascii`: no block characters even on a UTF-8 terminal.
    private let ascii: Bool
    /// Shown at the end of the header, such as `auth pub+sub`.
    private let flags: String?
    private let startedAt = Date().timeIntervalSince1970
    private let quitRequested = Atomic<Bool>(false)
    /// On a cluster node: how the UI thread samples the cluster (it gets its own copy).
    private let clusterSampler: ClusterSampler?
    /// The audit trail, for the audit view.
    private let audit: AuditLog?
    /// On a cluster node: where every node's clients come from (the all-nodes table).
    private let backplane: PostgresCluster?
    /// The other nodes' latest snapshots, fetched off the UI thread while the all-nodes table is shown.
    private let remoteClients = Locked<[NodeClients]>([])
    private let wantsAllNodes = Atomic<Bool>(false)

    init(
        broker: Broker, listenURL: String, feed: ConsoleFeed, noColor: Bool, ascii: Bool = false, flags: String? = nil,
        cluster: ClusterSampler? = nil, audit: AuditLog? = nil, backplane: PostgresCluster? = nil
    ) {
        self.ascii = ascii
        self.audit = audit
        self.backplane = backplane
        self.flags = flags
        self.clusterSampler = cluster
        self.broker = broker
        self.listenURL = listenURL
        self.feed = feed
        self.noColor = noColor
    }

    /// Asks the UI thread to restore the terminal and return (signals use this).
    func requestQuit() {
        self.quitRequested.store(true, ordering: .relaxed)
    }

    /// What the UI thread cost, printed when the console exits.
    struct Report: Sendable, CustomStringConvertible {
        var frames = 0
        var seconds = 0.0
        /// CPU time of the UI thread alone (the broker's loops are not in it).
        var cpuSeconds = 0.0

        var description: String {
            let rate = self.seconds > 0 ? Double(self.frames) / self.seconds : 0
            let share = self.seconds > 0 ? 100 * self.cpuSeconds / self.seconds : 0
            return "console drew \(Format.thousands(self.frames)) frames in \(Format.duration(self.seconds)) "
                + "(\(Format.oneDecimal(rate))/s), UI thread CPU \(Format.oneDecimal(share))% of one core"
        }
    }

    /// Runs the UI on its own thread until the user quits.
    func run() async -> Report {
        let poller = self.backplane.map { backplane in
            Task { await self.pollOtherNodes(backplane) }
        }
        defer { poller?.cancel() }
        return await withCheckedContinuation { (done: CheckedContinuation<Report, Never>) in
            let thread = Thread { [self] in
                nameCurrentThread("sse-console-ui")
                done.resume(returning: self.uiLoop())
            }
            thread.name = "sse-console-ui"
            thread.start()
        }
    }

    /// While the all-nodes table is shown: asks the nodes for snapshots and reads them, once a
    /// second, off the UI thread (a query never stalls a frame). Nothing while it is not shown.
    private func pollOtherNodes(_ backplane: PostgresCluster) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            guard self.wantsAllNodes.load(ordering: .relaxed) else {
                self.remoteClients.withLock { $0 = [] }
                continue
            }
            do {
                try await backplane.requestClientSnapshots()
                // A node whose snapshot is unchanged since the last read is not fetched again.
                let previous = self.remoteClients.withLock { $0 }
                let snapshots = try await backplane.clientSnapshots(reusing: previous)
                self.remoteClients.withLock { $0 = snapshots }
            } catch {
                // Offline: the header says so; the rows keep their last snapshot until it is back.
            }
        }
    }

    /// Takes the other nodes' latest snapshots into `rows`, converting only those that changed.
    static func updateRemoteRows(_ rows: inout RemoteClientRows, from snapshots: [NodeClients]) {
        rows.update(
            snapshots.map { (node: $0.node, takenAt: $0.takenAt.timeIntervalSince1970, clients: $0.clients) },
            row: ConsoleFeed.row(for:))
    }

    private static func threadCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    private func uiLoop() -> Report {
        var report = Report()
        let loopStarted = Date().timeIntervalSince1970
        let screen = Screen(noColor: self.noColor, ascii: self.ascii)
        defer { screen.end() }
        let executor = CommandExecutor(broker: self.broker, audit: self.audit, backplane: self.backplane)
        var state = ConsoleState()
        var clusterSampler = self.clusterSampler
        // The other nodes' rows for the all-nodes table: converted when their snapshots change.
        var remoteRows = RemoteClientRows()
        var rates = RateMeter()
        var currentRates = RateMeter.Rates()
        let utcOffset = TimeZone.current.secondsFromGMT()
        state.setMessage("type help or press F1 · Esc to navigate the panes · Ctrl-C quits", severity: .info)

        var lastFrame = 0.0
        var lastSnapshot = 0.0
        var dirty = true
        var clearNext = false

        while !self.quitRequested.load(ordering: .relaxed) {
            if let key = screen.readKey() {
                dirty = true
                let clientIDs = Array(Set(state.clients.rows.lazy.filter { $0.departure == nil }.map(\.id))).sorted()
                for action in state.handle(key, context: KeyContext(screen: screen.size, clientIDs: clientIDs)) {
                    switch action {
                    case .quit:
                        self.requestQuit()
                    case .redraw:
                        clearNext = true
                    case .inspectEvent(let eventID):
                        let found = self.feed.recentEvents.data(of: eventID)
                        state.setEventData(found?.text, totalBytes: found?.totalBytes)
                    case .execute(.save(let path)):
                        Self.save(&state, to: path)
                    case .execute(let command):
                        if state.applyLocal(command) { continue }
                        switch executor.execute(command) {
                        case .quit:
                            self.requestQuit()
                        case .ok(let text) where command.isTopics:
                            // A table: its summary on the message line, its rows in the log.
                            let rows = text.split(separator: "\n").dropFirst().map { String($0.replacing("\t", with: "  ")) }
                            let what = command == .topics(nil) ? "topics" : "connections"
                            state.setMessage("\(rows.count) \(what): " + rows.prefix(8).joined(separator: " · "), severity: .ok)
                            let now = Date().timeIntervalSince1970
                            for row in rows.prefix(200) {
                                self.feed.post(LogEntry(time: now, source: .console, kind: .info, message: row))
                            }
                        case .ok(let text):
                            state.setMessage(text, severity: .ok)
                            self.logCommand(command, result: text)
                        case .error(let text):
                            state.setMessage(text, severity: .error)
                        }
                        lastSnapshot = 0  // show the effect at once
                    }
                }
            }

            let drained = self.feed.drain()
            if !drained.entries.isEmpty || !drained.departures.isEmpty {
                if drained.skipped > 0 {
                    state.appendLog(
                        LogEntry(time: Date().timeIntervalSince1970, source: .broker, kind: .info,
                                 message: "… \(Format.thousands(drained.skipped)) more entries skipped (log flood)")
                    )
                }
                state.appendLog(contentsOf: drained.entries)
                dirty = true
            }

            let now = Date().timeIntervalSince1970
            if now - lastSnapshot >= 0.25 || !drained.departures.isEmpty {
                let clients = self.broker.clients
                var rows = clients.map(ConsoleFeed.row(for:)) + drained.departures
                let allNodes = state.clientScope == .allNodes
                self.wantsAllNodes.store(allNodes, ordering: .relaxed)
                if allNodes, let backplane = self.backplane {
                    let node = backplane.configuration.nodeName
                    for index in rows.indices { rows[index].node = node }
                    Self.updateRemoteRows(&remoteRows, from: self.remoteClients.withLock { $0 })
                    state.updateClients(rows, remote: remoteRows, now: now)
                } else {
                    if !remoteRows.nodes.isEmpty { remoteRows = RemoteClientRows() }
                    state.updateClients(rows, now: now)
                }
                switch state.opsPanel {
                case .bans: state.updateBans(self.broker.bans.map(BanRow.init))
                case .audit: state.updateAudit((self.audit?.recent ?? []).map(AuditRow.init))
                case nil: break
                }
                if state.isTopicsViewVisible {
                    let topics = TopicTable.rows(clients.lazy.map { ($0.clientID, $0.topics) })
                    state.updateTopics(self.feed.topicActivity.enrich(topics, now: now))
                }
                currentRates = rates.add(self.broker.statistics, at: now)
                state.recordRates(eventsIn: currentRates.eventsIn, eventsOut: currentRates.eventsOut, at: now)
                if let inspected = state.inspectedClient {
                    // Only the inspected connection is looked at closely: O(connections) to find
                    // it, O(recent events) for its deliveries, four times a second while open.
                    if let origin = inspected.remote, let node = inspected.node {
                        // Another node's: only its snapshots know it, and only a newer one says it is gone.
                        switch remoteRows.sighting(node: node, key: inspected.connectionID, seenAt: origin.takenAt) {
                        case .present(let row): state.updateClientDetail(self.detail(ofRemote: row))
                        case .gone(let at): state.markInspectedClientDeparted(Departure(reason: .closed, at: at))
                        case .unknown: break
                        }
                    } else if let client = clients.first(where: { $0.connectionID == inspected.connectionID }) {
                        state.updateClientDetail(self.detail(of: client, node: state.cluster?.nodeName))
                    } else if let (client, departure) = self.feed.departedClient(inspected.connectionID) {
                        // Ended: the broker's last record of it (its misses say why it was cut).
                        state.updateClientDetail(self.detail(of: client, node: state.cluster?.nodeName, until: departure.at))
                        state.markInspectedClientDeparted(departure)
                    } else if let gone = state.clients.rows.first(where: { $0.connectionID == inspected.connectionID })?.departure {
                        state.markInspectedClientDeparted(gone)
                    } else {
                        state.markInspectedClientDeparted(Departure(reason: .closed, at: now))
                    }
                }
                // The backplane's status is read here only: at most four times a second, never per frame.
                if clusterSampler != nil {
                    let view = clusterSampler?.sample(now: now, connections: self.broker.connectionCount)
                    if view != state.cluster { dirty = true }
                    state.updateCluster(view)
                }
                lastSnapshot = now
            }
            guard !self.quitRequested.load(ordering: .relaxed) else { break }
            if (dirty && now - lastFrame >= 0.05) || now - lastFrame >= 1 {
                let header = self.header(now: now, rates: currentRates, cluster: state.cluster)
                let canvas = Layout.render(
                    state: state, header: header, now: now, size: screen.size, colors: screen.colors, utcOffset: utcOffset,
                    unicode: screen.unicode
                )
                screen.draw(canvas, clearFirst: clearNext)
                report.frames += 1
                clearNext = false
                dirty = false
                lastFrame = now
            }
        }
        report.seconds = Date().timeIntervalSince1970 - loopStarted
        report.cpuSeconds = Self.threadCPUSeconds()
        return report
    }

    /// `save FILE`: the log pane's entries, as filtered, as JSON lines.
    private static func save(_ state: inout ConsoleState, to path: String) {
        let entries = LogExport.visibleEntries(of: state.log)
        let data = LogExport.jsonLines(entries)
        do {
            try LogFileWriter.write(data, to: path)
            let filter = state.log.filter.map { " (filter \"\(Format.oneLine($0, maxCharacters: 40))\")" } ?? ""
            state.setMessage(
                "saved \(Format.thousands(entries.count)) entries\(filter) to \(path) (\(Format.bytes(data.count)))",
                severity: .ok)
        } catch {
            state.setMessage("save: \(error.description)", severity: .error)
        }
    }

    /// The client detail of one connection: the broker's snapshot and the deliveries derived
    /// from the events the console saw (up to `until`, when it ended).
    private func detail(of client: ClientInfo, node: String?, until: Double = .infinity) -> ClientDetail {
        let connectedAt = client.connectedAt.timeIntervalSince1970
        let deliveries = self.deliveries(
            client: client.clientID, topics: client.topics, connectedAt: connectedAt,
            resumedFrom: client.resumedFrom.flatMap { UInt64($0.trimmingCharacters(in: .whitespaces)) },
            replayed: client.replayedEvents, until: until)
        return ClientDetail(
            connectionID: client.connectionID, id: client.clientID, node: node,
            remoteAddress: client.remoteAddress ?? "-", userAgent: client.userAgent, httpVersion: client.httpVersion,
            topics: client.topics, tokenSubject: client.tokenSubject,
            tokenExpiresAt: client.tokenExpiresAt?.timeIntervalSince1970, connectedAt: connectedAt,
            resumedFrom: client.resumedFrom, replayedEvents: client.replayedEvents, eventsSent: client.eventsSent,
            bytesSent: client.bytesSent, backlogBytes: client.backlogBytes,
            consecutiveErrors: client.consecutiveErrors, totalErrors: client.totalErrors,
            errors: client.recentErrors.map {
                .init(time: $0.at.timeIntervalSince1970, text: $0.description, eventID: $0.eventID)
            },
            deliveries: deliveries)
    }

    /// The client detail of another node's connection: its row (as of its node's snapshot) and the
    /// deliveries derived from the events the console saw (every node's events reach this one).
    private func detail(ofRemote row: ClientRow) -> ClientDetail {
        var detail = ClientDetail(row: row)
        // Its resume is not in the snapshot: live deliveries only.
        detail.deliveries = self.deliveries(
            client: row.id, topics: row.topics, connectedAt: row.connectedAt, resumedFrom: nil, replayed: 0)
        detail.hasDeliveries = true
        return detail
    }

    private func deliveries(
        client: String, topics: [String], connectedAt: Double, resumedFrom: UInt64?, replayed: Int, until: Double = .infinity
    ) -> [ClientDetail.Delivery] {
        // The broker validated these topics when the client connected.
        let filter = (try? TopicFilter(topics.compactMap { try? Topic($0) })) ?? .everything
        return self.feed.recentEvents.deliveries(
            client: client, topics: filter, connectedAt: connectedAt, resumedFrom: resumedFrom, replayed: replayed,
            limit: ClientDetail.deliveryLimit, until: until)
    }

    private func header(now: Double, rates: RateMeter.Rates, cluster: ClusterView?) -> HeaderStats {
        let stats = self.broker.statistics
        let configuration = self.broker.configuration
        return HeaderStats(
            listenURL: self.listenURL,
            uptime: now - self.startedAt,
            clientsConnected: stats.connected,
            eventsInPerSecond: rates.eventsIn,
            eventsOutPerSecond: rates.eventsOut,
            bytesOutPerSecond: rates.bytesOut,
            totalDropped: stats.dropped,
            totalKicked: stats.kicked,
            totalRefused: stats.refused,
            writeTimeout: Double(configuration.writeTimeout.components.seconds)
                + Double(configuration.writeTimeout.components.attoseconds) / 1e18,
            tolerance: configuration.tolerance,
            flags: self.flags,
            cluster: cluster
        )
    }

    /// Commands that change the broker's state are logged; broadcasts log themselves via listen().
    private func logCommand(_ command: Command, result: String) {
        let kind: LogKind
        let target: String?
        switch command {
        case .kick(let id): (kind, target) = (.kick, id)
        case .ban(let id, _): (kind, target) = (.ban, id)
        case .unban(let id): (kind, target) = (.info, id)
        case .bans, .audit, .clientScope: return
        default: return
        }
        self.feed.post(LogEntry(time: Date().timeIntervalSince1970, source: .console, kind: kind, target: target, message: result))
    }
}

extension Command {
    /// `topics`, with or without a topic.
    var isTopics: Bool {
        if case .topics = self { return true }
        return false
    }
}
