import Dispatch
import NIOCore

/// Runs `first` on `loop`, then keeps the loop busy (nothing else runs on it) until the returned
/// function is called; returns once the loop is held.
public func hold(_ loop: any EventLoop, after first: @escaping @Sendable () -> Void = {}) async -> @Sendable () -> Void {
    let held = DispatchSemaphore(value: 0)
    let holding = DispatchSemaphore(value: 0)
    loop.execute {
        first()
        holding.signal()
        held.wait()
    }
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            holding.wait()
            continuation.resume()
        }
    }
    return { held.signal() }
}
