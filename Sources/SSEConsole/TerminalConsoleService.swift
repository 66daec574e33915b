import NIOConcurrencyHelpers
import ServiceLifecycle

/// The full-screen console as a service of `sse-console`'s group, after the server: made once the
/// server is bound (its header shows the URL), it returns when the user quits, which shuts the
/// group down, and quits when the group shuts down (a signal).
struct TerminalConsoleService: Service {
    /// The server's URL, once it is bound.
    let listening: AsyncStream<String>
    let makeConsole: @Sendable (String) -> TerminalConsole
    /// The URL served and what the UI thread cost, once the console has returned.
    let outcome = NIOLockedValueBox<(url: String, report: TerminalConsole.Report)?>(nil)

    func run() async {
        guard let url = await self.listening.first(where: { _ in true }) else { return }
        let console = self.makeConsole(url)
        let report = await withGracefulShutdownHandler {
            await console.run()
        } onGracefulShutdown: {
            console.requestQuit()
        }
        self.outcome.withLockedValue { $0 = (url, report) }
    }
}
