#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a `pthread_mutex_t`.
///
/// Not the standard library's `Synchronization.Mutex`: on Linux that one locks with atomics and
/// futex calls inside the (uninstrumented) runtime, so ThreadSanitizer sees no ordering between
/// two critical sections and reports every access under it as a race — a ten-line repro of two
/// threads appending to a `Mutex<[Int]>` is enough. A pthread mutex is intercepted by TSan, so the
/// sanitizer run stays meaningful; the cost is the same uncontended atomic.
package final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    package init(_ value: Value) {
        self.value = value
        self.mutex = .allocate(capacity: 1)
        self.mutex.initialize(to: pthread_mutex_t())
        let status = pthread_mutex_init(self.mutex, nil)
        precondition(status == 0, "pthread_mutex_init failed: \(status)")
    }

    deinit {
        pthread_mutex_destroy(self.mutex)
        self.mutex.deinitialize(count: 1)
        self.mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    package func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        self.lock()
        defer { self.unlock() }
        return try body(&self.value)
    }

    private func lock() {
        pthread_mutex_lock(self.mutex)
    }

    private func unlock() {
        pthread_mutex_unlock(self.mutex)
    }
}
