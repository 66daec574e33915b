import Dispatch
import Foundation
import Logging
import SSEBroker
import SSEBrokerServer
import SSEConsoleCore

/// Runs the broker without a terminal UI: logs go to stderr, commands are read line by line from
/// stdin (the console's language) and their results written to stdout, so it can be scripted:
///
///     printf 'broadcast greeting hello\nclients\n' | sse-console --no-tui
///
/// End of input stops reading, not serving; SIGINT/SIGTERM or `quit` stop the broker.
struct HeadlessConsole {
    let broker: Broker
    let server: BrokerServer
    let readCommands: Bool
    /// How long shutdown waits for connections to close.
    var gracePeriod: Duration = .seconds(5)
    /// Installed by the caller before it announces the port; `nil` installs one here.
    var signals: SignalWatcher? = nil
    /// The cluster for `nodes`, on a cluster node.
    var cluster: (@Sendable () -> ClusterView)? = nil

    func run() async throws {
        let logger = Logger(label: "sse.console")
        let server = self.server
        let grace = self.gracePeriod
        let signals = self.signals ?? SignalWatcher(signals: [SIGINT, SIGTERM])
        Task {
            let signal = await signals.next()
            logger.notice("shutting down", metadata: ["signal": "\(signal)"])
            try? await server.shutdown(gracePeriod: grace)
        }
        if self.readCommands {
            let executor = CommandExecutor(broker: self.broker, cluster: self.cluster)
            let thread = Thread {
                while let line = readLine(strippingNewline: true) {
                    guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
                    if Self.respond(to: line, with: executor) == .quit {
                        Task { try? await server.shutdown(gracePeriod: grace) }
                        return
                    }
                }
            }
            thread.name = "sse-console-stdin"
            thread.start()
        }
        try await server.run()
        // Returns once the shutdown that closed the listener (a signal, `quit`) has finished.
        try await server.shutdown(gracePeriod: grace)
    }

    /// Parses and runs one line; prints the result (or `error: …`) on stdout.
    @discardableResult
    static func respond(to line: String, with executor: CommandExecutor) -> CommandExecutor.Outcome {
        let outcome: CommandExecutor.Outcome
        switch CommandParser.parseResult(line) {
        case .success(let command):
            outcome = executor.execute(command)
        case .failure(let error):
            outcome = .error(error.message)
        }
        switch outcome {
        case .ok(let text): print(text)
        case .error(let text): print("error: \(text)")
        case .quit: print("bye")
        }
        fflush(nil)
        return outcome
    }
}

/// Turns process signals into an async event (the default action, dying mid-write, is disabled).
/// `@unchecked`: the sources are only kept alive here, never touched again after `init`.
final class SignalWatcher: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    private let stream: AsyncStream<Int32>

    init(signals: [Int32]) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        self.stream = stream
        let registered = DispatchSemaphore(value: 0)
        self.sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.setRegistrationHandler { registered.signal() }
            source.resume()
            return source
        }
        // The sources are armed asynchronously; until then an ignored signal would simply be lost
        // (a SIGTERM right after start-up left the process running for ever).
        for _ in signals { registered.wait() }
    }

    func next() async -> Int32 {
        var iterator = self.stream.makeAsyncIterator()
        return await iterator.next() ?? SIGTERM
    }
}
