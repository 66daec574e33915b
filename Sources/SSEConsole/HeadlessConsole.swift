import Foundation
import Logging
import SSEBroker
import SSEBrokerPostgres
import SSEConsoleCore
import ServiceLifecycle

/// Runs the broker without a terminal UI: logs go to stderr, commands are read line by line from
/// stdin (the console's language) and their results written to stdout, so it can be scripted:
///
///     printf 'broadcast greeting hello\nclients\n' | sse-console --no-tui
///
/// A service of `sse-console`'s group, after the server: it announces the server's URL (scripts
/// and tests wait for that line) and returns on `quit` or when the group shuts down (SIGINT,
/// SIGTERM). End of input stops reading, not serving.
struct HeadlessConsole: Service {
    let broker: Broker
    /// The server's URL, once it is bound.
    let listening: AsyncStream<String>
    let readCommands: Bool
    /// On a cluster node: samples the cluster for `nodes` (given the listening URL).
    var cluster: (@Sendable (String) -> ClusterView)? = nil
    /// The audit trail, for `audit`.
    var audit: AuditLog? = nil
    /// On a cluster node, for `clients all`.
    var backplane: PostgresCluster? = nil

    func run() async {
        guard let url = await self.listening.first(where: { _ in true }) else { return }
        // Scripts and tests wait for this exact line. The group traps its signals before any
        // service starts, so a SIGTERM sent as soon as it is read is a graceful shutdown.
        print("listening on \(url)")
        fflush(nil)  // all streams: `stdout` itself is a C global Swift 6 will not touch
        let (quits, quit) = AsyncStream.makeStream(of: Void.self)
        if self.readCommands {
            // `nodes` samples on the stdin thread, when asked: a fresh sampler each time is enough there.
            var nodes: (@Sendable () -> ClusterView)?
            if let sample = self.cluster { nodes = { sample(url) } }
            let executor = CommandExecutor(broker: self.broker, cluster: nodes, audit: self.audit, backplane: self.backplane)
            let thread = Thread {
                nameCurrentThread("sse-stdin")
                while let line = readLine(strippingNewline: true) {
                    guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
                    if Self.respond(to: line, with: executor) == .quit {
                        quit.finish()
                        return
                    }
                }
            }
            thread.name = "sse-console-stdin"
            thread.start()
        }
        await withGracefulShutdownHandler {
            for await _ in quits {}
        } onGracefulShutdown: {
            Logger(label: "sse.console").notice("shutting down")
            quit.finish()
        }
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
