import Foundation
import NIOCore
import SSEBrokerServer
import SSEClient
import SSETestSupport
import Testing

@testable import SSEConsole

/// The `sse-console` executable as a process: signals, exit codes, what it prints.
@Suite(.timeLimit(.minutes(1)))
struct ConsoleProcessTests {
    @Test func sigterm_deliversAcceptedEvents_saysFarewell_andExits0() async throws {
        let console = try ConsoleProcess.start(["--no-tui", "--port", "0", "--heartbeat", "60"])
        defer { console.killIfRunning() }
        let port = try await console.listeningPort()
        let client = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=alice")
        var messages = client.messages.makeAsyncIterator()
        #expect(await messages.next() == .comment("connected alice"))
        let producer = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        for index in 1...3 {
            #expect(try await producer.post("/broadcast", body: "e\(index)").status == .accepted)
        }
        kill(console.pid, SIGTERM)
        var rest: [SSEMessage] = []
        while let message = await messages.next() { rest.append(message) }
        let data = rest.compactMap { message -> String? in
            if case .event(let event) = message { return event.data }
            return nil
        }
        #expect(data == ["e1", "e2", "e3"])
        #expect(rest.last == .comment("broker shutting down"))
        let status = try await console.waitForExit(within: .seconds(10))
        #expect(status == 0)
    }

    /// Restarted without `--history-file`: ids go on growing, and a browser resuming with an id of
    /// the first run is told its resume has a gap (header and `sse-gap` event), not silently starved.
    @Test func restartWithoutHistoryFile_idsKeepGrowing_andAResumeFromBeforeIsAGap() async throws {
        func publish(_ port: Int, _ body: String) async throws -> UInt64 {
            let producer = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
            defer { Task { await producer.close() } }
            let response = try await producer.post("/broadcast", body: body)
            #expect(response.status == .accepted)
            let json = try JSONSerialization.jsonObject(with: Data(response.text.utf8)) as? [String: Any]
            return try #require((json?["id"] as? String).flatMap { UInt64($0) })
        }
        var seen: UInt64 = 0
        do {
            let console = try ConsoleProcess.start(["--no-tui", "--port", "0"])
            defer { console.killIfRunning() }
            let port = try await console.listeningPort()
            for index in 1...5 { seen = try await publish(port, "old \(index)") }
            kill(console.pid, SIGTERM)
            #expect(try await console.waitForExit(within: .seconds(10)) == 0)
        }
        let console = try ConsoleProcess.start(["--no-tui", "--port", "0"])
        defer { console.killIfRunning() }
        let port = try await console.listeningPort()
        let first = try await publish(port, "new 1")
        _ = try await publish(port, "new 2")
        #expect(first > seen)
        let client = try await SSEClient.connect(host: "127.0.0.1", port: port, path: "/connect?id=b", headers: ["Last-Event-ID": String(seen)])
        #expect(client.headers.first(name: "sse-replay") == "gap")
        var reader = StreamReader(client)
        let gap = try await reader.nextEvent()
        #expect(gap.type == "sse-gap")
        #expect(gap.data.contains(#""lastEventId":"\#(seen)""#))
        #expect(gap.data.contains(#""oldestId":"\#(first)""#))
        #expect(try await reader.data(2) == ["new 1", "new 2"])
        await client.close()
        kill(console.pid, SIGTERM)
        #expect(try await console.waitForExit(within: .seconds(10)) == 0)
    }

    @Test func stormOptions_areValidated() throws {
        #expect(throws: (any Error).self) { try ConsoleCommand.parse(["--max-connect-rate", "0"]) }
        #expect(throws: (any Error).self) { try ConsoleCommand.parse(["--drain", "-1"]) }
        let parsed = try ConsoleCommand.parse(["--max-connect-rate", "500", "--drain", "10"])
        #expect(try parsed.serverSecurity(environment: [:]).limits.maxConnectRate == 500)
        #expect(parsed.general.drain == 10)
    }

    @Test func nonLoopbackHostWithoutToken_printsAWarning_unlessAllowed() async throws {
        for (arguments, warns) in [([String](), true), (["--allow-open"], false), (["--publish-token", "t0ken"], false)] {
            let console = try ConsoleProcess.start(["--no-tui", "--host", "0.0.0.0", "--port", "0"] + arguments)
            defer { console.killIfRunning() }
            _ = try await console.listeningPort()
            kill(console.pid, SIGTERM)
            #expect(try await console.waitForExit(within: .seconds(10)) == 0)
            #expect(console.standardError.contains("warning: listening on 0.0.0.0 without a publish token") == warns, "\(arguments)")
        }
    }

    @Test func openAccessWarning_onlyForNonLoopbackHostsWithoutAToken() {
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"] {
            #expect(ConsoleCommand.openAccessWarning(host: host, hasPublishToken: false, allowOpen: false) == nil, "\(host)")
        }
        for host in ["0.0.0.0", "::", "192.168.1.5", "example.com", "127.0.0.1.example.com"] {
            #expect(ConsoleCommand.openAccessWarning(host: host, hasPublishToken: false, allowOpen: false) != nil, "\(host)")
            #expect(ConsoleCommand.openAccessWarning(host: host, hasPublishToken: true, allowOpen: false) == nil)
            #expect(ConsoleCommand.openAccessWarning(host: host, hasPublishToken: false, allowOpen: true) == nil)
        }
    }

    @Test func secrets_comeFromTheFlag_theFile_orTheEnvironment() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sse-token-\(UUID().uuidString)").path
        try "from-file\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let secret = String(repeating: "k", count: 32)

        let fromFile = try ConsoleCommand.parse(["--publish-token-file", file]).serverSecurity(environment: [:])
        #expect(fromFile.publishToken?.accepts("from-file") == true)
        let fromEnv = try ConsoleCommand.parse([]).serverSecurity(environment: ["SSE_PUBLISH_TOKEN": "from-env", "SSE_SUBSCRIBER_SECRET": secret])
        #expect(fromEnv.publishToken?.accepts("from-env") == true)
        #expect(fromEnv.authSummary == "auth pub+sub")
        let flagWins = try ConsoleCommand.parse(["--publish-token", "from-flag"]).serverSecurity(environment: ["SSE_PUBLISH_TOKEN": "from-env"])
        #expect(flagWins.publishToken?.accepts("from-flag") == true)
        #expect(try ConsoleCommand.parse([]).serverSecurity(environment: [:]).authSummary == "auth off")

        #expect(throws: (any Error).self) { try ConsoleCommand.parse(["--subscriber-secret", "short"]) }
        #expect(throws: (any Error).self) { try ConsoleCommand.parse(["--cors-origin", "*", "--cors-origin", "https://a.example"]) }
        #expect(throws: (any Error).self) { try ConsoleCommand.parse(["--max-clients", "0"]) }
        #expect(throws: (any Error).self) { try ConsoleCommand.parse(["--publish-token", "a", "--publish-token-file", file]) }
    }

    @Test func help_fitsIn80Columns_withTheGeneralOptionsFirst() {
        let help = ConsoleCommand.helpMessage(columns: 80)
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.allSatisfy { $0.count <= 80 }, "\(lines.filter { $0.count > 80 })")
        // The overview is wrapped by the parser, not by hand: no line of a paragraph stops short.
        let overview = help.components(separatedBy: "USAGE:")[0].components(separatedBy: "\n\n").dropFirst()
        for paragraph in overview {
            let paragraphLines = paragraph.split(separator: "\n")
            #expect(paragraphLines.dropLast().allSatisfy { $0.count >= 60 }, "\(paragraphLines)")
        }
        let sections = lines.filter { $0.hasSuffix(":") && $0.uppercased() == $0 }.map(String.init)
        #expect(sections == ["GENERAL:", "DELIVERY:", "ACCESS CONTROL AND LIMITS:", "TLS:", "HTTP/2:", "DURABLE HISTORY:", "CLUSTER:", "AUDIT:", "OPTIONS:"])
        // Values are named for what they are, not after their option (`--port <port>` aside).
        #expect(!help.contains("<publish-token-file>") && !help.contains("<cluster-startup-wait>"))
    }
}

/// `sse-console` started with `posix_spawn`: stdout through a pipe (for the `listening on` line),
/// stderr into a file, stdin from `/dev/null` (end of input does not stop the broker).
final class ConsoleProcess: Sendable {
    let pid: pid_t
    private let stdout: FileHandle
    private let stderrPath: String

    private init(pid: pid_t, stdout: FileHandle, stderrPath: String) {
        self.pid = pid
        self.stdout = stdout
        self.stderrPath = stderrPath
    }

    static func start(_ arguments: [String]) throws -> ConsoleProcess {
        let binary = try consoleBinary()
        let stderrPath = FileManager.default.temporaryDirectory.appendingPathComponent("sse-console-\(UUID().uuidString).err").path
        let pipe = Pipe()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipe.fileHandleForWriting.fileDescriptor, 1)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // Nothing else: the other tests' sockets (not close-on-exec in NIO) must not live on in the child.
        closeInheritedDescriptors(&actions)
        var argv: [UnsafeMutablePointer<CChar>?] = ([binary] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        var attributes = cleanSpawnAttributes()
        defer { posix_spawnattr_destroy(&attributes) }
        let spawned = posix_spawn(&pid, binary, &actions, &attributes, &argv, environ)
        guard spawned == 0 else { throw TmuxError.failed(binary, "posix_spawn: \(spawned)") }
        try pipe.fileHandleForWriting.close()
        return ConsoleProcess(pid: pid, stdout: pipe.fileHandleForReading, stderrPath: stderrPath)
    }

    /// Reads stdout until the `listening on http://HOST:PORT` line and returns the port.
    func listeningPort() async throws -> Int {
        try await self.listening().port
    }

    /// Reads stdout until the `listening on SCHEME://HOST:PORT` line; returns the scheme and port.
    func listening() async throws -> (scheme: String, port: Int) {
        let stdout = self.stdout
        let line = await Task.detached {
            var text = ""
            while !text.contains("\n") {
                let chunk = stdout.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            return text
        }.value
        guard let match = line.firstMatch(of: /listening on (https?):\/\/[^:]+:(\d+)/), let port = Int(match.output.2) else {
            throw TmuxError.failed("sse-console", "no listening line; stdout: \(line); stderr: \(self.standardError)")
        }
        return (String(match.output.1), port)
    }

    /// Waits for the process to exit; its exit code, or -1 if a signal ended it. No event tells a
    /// parent that its child exited except SIGCHLD, so this polls `waitpid`, bounded by `limit`.
    func waitForExit(within limit: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + limit
        var status: Int32 = 0
        while waitpid(self.pid, &status, WNOHANG) == 0 {
            guard ContinuousClock.now < deadline else {
                throw TmuxError.timedOut("sse-console to exit", self.standardError)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    }

    var standardError: String {
        (try? String(contentsOfFile: self.stderrPath, encoding: .utf8)) ?? ""
    }

    /// Waits until stderr (a file: the log, which announces what it did nowhere else) contains
    /// `text`, checking every 20 ms for at most `limit`.
    func waitForStandardError(containing text: String, within limit: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + limit
        while !self.standardError.contains(text) {
            guard ContinuousClock.now < deadline else {
                throw TmuxError.failed("sse-console", "no \"\(text)\" on stderr within \(limit): \(self.standardError)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func killIfRunning() {
        var status: Int32 = 0
        if waitpid(self.pid, &status, WNOHANG) == 0 {
            kill(self.pid, SIGKILL)
            waitpid(self.pid, &status, 0)
        }
        try? FileManager.default.removeItem(atPath: self.stderrPath)
    }
}
