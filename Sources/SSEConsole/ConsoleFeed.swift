import Foundation
import Logging
import NIOCore
import SSEBroker
import SSEConsoleCore

/// What the console learns from the broker between two frames: log entries and departed clients.
///
/// Fed by tasks that read the broker's `listen()` and `activity()` streams (bounded, so a busy
/// broker never waits for the console) and by the log handler; drained by the UI thread once per
/// frame. Only the newest ``capacity`` entries are kept between frames: under a flood the log pane
/// shows the latest and says how many it skipped.
final class ConsoleFeed: Sendable {
    private struct Inbox {
        var entries = CircularBuffer<LogEntry>(initialCapacity: 256)
        var skipped = 0
        var departures: [ClientRow] = []
    }

    /// Whether the last cluster state logged was `offline`, so retries read as "still offline".
    private let clusterOffline = Locked(false)

    /// Records the cluster's state as logged; returns the previous one (`true`: offline).
    func noteCluster(offline: Bool) -> Bool {
        self.clusterOffline.withLock { state in
            defer { state = offline }
            return state
        }
    }

    let capacity: Int
    private let inbox = Locked(Inbox())
    /// The connections that ended last, as the broker last saw them (with their misses and why they
    /// ended), so a client detail open or opened on one still says why it was cut. Bounded: a
    /// disconnect storm keeps only the newest ``departedLimit``.
    private let departed = Locked(Departed())
    static let departedLimit = 1000

    private struct Departed {
        var clients: [UInt64: (ClientInfo, Departure)] = [:]
        var order = CircularBuffer<UInt64>(initialCapacity: 64)
    }

    /// A connection that ended recently: the broker's last record of it, and why and when it ended.
    func departedClient(_ connectionID: UInt64) -> (ClientInfo, Departure)? {
        self.departed.withLock { $0.clients[connectionID] }
    }
    /// Events per type, for the topics view.
    let topicActivity = TopicActivity()
    /// The latest events in full, for the event and client detail views.
    let recentEvents = RecentEvents()

    init(capacity: Int = 2000) {
        self.capacity = capacity
    }

    func post(_ entry: LogEntry) {
        self.inbox.withLock { inbox in
            if inbox.entries.count == self.capacity {
                inbox.entries.removeFirst()
                inbox.skipped += 1
            }
            inbox.entries.append(entry)
        }
    }

    /// Takes everything posted since the last call.
    func drain() -> (entries: [LogEntry], skipped: Int, departures: [ClientRow]) {
        self.inbox.withLock { inbox in
            defer { inbox = Inbox() }
            return (Array(inbox.entries), inbox.skipped, inbox.departures)
        }
    }

    /// Starts reading the broker's streams; the tasks end when the broker shuts down.
    func follow(_ broker: Broker) {
        let events = broker.listen()
        let activity = broker.activity()
        Task.detached { [self] in
            for await event in events {
                let now = Date().timeIntervalSince1970
                self.topicActivity.record(type: event.type, at: now)
                self.recentEvents.record(event, at: now)
                self.post(Self.entry(for: event, at: now))
            }
        }
        Task.detached { [self] in
            for await change in activity {
                self.record(change)
            }
        }
    }

    private func record(_ change: BrokerActivity) {
        let now = Date().timeIntervalSince1970
        switch change {
        case .connected(let client):
            var detail = client.remoteAddress ?? "-"
            if let agent = client.userAgent { detail += "  \(agent)" }
            self.post(LogEntry(time: now, source: .http, kind: .connect, target: client.clientID, message: detail))
        case .disconnected(let client, let reason):
            var row = Self.row(for: client)
            let departure = Departure(reason: Self.departureReason(reason), at: now)
            row.departure = departure
            self.inbox.withLock { $0.departures.append(row) }
            self.departed.withLock { departed in
                if departed.order.count == Self.departedLimit, let oldest = departed.order.popFirst() {
                    departed.clients[oldest] = nil
                }
                departed.order.append(client.connectionID)
                departed.clients[client.connectionID] = (client, departure)
            }
            let why: String
            switch reason {
            case .overTolerance: why = "over tolerance (\(client.consecutiveErrors) errors in a row)"
            default: why = reason.description
            }
            let kind: LogKind = reason == .overTolerance ? .error : .disconnect
            self.post(
                LogEntry(
                    time: now, source: .broker, kind: kind, target: client.clientID,
                    message: "\(why) · \(Format.thousands(client.eventsSent)) events · \(client.totalErrors) errors"
                )
            )
        }
    }

    static func entry(for event: Event, at time: Double = Date().timeIntervalSince1970) -> LogEntry {
        // A preview needs only the start of the payload; never decode a megabyte for one log line.
        let head = String(decoding: event.data.readableBytesView.prefix(600), as: UTF8.self)
        return LogEntry(
            time: time,
            source: Self.source(event.origin),
            kind: event.target == nil ? .broadcast : .broadcastTo,
            type: event.type ?? "message",
            target: event.target,
            size: event.data.readableBytes,
            message: (event.recipients.map { "→ \($0) · " } ?? "") + LogEntry.preview(of: head),
            eventID: event.id,
            recipients: event.recipients
        )
    }

    static func row(for client: ClientInfo) -> ClientRow {
        var row = ClientRow(
            connectionID: client.connectionID,
            id: client.clientID,
            remoteAddress: client.remoteAddress ?? "-",
            connectedAt: client.connectedAt.timeIntervalSince1970,
            eventsSent: client.eventsSent,
            bytesSent: client.bytesSent,
            consecutiveErrors: client.consecutiveErrors,
            totalErrors: client.totalErrors,
            backlogBytes: client.backlogBytes,
            topics: client.topics,
            departure: nil
        )
        row.httpVersion = client.httpVersion
        return row
    }

    private static func source(_ origin: EventOrigin) -> LogSource {
        switch origin {
        case .http: .http
        case .console: .console
        default: .api
        }
    }

    private static func departureReason(_ reason: DisconnectReason) -> DepartureReason {
        switch reason {
        case .closed: .closed
        case .kicked: .kicked
        case .overTolerance: .overTolerance
        case .banned: .banned
        case .shutdown: .shutdown
        case .expired: .expired
        }
    }
}

/// Routes swift-log records into the console's log pane (the terminal belongs to curses, so
/// nothing may be written to stderr while it runs). Refused HTTP requests become `error` entries;
/// connects and disconnects are skipped here because the activity stream already reports them.
struct ConsoleLogHandler: LogHandler {
    let label: String
    let feed: ConsoleFeed
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let message = event.message.description
        guard message != "client connected", message != "client disconnected" else { return }
        let metadata = self.metadata.merging(event.metadata ?? [:]) { $1 }
        if self.label == "sse.cluster" {
            self.feed.post(self.clusterEntry(message, metadata: metadata, level: event.level))
            return
        }
        let source: LogSource = self.label.hasSuffix("http") || self.label.hasSuffix("server") ? .http : .broker
        let kind: LogKind = message == "request refused" || event.level >= .warning ? .error : .info
        var text = message
        if message == "request refused", let status = metadata["status"], let error = metadata["error"] {
            text = "\(status) \(metadata["method"].map { "\($0) " } ?? "")\(metadata["uri"] ?? "") — \(error)"
        } else if !metadata.isEmpty {
            text += " " + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        self.feed.post(LogEntry(time: Date().timeIntervalSince1970, source: source, kind: kind, target: metadata["client"]?.description, message: text))
    }

    /// The backplane's records as sentences: `offline: connection refused · retry in 2s`,
    /// `online again · caught up 37 events · last id 120`. A retry while offline is not red again.
    func clusterEntry(_ message: String, metadata: Logger.Metadata, level: Logger.Level) -> LogEntry {
        let now = Date().timeIntervalSince1970
        func value(_ key: String) -> String? { metadata[key].map { "\($0)" } }
        let lastID = value("lastEventId").map { " · last id \($0)" } ?? ""
        var kind: LogKind = level >= .warning ? .error : .info
        var text: String
        switch message {
        case "cluster offline":
            let wasOffline = self.feed.noteCluster(offline: true)
            let retry = value("retryIn").flatMap(Self.seconds).map { " · retry in \(Format.seconds($0))" } ?? ""
            text = (wasOffline ? "still offline: " : "lost the shared log: ") + (value("reason") ?? "unknown") + retry
            kind = wasOffline ? .info : .offline
        case "cluster online":
            let wasOffline = self.feed.noteCluster(offline: false)
            text = (wasOffline ? "back online" : "online") + (value("node").map { " as \($0)" } ?? "") + lastID
            kind = .online
        case "caught up from the shared log":
            text = "caught up \(value("events") ?? "?") events missed while offline" + lastID
        case "replay history restored from the shared log":
            text = "replay history restored: \(value("events") ?? "?") events from the shared log" + lastID
        case "publish failed":
            text = "publish failed: \(value("events") ?? "?") events — \(value("error") ?? "unknown error")"
        default:
            text = message
            if !metadata.isEmpty {
                text += " " + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            }
        }
        return LogEntry(time: now, source: .cluster, kind: kind, message: text)
    }

    /// `"1.5 seconds"` (a `Duration`'s description) as a number.
    static func seconds(_ text: String) -> Double? {
        text.split(separator: " ").first.flatMap { Double($0) }
    }
}
