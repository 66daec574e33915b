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

    func run() async throws {
        let logger = Logger(label: "sse.console")
        let server = self.server
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM])
        Task {
            let signal = await signals.next()
            logger.notice("shutting down", metadata: ["signal": "\(signal)"])
            try? await server.shutdown()
        }
        if self.readCommands {
            let executor = CommandExecutor(broker: self.broker)
            let thread = Thread {
                while let line = readLine(strippingNewline: true) {
                    guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
                    if Self.respond(to: line, with: executor) == .quit {
                        Task { try? await server.shutdown() }
                        return
                    }
                }
            }
            thread.name = "sse-console-stdin"
            thread.start()
        }
        try await server.run()
        try await server.shutdown()
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
        self.sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    func next() async -> Int32 {
        var iterator = self.stream.makeAsyncIterator()
        return await iterator.next() ?? SIGTERM
    }
}
