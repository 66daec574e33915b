import Foundation

/// A long-running child process (a browser driver, the console executable) for end-to-end tests:
/// started with `posix_spawn`, its stdout read through a pipe, its stderr kept in a file for the
/// failure message, and stopped with a signal at the end.
///
/// Not Foundation's `Process`: on Linux it learns that a child exited through a descriptor the
/// child inherits, and children that fork helpers (chromedriver starts chromium) keep it open.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let arguments: [String]
    /// Where the child's stderr goes.
    public let stderrPath: String
    private let output: Int32
    /// The write end of the child's stdin, for ``send(_:)``; -1 when its stdin is `/dev/null`.
    private let input: Int32
    private let lock = NSLock()
    private var buffered: [UInt8] = []
    private var exited = false

    private init(pid: pid_t, arguments: [String], output: Int32, input: Int32, stderrPath: String) {
        self.pid = pid
        self.arguments = arguments
        self.output = output
        self.input = input
        self.stderrPath = stderrPath
    }

    deinit {
        close(self.output)
        if self.input >= 0 { close(self.input) }
    }

    /// Starts `arguments[0]` (looked up in `PATH`) with stdin from `/dev/null`, or from a pipe that
    /// ``send(_:)`` writes to if `interactive`.
    public static func launch(_ arguments: [String], interactive: Bool = false) throws -> ChildProcess {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ChildProcessError.failed("pipe: errno \(errno)") }
        var stdinFDs: [Int32] = [-1, -1]
        if interactive {
            guard pipe(&stdinFDs) == 0 else { throw ChildProcessError.failed("pipe: errno \(errno)") }
            // A child that has exited must fail the write, not kill the test process.
            signal(SIGPIPE, SIG_IGN)
        }
        // Only the child's stdout may hold the write end (dup2 clears the flag there), or the pipe
        // would never report the end of the child's output.
        for fd in fds + stdinFDs where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let stderrPath = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString).log").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if interactive {
            posix_spawn_file_actions_adddup2(&actions, stdinFDs[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        closeInheritedDescriptors(&actions)
        // Default signal handling and no blocked signals in the child: an ignored SIGTERM (the test
        // process may ignore it to handle it elsewhere) is inherited across exec otherwise.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, &attributes, &argv, environ)
        close(fds[1])
        if interactive { close(stdinFDs[0]) }
        guard spawned == 0 else {
            close(fds[0])
            if interactive { close(stdinFDs[1]) }
            throw ChildProcessError.failed("could not start \(arguments[0]): \(String(cString: strerror(spawned)))")
        }
        return ChildProcess(pid: pid, arguments: arguments, output: fds[0], input: stdinFDs[1], stderrPath: stderrPath)
    }

    /// Writes `line` and a newline to the child's stdin (launched `interactive`).
    public func send(_ line: String) throws {
        precondition(self.input >= 0, "launched without interactive: true")
        let bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(self.input, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw ChildProcessError.failed("writing to \(self.arguments[0]): errno \(errno)")
            }
            offset += written
        }
    }

    /// Reads the child's stdout until a line satisfies `match`, on a thread of its own (the read
    /// blocks), bounded by `timeout`. Throws if the child closes stdout or the time runs out.
    public func waitForLine(timeout: Duration = .seconds(30), _ match: @escaping @Sendable (String) -> Bool) async throws -> String {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String, any Error>) in
            let thread = Thread {
                continuation.resume(with: Result { try self.blockingWaitForLine(timeout: timeout, match) })
            }
            thread.name = "child-stdout"
            thread.start()
        }
    }

    private func blockingWaitForLine(timeout: Duration, _ match: (String) -> Bool) throws -> String {
        self.lock.lock()
        defer { self.lock.unlock() }
        let deadline = ContinuousClock.now + timeout
        var seen: [String] = []
        while true {
            while let newline = self.buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: self.buffered[..<newline], as: UTF8.self)
                self.buffered.removeSubrange(...newline)
                seen.append(line)
                if match(line) { return line }
            }
            let left = deadline - ContinuousClock.now
            guard left > .zero else {
                throw ChildProcessError.failed("timed out waiting for a line from \(self.arguments[0]); it printed \(seen)\(self.stderrTail())")
            }
            var pollfd = pollfd(fd: self.output, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000, 1000))
            let ready = poll(&pollfd, 1, max(milliseconds, 1))
            if ready < 0 && errno != EINTR { throw ChildProcessError.failed("poll: errno \(errno)") }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(self.output, &chunk, chunk.count)
            if count <= 0 {
                throw ChildProcessError.failed("\(self.arguments[0]) closed its output; it printed \(seen)\(self.stderrTail())")
            }
            self.buffered.append(contentsOf: chunk[..<count])
        }
    }

    private func stderrTail() -> String {
        let text = (try? String(contentsOfFile: self.stderrPath, encoding: .utf8)) ?? ""
        return text.isEmpty ? "" : "\nstderr:\n" + String(text.suffix(2000))
    }

    /// Sends `signal` and waits for the child to exit (killing it if it takes longer than `grace`).
    /// - Returns: its exit status (`-signal` if a signal ended it).
    @discardableResult
    public func terminate(signal: Int32 = SIGTERM, grace: Duration = .seconds(10)) -> Int32 {
        self.lock.lock()
        defer { self.lock.unlock() }
        guard !self.exited else { return 0 }
        kill(self.pid, signal)
        let deadline = ContinuousClock.now + grace
        var status: Int32 = 0
        while true {
            let result = waitpid(self.pid, &status, WNOHANG)
            if result == self.pid { break }
            if result == -1 && errno != EINTR { return -1 }
            if ContinuousClock.now > deadline {
                kill(self.pid, SIGKILL)
                while waitpid(self.pid, &status, 0) == -1 && errno == EINTR {}
                break
            }
            usleep(10_000)  // a child's exit has no descriptor to wait on here; bounded by `grace`
        }
        self.exited = true
        try? FileManager.default.removeItem(atPath: self.stderrPath)
        // WIFEXITED / WEXITSTATUS / WTERMSIG.
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -(status & 0x7f)
    }

    /// Waits for the child to exit on its own. - Returns: its exit status (`-signal` if a signal ended it).
    public func waitForExit() -> Int32 {
        self.lock.lock()
        defer { self.lock.unlock() }
        var status: Int32 = 0
        while waitpid(self.pid, &status, 0) == -1 && errno == EINTR {}
        self.exited = true
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -(status & 0x7f)
    }

    /// The last part of what the child wrote on stderr, for failure messages.
    public var stderrText: String {
        (try? String(contentsOfFile: self.stderrPath, encoding: .utf8)).map { String($0.suffix(2000)) } ?? ""
    }

    /// Finds `name` in `PATH`.
    public static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// The path of an executable product built next to the test bundle (`swift build --build-tests`
/// builds them all).
public func builtExecutable(_ name: String) throws -> String {
    let testBinary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    var directory = URL(fileURLWithPath: testBinary).deletingLastPathComponent()
    // The bundle may sit in a `.xctest` directory on some layouts.
    if directory.lastPathComponent.hasSuffix(".xctest") { directory.deleteLastPathComponent() }
    let binary = directory.appendingPathComponent(name).path
    guard FileManager.default.isExecutableFile(atPath: binary) else {
        throw ChildProcessError.failed("no executable at \(binary); run `swift build` first")
    }
    return binary
}

/// Makes a spawned child close every descriptor from 3 up (glibc's
/// `posix_spawn_file_actions_addclosefrom_np`, looked up at run time: the Glibc module does not
/// export it). NIO's sockets are not close-on-exec, so without this a child — and the tmux server
/// or database it may fork — keeps copies of the other tests' connections, whose peers then never
/// see them close.
public func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, CInt) -> CInt
    guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else {
        fatalError("posix_spawn_file_actions_addclosefrom_np is missing (glibc < 2.34)")
    }
    let addCloseFrom = unsafeBitCast(symbol, to: AddCloseFrom.self)
    _ = addCloseFrom(&actions, 3)
}

public enum ChildProcessError: Error, CustomStringConvertible {
    case failed(String)

    public var description: String {
        switch self {
        case .failed(let message): message
        }
    }
}
