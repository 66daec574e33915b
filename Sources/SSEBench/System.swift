import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The clock every timestamp in the bench uses: `CLOCK_MONOTONIC`, in nanoseconds. Publishers stamp
/// it into each event's data and subscribers read it back in the same process, so no clock sync is
/// involved (and a second process on the machine could use the same clock).
@inline(__always)
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

enum SystemLimits {
    /// Raises the soft (and, as root, the hard) limit on open files so 10,000 sockets fit.
    /// - Returns: the soft limit in force afterwards.
    @discardableResult
    static func raiseOpenFiles(to wanted: UInt64 = 65_536) -> UInt64 {
        var limit = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0 else { return 0 }
        if limit.rlim_cur >= wanted { return UInt64(limit.rlim_cur) }
        var raised = rlimit(rlim_cur: rlim_t(wanted), rlim_max: max(limit.rlim_max, rlim_t(wanted)))
        if setrlimit(resource, &raised) != 0 {
            // Not privileged: go as far as the hard limit allows.
            raised = rlimit(rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max)
            _ = setrlimit(resource, &raised)
        }
        _ = getrlimit(resource, &limit)
        return UInt64(limit.rlim_cur)
    }
}

/// CPU time and memory of a process, read from `/proc/<pid>/stat` and `/proc/<pid>/status`.
struct ProcessSample: Sendable {
    /// utime + stime, in seconds (resolution: one clock tick, usually 10 ms).
    var cpuSeconds: Double
    /// VmRSS, in bytes.
    var rssBytes: Int

    static let ticksPerSecond: Double = {
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return ticks > 0 ? Double(ticks) : 100
    }()

    /// `nil` if the process is gone or /proc is unreadable.
    static func read(pid: Int32) -> ProcessSample? {
        guard let cpu = self.cpuSeconds(pid: pid), let rss = self.rssBytes(pid: pid) else { return nil }
        return ProcessSample(cpuSeconds: cpu, rssBytes: rss)
    }

    static func cpuSeconds(pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm)": field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        return (utime + stime) / self.ticksPerSecond
    }

    static func rssBytes(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        let kib = line.split(separator: " ").compactMap { Int($0) }.first
        return kib.map { $0 * 1024 }
    }
}

/// CPU time and memory of several processes (the nodes of a cluster), each read at the same moment.
struct ProcessGroupSample: Sendable {
    /// Per pid; a process that is gone or unreadable is missing.
    var samples: [Int32: ProcessSample]

    static func read(pids: [Int32]) -> ProcessGroupSample? {
        guard !pids.isEmpty else { return nil }
        var samples: [Int32: ProcessSample] = [:]
        for pid in pids {
            samples[pid] = ProcessSample.read(pid: pid)
        }
        return ProcessGroupSample(samples: samples)
    }

    var rssBytes: Int { self.samples.values.reduce(0) { $0 + $1.rssBytes } }

    /// CPU seconds each process used since `earlier`, for the processes readable both times.
    func cpuSeconds(since earlier: ProcessGroupSample, pids: [Int32]) -> [Double?] {
        pids.map { pid in
            guard let now = self.samples[pid], let then = earlier.samples[pid] else { return nil }
            return now.cpuSeconds - then.cpuSeconds
        }
    }

    /// The sum of the RSS of `pids` now (0 for a process gone).
    static func rssBytes(pids: [Int32]) -> Int {
        pids.reduce(0) { $0 + (ProcessSample.rssBytes(pid: $1) ?? 0) }
    }
}

/// Samples the summed RSS of processes in the background and keeps the peak, so a transient backlog is seen.
final class RSSSampler: @unchecked Sendable {
    private let pids: [Int32]
    private let lock = NSLock()
    private var peak = 0
    private var running = true
    private var thread: Thread?

    init(pids: [Int32], interval: TimeInterval = 0.05) {
        self.pids = pids
        self.peak = ProcessGroupSample.rssBytes(pids: pids)
        let thread = Thread { [self] in
            while self.lock.withLock({ self.running }) {
                let rss = ProcessGroupSample.rssBytes(pids: self.pids)
                self.lock.withLock { self.peak = Swift.max(self.peak, rss) }
                Thread.sleep(forTimeInterval: interval)
            }
        }
        thread.name = "sse-bench-rss"
        self.thread = thread
        thread.start()
    }

    /// Stops sampling. - Returns: the largest RSS seen.
    func stop() -> Int {
        self.lock.withLock {
            self.running = false
            self.peak = Swift.max(self.peak, ProcessGroupSample.rssBytes(pids: self.pids))
            return self.peak
        }
    }
}
