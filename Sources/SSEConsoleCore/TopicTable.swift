/// One topic (or pattern) that connections subscribed to, with its subscribers.
public struct TopicRow: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// An event type.
        case exact
        /// A topic with `*`.
        case pattern
        /// The connections that asked for no topic: every event.
        case all
    }

    /// The topic as subscribed; ``TopicTable/allTopicsName`` for the connections without topics.
    public var topic: String
    public var kind: Kind
    /// Connections subscribed to it.
    public var subscribers: Int
    /// Their client ids, sorted, without duplicates.
    public var clientIDs: [String]
    /// Events published to it (whose type it matches) since the console started.
    public var events: Int
    /// Of those, per second lately.
    public var eventsPerSecond: Double
    /// When it last had an event (Unix seconds).
    public var lastEventAt: Double?

    public init(
        topic: String, kind: Kind, subscribers: Int, clientIDs: [String],
        events: Int = 0, eventsPerSecond: Double = 0, lastEventAt: Double? = nil
    ) {
        self.topic = topic
        self.kind = kind
        self.subscribers = subscribers
        self.clientIDs = clientIDs
        self.events = events
        self.eventsPerSecond = eventsPerSecond
        self.lastEventAt = lastEventAt
    }
}

/// The topics connections subscribed to, from a snapshot of the connections: a pure function, so
/// the headless `topics` command and any view share it.
public enum TopicTable {
    /// The row of the connections that asked for no topic.
    public static let allTopicsName = "(all)"

    /// One row per topic, most subscribers first (then by name), the connections without topics last.
    /// - Parameter connections: each connection's client id and topics (empty: every event).
    public static func rows(_ connections: some Sequence<(clientID: String, topics: [String])>) -> [TopicRow] {
        var subscribers: [String: Int] = [:]
        var clients: [String: Set<String>] = [:]
        var unfiltered = 0
        var unfilteredClients: Set<String> = []
        for connection in connections {
            if connection.topics.isEmpty {
                unfiltered += 1
                unfilteredClients.insert(connection.clientID)
            }
            for topic in connection.topics {
                subscribers[topic, default: 0] += 1
                clients[topic, default: []].insert(connection.clientID)
            }
        }
        var rows = subscribers.map { topic, count in
            TopicRow(
                topic: topic,
                kind: topic.contains("*") ? .pattern : .exact,
                subscribers: count,
                clientIDs: clients[topic, default: []].sorted()
            )
        }
        rows.sort { ($0.subscribers, $1.topic) > ($1.subscribers, $0.topic) }
        if unfiltered > 0 {
            rows.append(TopicRow(topic: allTopicsName, kind: .all, subscribers: unfiltered, clientIDs: unfilteredClients.sorted()))
        }
        return rows
    }

    /// The header of ``tsv(_:)``.
    public static let header = "TOPIC\tSUBSCRIBERS\tKIND\tCLIENTS"

    /// Tab-separated: the header line, then one line per row — topic, subscriber count, kind, and
    /// the first client ids (`…` when there are more).
    public static func tsv(_ rows: [TopicRow], maxClientIDs: Int = 10) -> String {
        let lines = rows.map { row in
            var ids = row.clientIDs.prefix(maxClientIDs).joined(separator: ",")
            if row.clientIDs.count > maxClientIDs { ids += ",…" }
            return "\(row.topic)\t\(row.subscribers)\t\(row.kind.rawValue)\t\(ids)"
        }
        return ([header] + lines).joined(separator: "\n")
    }
}
