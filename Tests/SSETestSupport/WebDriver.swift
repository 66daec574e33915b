import Foundation
import NIOCore
import NIOHTTP1
import SSEClient

/// A real browser for tests: headless Chromium driven through chromedriver's W3C WebDriver HTTP API,
/// all on loopback.
///
/// ```swift
/// try await WebDriver.withSession { browser in
///     try await browser.navigate(to: "http://127.0.0.1:\(port)/")
///     let title: String = try await browser.execute("return document.title")
/// }
/// ```
public struct WebDriver: Sendable {
    public let sessionID: String
    private let connection: HTTPClientConnection

    /// What Debian calls the packages; CI installs them (`.ci/run`).
    public static let installHint = "apt-get install -y chromium chromium-driver"

    /// Starts chromedriver on a free port and a headless Chromium session, runs `body`, then quits both.
    /// Throws (never skips) if Chromium or chromedriver is missing.
    /// - Parameter arguments: more Chromium switches, such as `--ignore-certificate-errors`.
    public static func withSession<T: Sendable>(
        windowWidth: Int = 1100,
        windowHeight: Int = 800,
        arguments: [String] = [],
        _ body: (WebDriver) async throws -> T
    ) async throws -> T {
        guard let chromedriver = ChildProcess.which("chromedriver") else {
            throw ChildProcessError.failed("chromedriver is not installed; the browser tests need it: \(Self.installHint)")
        }
        let browser = ["chromium", "chromium-browser", "google-chrome"].lazy.compactMap(ChildProcess.which).first
        guard let browser else {
            throw ChildProcessError.failed("Chromium is not installed; the browser tests need it: \(Self.installHint)")
        }
        // chromedriver now and then fails to bind the port it picked ("IPv4 port not available",
        // seen with many other tests' servers open): start another.
        var attempt = 0
        var launched: (ChildProcess, String)?
        while launched == nil {
            attempt += 1
            let candidate = try ChildProcess.launch([chromedriver, "--port=0"])
            do {
                launched = (candidate, try await candidate.waitForLine { $0.contains("started successfully on port") })
            } catch {
                candidate.terminate()
                guard attempt < 3, "\(error)".contains("port not available") else { throw error }
            }
        }
        let (driver, started) = launched!
        defer { driver.terminate() }
        guard let port = started.split(separator: " ").last.flatMap({ Int($0.trimmingCharacters(in: .punctuationCharacters)) }) else {
            throw ChildProcessError.failed("no port in chromedriver's line: \(started)")
        }
        let connection = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port)
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "binary": browser,
                        "args": [
                            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                            "--no-first-run", "--user-data-dir=\(profile)", "--window-size=\(windowWidth),\(windowHeight)",
                        ] + arguments,
                    ],
                ]
            ]
        ]
        let created = try await Self.call(connection, .POST, "/session", capabilities)
        guard let value = created as? [String: Any], let sessionID = value["sessionId"] as? String else {
            throw ChildProcessError.failed("chromedriver did not create a session: \(String(describing: created))")
        }
        let session = WebDriver(sessionID: sessionID, connection: connection)
        do {
            let result = try await body(session)
            try? await session.quit()
            await connection.close()
            return result
        } catch {
            try? await session.quit()
            await connection.close()
            throw error
        }
    }

    /// Loads `url` and waits for the document to load.
    public func navigate(to url: String) async throws {
        _ = try await self.command(.POST, "url", ["url": url])
    }

    /// Runs `script` (a function body; `arguments` are its `arguments`) in the page and returns its result.
    @discardableResult
    public func execute(_ script: String, _ arguments: [Any] = []) async throws -> Any? {
        try await self.command(.POST, "execute/sync", ["script": script, "args": arguments])
    }

    /// Polls `script` until it returns `true` — the DOM has no event a test could await — bounded by
    /// `timeout`. On time-out, throws with what `describe` returns then.
    public func waitUntil(
        _ what: String,
        timeout: Duration = .seconds(20),
        script: String,
        describe: String = "return document.body.innerText"
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await self.execute(script) as? Bool == true { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        let page = try await self.execute(describe)
        throw ChildProcessError.failed("timed out waiting for \(what); the page showed:\n\(page ?? "nil")")
    }

    /// A PNG of the viewport.
    public func screenshot() async throws -> Data {
        guard let base64 = try await self.command(.GET, "screenshot", nil) as? String, let data = Data(base64Encoded: base64) else {
            throw ChildProcessError.failed("no screenshot")
        }
        return data
    }

    func quit() async throws {
        _ = try await Self.call(self.connection, .DELETE, "/session/\(self.sessionID)", nil)
    }

    private func command(_ method: HTTPMethod, _ path: String, _ body: [String: Any]?) async throws -> Any? {
        try await Self.call(self.connection, method, "/session/\(self.sessionID)/\(path)", body)
    }

    private static func call(_ connection: HTTPClientConnection, _ method: HTTPMethod, _ uri: String, _ body: [String: Any]?) async throws -> Any? {
        let payload = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        let response = try await connection.send(
            method,
            uri,
            headers: ["Content-Type": "application/json; charset=utf-8", "Host": "127.0.0.1"],
            body: payload.map { ByteBuffer(bytes: $0) }
        )
        let decoded = try JSONSerialization.jsonObject(with: Data(response.text.utf8), options: [.fragmentsAllowed]) as? [String: Any]
        let value = decoded?["value"]
        guard response.status == .ok else {
            throw ChildProcessError.failed("WebDriver \(method) \(uri) answered \(response.status.code): \(response.text.prefix(1000))")
        }
        return value is NSNull ? nil : value
    }
}
