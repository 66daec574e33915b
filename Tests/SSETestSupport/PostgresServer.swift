import Foundation

/// A private PostgreSQL server for one test (Debian's `postgresql` binaries): its own data directory
/// and loopback port, so a test can restart it or stop it without disturbing any other test.
///
/// As root it runs the server as the `postgres` user (PostgreSQL refuses to run as root).
public final class PostgresServer: @unchecked Sendable {
    public let port: Int
    public let directory: String
    private let binaries: String
    private let lock = NSLock()
    private var process: ChildProcess?

    /// `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication, no TLS).
    public var url: String { "postgres://postgres@127.0.0.1:\(self.port)/postgres?sslmode=disable" }

    private init(port: Int, directory: String, binaries: String) {
        self.port = port
        self.directory = directory
        self.binaries = binaries
    }

    /// Creates a cluster in a temporary directory and starts it.
    public static func start() async throws -> PostgresServer {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root))?
            .compactMap { Int($0) }.sorted() ?? []
        guard let version = versions.last, FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/postgres") else {
            throw ChildProcessError.failed(
                "PostgreSQL is not installed (no \(root)/N/bin/postgres); install Debian's postgresql package (see README, Tests)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let server = PostgresServer(port: try freePort(), directory: directory, binaries: "\(root)/\(version)/bin")
        if getuid() == 0 {
            guard chown(directory, postgresUser.uid, postgresUser.gid) == 0 else {
                throw ChildProcessError.failed("chown \(directory): errno \(errno)")
            }
        }
        let initdb = try ChildProcess.launch(
            server.asServerUser(["\(server.binaries)/initdb", "-D", "\(directory)/data", "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]))
        let status = initdb.waitForExit()
        guard status == 0 else { throw ChildProcessError.failed("initdb exited with \(status): \(initdb.stderrText)") }
        try await server.launch()
        return server
    }

    /// Stops the server (fast shutdown: clients are disconnected) and starts it again on the same
    /// port and data: what a database restart looks like to its clients.
    public func restart() async throws {
        self.stop()
        try await self.launch()
    }

    /// Stops the server. Idempotent.
    public func stop() {
        let process = self.lock.withLock { () -> ChildProcess? in
            defer { self.process = nil }
            return self.process
        }
        process?.terminate(signal: SIGINT, grace: .seconds(20))
    }

    /// Stops the server and deletes its data.
    public func destroy() {
        self.stop()
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    private func launch() async throws {
        let process = try ChildProcess.launch(
            self.asServerUser([
                "/bin/sh", "-c",
                // Logs on stdout, so the start can be awaited on the "ready" line.
                "exec \"$0\" \"$@\" 2>&1", "\(self.binaries)/postgres", "-D", "\(self.directory)/data", "-p", "\(self.port)",
                "-k", self.directory, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off", "-c", "max_connections=400",
            ]))
        self.lock.withLock { self.process = process }
        _ = try await process.waitForLine(timeout: .seconds(60)) { $0.contains("ready to accept connections") }
    }

    private func asServerUser(_ arguments: [String]) -> [String] {
        guard getuid() == 0 else { return arguments }
        // setpriv execs (no intermediate process), so signals reach the server itself.
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + arguments
    }

    private static var postgresUser: (uid: uid_t, gid: gid_t) {
        guard let entry = getpwnam("postgres") else { return (0, 0) }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    /// A port nothing listens on now (bound, read and released).
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ChildProcessError.failed("socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw ChildProcessError.failed("bind: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

extension PostgresServer {
    /// The database the tests share: `SSE_TEST_POSTGRES_URL` if set (CI points it at the system
    /// server it started), else a private server started on first use and stopped when the test
    /// process exits. Tests keep apart with table prefixes of their own.
    public static func testDatabaseURL() async throws -> String {
        if let url = ProcessInfo.processInfo.environment["SSE_TEST_POSTGRES_URL"], !url.isEmpty { return url }
        return try await self.shared.value.url
    }

    private static let shared = Task { () throws -> PostgresServer in
        let server = try await PostgresServer.start()
        sharedServer.withLock { $0 = server }
        atexit { sharedServer.withLock { $0?.destroy() } }
        return server
    }
}

/// The shared server, for the exit handler (which can capture nothing).
private let sharedServer = LockedServer()

private final class LockedServer: @unchecked Sendable {
    private let lock = NSLock()
    private var server: PostgresServer?
    func withLock(_ body: (inout PostgresServer?) -> Void) {
        self.lock.lock()
        defer { self.lock.unlock() }
        body(&self.server)
    }
}
