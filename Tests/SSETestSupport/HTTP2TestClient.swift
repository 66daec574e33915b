import Foundation

/// A real HTTP/2 client for tests: `Tests/Clients/h2client.py` (Python's `h2`, independent of the
/// server's swift-nio-http2) on one connection, driven command by command (see the script).
public final class HTTP2TestClient: Sendable {
    private let process: ChildProcess

    /// What the client saw: per client id, the event ids its stream received in order and how it
    /// was reset (an HTTP/2 error code), and the connection's `GOAWAY` code.
    public struct Report: Decodable, Sendable {
        public struct Stream: Decodable, Sendable {
            public var events: [String]
            public var reset: Int?
            public var status: Int?
        }
        public var streams: [String: Stream]
        public var goaway: Int?
    }

    private init(process: ChildProcess) {
        self.process = process
    }

    /// Connects to `127.0.0.1:port` with h2c prior knowledge, or TLS with ALPN `h2`.
    /// - Parameter window: the client's initial stream window (`SETTINGS_INITIAL_WINDOW_SIZE`).
    public static func connect(port: Int, tls: Bool = false, window: Int? = nil) async throws -> HTTP2TestClient {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Clients/h2client.py").path
        var arguments = ["python3", script, String(port)]
        if tls { arguments.append("--tls") }
        if let window { arguments += ["--window", String(window)] }
        let client = HTTP2TestClient(process: try ChildProcess.launch(arguments, interactive: true))
        _ = try await client.process.waitForLine { $0 == "connected" }
        return client
    }

    /// Sends `command` and returns its answer, the line starting with `answer`; a `timeout` or
    /// `error` line throws.
    @discardableResult
    public func run(_ command: String, answer: String) async throws -> String {
        try self.process.send(command)
        let line = try await self.process.waitForLine { $0.hasPrefix(answer) || $0.hasPrefix("timeout") || $0.hasPrefix("error") }
        guard line.hasPrefix(answer) else { throw ChildProcessError.failed("h2client: \(command): \(line)") }
        return line
    }

    /// Opens a subscriber stream `GET /connect?id=<id>`; returns the response status.
    @discardableResult
    public func open(_ id: String, stall: Bool = false) async throws -> Int {
        let line = try await self.run("open \(id)\(stall ? " stall" : "")", answer: "open \(id) ")
        return Int(line.split(separator: " ").last ?? "") ?? 0
    }

    /// Waits until every open stream (not reset, not stalled) has received `count` events.
    public func waitForEvents(_ count: Int) async throws {
        try await self.run("count \(count)", answer: "count \(count)")
    }

    /// Waits until the server resets the stream of `id`; returns the error code.
    public func waitForReset(of id: String) async throws -> Int {
        let line = try await self.run("reset-of \(id)", answer: "reset \(id) ")
        return Int(line.split(separator: " ").last ?? "") ?? -1
    }

    public func report() async throws -> Report {
        let line = try await self.run("report", answer: "report ")
        return try JSONDecoder().decode(Report.self, from: Data(line.dropFirst("report ".count).utf8))
    }

    public func close() {
        self.process.terminate()
    }
}
