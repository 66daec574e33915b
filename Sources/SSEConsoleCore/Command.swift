/// A console command, as produced by `CommandParser` and executed by the app.
public enum Command: Sendable, Hashable {
    /// Send an event to every client.
    case broadcast(type: String, data: String)
    /// Send an event to every connection of one client id.
    case broadcastTo(clientID: String, type: String, data: String)
    /// Disconnect every connection of a client id.
    case kick(clientID: String)
    /// Kick and refuse reconnects, for `duration` or (with `nil`) until `unban`.
    case ban(clientID: String, duration: Duration?)
    case unban(clientID: String)
    /// List (headless) or focus (TUI) the clients.
    case clients
    /// List the topics subscribed to, with their subscribers (`nil`), or the subscribers of one topic.
    case topics(String?)
    /// List (headless) or show and focus (TUI) the nodes of the cluster.
    case nodes
    /// `clients all` / `clients here`: the clients table shows every node's connections or this node's.
    case clientScope(ClientScope)
    /// List (headless) or show (TUI) the bans in force.
    case bans
    /// List (headless) or show (TUI) the audit trail's recent records.
    case audit
    /// Set the log filter; `nil` clears it.
    case filter(String?)
    /// Clear the log.
    case clear
    /// Write the log pane's entries (as filtered) to a file as JSON lines.
    case save(path: String)
    case help
    case quit
}

extension Command: CustomStringConvertible {
    /// Canonical form for echoing into the log; `CommandParser.parse` reads it back to the same
    /// command.
    public var description: String {
        switch self {
        case let .broadcast(type, data):
            "broadcast \(Self.token(type))\(Self.dataSuffix(data))"
        case let .broadcastTo(clientID, type, data):
            "broadcastTo \(Self.token(clientID)) \(Self.token(type))\(Self.dataSuffix(data))"
        case let .kick(clientID):
            "kick \(Self.token(clientID))"
        case let .ban(clientID, duration):
            "ban \(Self.token(clientID))" + (duration.map { " " + Format.durationToken($0) } ?? "")
        case let .unban(clientID):
            "unban \(Self.token(clientID))"
        case .clients: "clients"
        case let .topics(topic): topic.map { "topics \(Self.token($0))" } ?? "topics"
        case .nodes: "nodes"
        case let .clientScope(scope): "clients \(scope.rawValue)"
        case .bans: "bans"
        case .audit: "audit"
        case let .filter(text): text.map { "filter \($0)" } ?? "filter"
        case .clear: "clear"
        case let .save(path): "save \(Self.token(path))"
        case .help: "help"
        case .quit: "quit"
        }
    }

    /// Quotes a token when it would not read back as one plain word.
    static func token(_ text: String) -> String {
        let needsQuotes = text.isEmpty || text.first == "\"" || text.contains(" ")
        guard needsQuotes else { return text }
        var out = "\""
        for character in text {
            if character == "\"" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        return out + "\""
    }

    /// Data written back with escapes for backslashes and control characters.
    static func escapeData(_ data: String) -> String {
        var out = ""
        for scalar in data.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || (0x7F..<0xA0).contains(scalar.value) {
                    out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    private static func dataSuffix(_ data: String) -> String {
        data.isEmpty ? "" : " " + escapeData(data)
    }
}
