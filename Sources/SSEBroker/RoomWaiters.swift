/// Publishers waiting for an overloaded broker's loops to make room (see
/// ``BrokerConfiguration/maxQueuedEvents``), first come first served. A loop's drain, once under
/// half its bounds, wakes as many as it has room for (waking all of them would have hundreds of
/// pipelining producers race for a dozen places, and their retries cost the CPU the fan-out
/// needs); each woken one checks again, and waits again if another publisher took the room first.
///
/// Lost wake-ups cannot happen: a waiter is added under the lock before it checks the queues, and a
/// drain updates the queues before it takes the lock to wake the waiters.
final class RoomWaiters: Sendable {
    /// One wait: woken by a drain, by its deadline, or by shutdown, whichever comes first.
    final class Waiter: Sendable {
        private enum State {
            case waiting
            case parked(CheckedContinuation<Void, Never>)
            case woken
        }
        private let state = Locked(State.waiting)

        /// Returns once woken, or at `deadline`.
        func wait(until deadline: ContinuousClock.Instant) async {
            let timer = Task {
                try? await Task.sleep(until: deadline, clock: .continuous)
                self.wake()
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let wokenAlready = self.state.withLock { state -> Bool in
                    if case .woken = state { return true }
                    state = .parked(continuation)
                    return false
                }
                if wokenAlready { continuation.resume() }
            }
            timer.cancel()
        }

        /// Whether it is still waiting (not woken, not timed out).
        var isWaiting: Bool {
            self.state.withLock { state in
                if case .woken = state { return false }
                return true
            }
        }

        func wake() {
            let continuation = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state = .woken }
                if case .parked(let continuation) = state { return continuation }
                return nil
            }
            continuation?.resume()
        }
    }

    private let waiters = Locked<[Waiter]>([])

    /// Publishers waiting now.
    var count: Int {
        self.waiters.withLock { $0.count }
    }

    func add(_ waiter: Waiter) {
        self.waiters.withLock { $0.append(waiter) }
    }

    /// Wakes every waiter (shutdown).
    func wakeAll() {
        self.wake(first: .max)
    }

    /// Wakes the `count` longest-waiting publishers (those that timed out meanwhile are dropped).
    func wake(first count: Int) {
        let woken = self.waiters.withLock { waiters -> [Waiter] in
            var woken: [Waiter] = []
            var taken = 0
            while taken < waiters.count, woken.count < count {
                let waiter = waiters[taken]
                taken += 1
                if waiter.isWaiting { woken.append(waiter) }
            }
            waiters.removeFirst(taken)
            return woken
        }
        for waiter in woken {
            waiter.wake()
        }
    }
}
