import NIOCore

/// Runs work on an event loop once that loop has polled its sockets again.
///
/// NIO runs a loop's tasks until none is runnable before it polls for I/O, and a task scheduled a
/// moment ahead becomes runnable within the same run once that moment has passed. So while other
/// tasks keep a loop busy past it, neither `execute` nor `scheduleTask(in:)` lets the loop read:
/// under overload, the answers to the producers one fan-out turn made room for ran longer than the
/// 250 µs a drain yielded for, the next turn ran before any poll, and the loop read no socket for
/// seconds (a producer's pipelined requests sat in its socket until the keep-alive timeout closed
/// the connection). Only an I/O event waits for the poll: the broker's fan-out hands the rest of a
/// drain that used its turn to a signal, and `BrokerServer` (SSEBrokerServer) sets one up for its
/// loops.
///
/// Set it with ``Broker/useLoopPollSignal(_:)``. Without one (a loop it has no signal for, a broker
/// mounted on another server), a drain falls back to a task scheduled a moment ahead.
public protocol LoopPollSignal: Sendable {
    /// Runs `body` on `loop` after the loop's next poll for I/O, as a task of the run that follows
    /// it (so after the I/O that poll found). Called on `loop`.
    /// - Returns: `false`, and `body` is not run, if there is no signal for `loop` (any more).
    func afterNextPoll(on loop: any EventLoop, _ body: @escaping @Sendable () -> Void) -> Bool
}
