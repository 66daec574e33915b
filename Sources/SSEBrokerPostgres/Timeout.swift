import NIOConcurrencyHelpers

struct TimeoutError: Error, CustomStringConvertible {
    var duration: Duration
    var description: String { "no answer within \(self.duration)" }
}

/// Runs `operation`, throwing ``TimeoutError`` if it has not finished after `duration`. Returns at
/// the deadline even if `operation` ignores its cancellation (a query on a connection that went
/// silent): the operation is cancelled and left to finish on its own.
func withTimeout<Result: Sendable>(_ duration: Duration, _ operation: @escaping @Sendable () async throws -> Result) async throws -> Result {
    let outcome = NIOLockedValueBox<CheckedContinuation<Result, any Error>?>(nil)
    let work = NIOLockedValueBox<Task<Void, Never>?>(nil)
    return try await withCheckedThrowingContinuation { continuation in
        outcome.withLockedValue { $0 = continuation }
        let finish: @Sendable (Swift.Result<Result, any Error>) -> Void = { result in
            outcome.withLockedValue { pending -> CheckedContinuation<Result, any Error>? in
                defer { pending = nil }
                return pending
            }?.resume(with: result)
        }
        let timer = Task {
            try? await Task.sleep(for: duration)
            guard !Task.isCancelled else { return }
            finish(.failure(TimeoutError(duration: duration)))
            work.withLockedValue { $0 }?.cancel()
        }
        work.withLockedValue {
            $0 = Task {
                do {
                    finish(.success(try await operation()))
                } catch {
                    finish(.failure(error))
                }
                timer.cancel()
            }
        }
    }
}
