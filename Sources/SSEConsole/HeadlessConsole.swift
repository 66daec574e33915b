import Dispatch
import Foundation
import Logging
import SSEBroker
import SSEBrokerServer

/// Runs the broker without a terminal UI: logs go to stderr, and it stops cleanly on SIGINT/SIGTERM.
struct HeadlessConsole {
    let broker: Broker
    let server: BrokerServer
    let listenURL: String

    func run() async throws {
        // Scripts and tests wait for this exact line.
        print("listening on \(self.listenURL)")
        fflush(nil)  // all streams: `stdout` itself is a C global Swift 6 will not touch
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM])
        let server = self.server
        let logger = Logger(label: "sse.console")
        Task {
            let signal = await signals.next()
            logger.notice("shutting down", metadata: ["signal": "\(signal)"])
            try? await server.shutdown()
        }
        try await server.run()
        try await server.shutdown()
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
