import Foundation
import SSETestSupport
import Testing

/// Drives a real terminal: a private tmux server (its own socket, so nothing else is touched).
///
/// The server, and so every program its sessions start, runs in the `C.UTF-8` locale whatever the
/// machine's: the console draws sparklines and box lines only on a UTF-8 terminal, and tests must
/// not pass here and fail on a CI machine in the C locale.
struct Tmux {
    static let environment = ["LANG=C.UTF-8", "LC_ALL=C.UTF-8"]

    let socket = "sse-console-e2e-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let session = "console"

    @discardableResult
    func run(_ arguments: String...) throws -> String {
        try self.run(arguments)
    }

    @discardableResult
    func run(_ arguments: [String]) throws -> String {
        let (status, output) = try spawn(["env"] + Self.environment + ["tmux", "-u", "-L", self.socket] + arguments)
        guard status == 0 else { throw TmuxError.failed(arguments.joined(separator: " "), output) }
        return output
    }

    /// The visible screen, one string per row.
    func screen() throws -> String {
        try self.run("capture-pane", "-p", "-t", self.session)
    }

    func type(_ text: String) throws {
        try self.run("send-keys", "-t", self.session, "-l", text)
    }

    func press(_ keys: String...) throws {
        try self.run(["send-keys", "-t", self.session] + keys)
    }

    func display(_ format: String) throws -> String {
        try self.run("display-message", "-p", "-t", self.session, format).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Waits until the screen satisfies `condition` — the terminal has no event to await, so this
    /// polls the pane, bounded by `timeout`. Returns the matching screen.
    @discardableResult
    func waitForScreen(
        timeout: Duration = .seconds(20),
        _ what: String,
        _ condition: (String) -> Bool
    ) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            last = try self.screen()
            if condition(last) { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TmuxError.timedOut(what, last)
    }

    func kill() {
        _ = try? self.run("kill-server")
    }
}

enum TmuxError: Error, CustomStringConvertible {
    case failed(String, String)
    case timedOut(String, String)

    var description: String {
        switch self {
        case .failed(let command, let output): "tmux \(command) failed: \(output)"
        case .timedOut(let what, let screen): "timed out waiting for \(what); the screen was:\n\(screen)"
        }
    }
}

/// Runs a program to completion with `posix_spawn` and `waitpid`; stdout and stderr go to a file.
///
/// Not Foundation's `Process`: on Linux it learns that a child exited through a descriptor the
/// child inherits, and the tmux server that the first `tmux` command forks keeps that descriptor
/// open for ever, so `waitUntilExit()` would never return.
func spawn(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("spawn-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: outputPath) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    // NIO's sockets are not close-on-exec: without this the tmux server would keep copies of the
    // other tests' connections open for its whole life, and their peers would never see them close.
    closeInheritedDescriptors(&actions)
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    var attributes = cleanSpawnAttributes()
    defer { posix_spawnattr_destroy(&attributes) }
    let spawned = posix_spawnp(&pid, arguments[0], &actions, &attributes, &argv, environ)
    guard spawned == 0 else { throw TmuxError.failed(arguments.joined(separator: " "), "posix_spawnp: \(spawned)") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    // WEXITSTATUS: the exit code of a normally terminated child.
    return ((status & 0x7f) == 0 ? (status >> 8) & 0xff : -1, output)
}

/// The `sse-console` binary built beside this test bundle.
func consoleBinary() throws -> String {
    try builtExecutable("sse-console")
}

/// Spawn attributes with no blocked signals. Tests run on concurrency threads, which block every
/// signal, and a spawned child inherits its parent thread's mask: the tmux server then ignored
/// `kill-server`'s SIGTERM and outlived the test (with its pane's `sleep 600`).
func cleanSpawnAttributes() -> posix_spawnattr_t {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
    return attributes
}
