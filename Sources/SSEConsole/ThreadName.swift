import Foundation

/// Names the calling thread where tools look (`top -H`, `/proc/PID/task/*/comm`, perf): on Linux,
/// Foundation's `Thread.name` does not reach the kernel, so the console's threads showed as the
/// cooperative pool's thread they were started from. (`pthread_setname_np` is not visible to Swift
/// here; the thread's `comm` file is the same thing.) The kernel keeps at most 15 bytes.
func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    defer { close(fd) }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}
