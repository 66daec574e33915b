@testable import SSEConsoleCore

/// A fixed scene for golden renderings: four connected clients (one at 2/3 errors), one departed,
/// a few log entries, and a fixed clock.
enum Fixtures {
    /// 2024-05-01 12:00:00 UTC.
    static let now: Double = 1_714_564_800

    static let header = HeaderStats(
        listenURL: "http://127.0.0.1:8080", uptime: 3_725, clientsConnected: 4,
        eventsInPerSecond: 12, eventsOutPerSecond: 9_900, bytesOutPerSecond: 5_347_737,
        totalDropped: 3, totalKicked: 1, totalRefused: 2, writeTimeout: 3, tolerance: 3, flags: "auth off")

    static let rows: [ClientRow] = [
        ClientRow(connectionID: 1, id: "alice", remoteAddress: "192.168.1.20:51234", connectedAt: now - 7_260,
                  eventsSent: 12_345, bytesSent: 1_234_567, consecutiveErrors: 0, totalErrors: 0, backlogBytes: 0),
        ClientRow(connectionID: 2, id: "bob", remoteAddress: "10.0.0.7:40001", connectedAt: now - 243,
                  eventsSent: 873, bytesSent: 98_304, consecutiveErrors: 2, totalErrors: 17, backlogBytes: 12_595),
        ClientRow(connectionID: 3, id: "dashboard-日本", remoteAddress: "[::1]:60000", connectedAt: now - 12,
                  eventsSent: 4, bytesSent: 512, consecutiveErrors: 1, totalErrors: 1, backlogBytes: 300),
        ClientRow(connectionID: 4, id: "alice", remoteAddress: "192.168.1.21:51300", connectedAt: now - 65,
                  eventsSent: 120, bytesSent: 4_096, consecutiveErrors: 0, totalErrors: 0, backlogBytes: 0),
        ClientRow(connectionID: 5, id: "carol", remoteAddress: "172.16.0.3:33000", connectedAt: now - 600,
                  eventsSent: 50, bytesSent: 2_048, consecutiveErrors: 3, totalErrors: 3, backlogBytes: 0,
                  departure: Departure(reason: .overTolerance, at: now - 1)),
    ]

    static let entries: [LogEntry] = [
        LogEntry(time: now - 65, source: .http, kind: .connect, target: "alice", message: "192.168.1.21:51300"),
        LogEntry(time: now - 30, source: .console, kind: .broadcast, type: "greeting", size: 11,
                 message: "hello\nworld"),
        LogEntry(time: now - 20, source: .api, kind: .broadcastTo, type: "price", target: "bob", size: 42,
                 message: #"{"symbol":"ACME","price":101.25,"currency":"EUR","note":"long preview text that will be cut"}"#),
        LogEntry(time: now - 12, source: .http, kind: .connect, target: "dashboard-日本", message: "[::1]:60000"),
        LogEntry(time: now - 5, source: .broker, kind: .error, target: "bob", message: "write timed out after 3s (2/3)"),
        LogEntry(time: now - 1, source: .broker, kind: .disconnect, target: "carol", message: "over tolerance (3/3)"),
        LogEntry(time: now, source: .console, kind: .kick, target: "mallory", message: "kicked 1 connection"),
    ]

    static func state() -> ConsoleState {
        var state = ConsoleState()
        state.updateClients(rows, now: now)
        state.appendLog(contentsOf: entries)
        state.editor.insert("broadcast greeting hello wor")
        state.setMessage("broadcast greeting → 4 clients", severity: .ok)
        return state
    }

    static func render(_ state: ConsoleState, cols: Int, rows: Int, colors: Bool = true) -> Canvas {
        Layout.render(state: state, header: header, now: now, size: ScreenSize(cols: cols, rows: rows), colors: colors)
    }
}
