import Testing
@testable import SSEConsoleCore

private func entry(_ n: Int, kind: LogKind = .info, target: String? = nil) -> LogEntry {
    LogEntry(time: Double(n), source: .broker, kind: kind, target: target, message: "entry \(n)")
}

@Suite struct EventLogTests {
    @Test func ringOverflowKeepsTheNewest() {
        var log = EventLog(capacity: 100)
        for n in 0..<250 { log.append(entry(n)) }
        #expect(log.count == 100)
        #expect(log.visibleEntry(at: 0).message == "entry 150")
        #expect(log.visibleEntry(at: 99).message == "entry 249")
        #expect(log.visibleEntries(height: 3).map(\.message) == ["entry 247", "entry 248", "entry 249"])
    }

    @Test func filterIsCaseInsensitiveOverAllText() {
        var log = EventLog()
        log.append(LogEntry(time: 0, source: .api, kind: .broadcastTo, type: "Price", target: "Alice", size: 10, message: "x"))
        log.append(LogEntry(time: 1, source: .broker, kind: .error, target: "bob", message: "Write TIMED out"))
        log.append(LogEntry(time: 2, source: .http, kind: .connect, target: "alice", message: "10.0.0.1"))
        log.setFilter("ALICE")
        #expect(log.visibleCount == 2 && log.count == 3)
        log.setFilter("timed")
        #expect(log.visibleEntries(height: 10).map(\.target) == ["bob"])
        log.setFilter("broadcastto")
        #expect(log.visibleCount == 1)
        log.setFilter("price")
        #expect(log.visibleCount == 1)
        log.setFilter("api")
        #expect(log.visibleCount == 1)
        log.setFilter("")
        #expect(log.filter == nil && log.visibleCount == 3)
    }

    @Test func filterFollowsAppendsAndEvictions() {
        var log = EventLog(capacity: 10)
        log.setFilter("even")
        for n in 0..<25 { log.append(entry(n, target: n % 2 == 0 ? "even" : "odd")) }
        // Entries 15…24 remain; the even ones are 16, 18, 20, 22, 24.
        #expect(log.visibleCount == 5)
        #expect(log.visibleEntries(height: 10).map(\.time) == [16, 18, 20, 22, 24])
        log.setFilter(nil)
        #expect(log.visibleCount == 10)
    }

    @Test func scrollBackPausesTheView() {
        var log = EventLog()
        for n in 0..<50 { log.append(entry(n)) }
        #expect(!log.isPaused)
        log.scrollUp(by: 10, viewportHeight: 5)
        #expect(log.isPaused)
        let before = log.visibleEntries(height: 5)
        #expect(before.last?.time == 39)
        log.append(entry(50))
        log.append(entry(51))
        #expect(log.visibleEntries(height: 5) == before)  // new entries do not move the view
        log.scrollDown(by: 3, viewportHeight: 5)
        #expect(log.visibleEntries(height: 5).last?.time == 42)
        log.scrollToLive()
        #expect(!log.isPaused && log.visibleEntries(height: 5).last?.time == 51)
        log.scrollToOldest(viewportHeight: 5)
        #expect(log.visibleEntries(height: 5).first?.time == 0)
        log.scrollUp(by: 1_000, viewportHeight: 5)
        #expect(log.scrollOffset == 47)
        log.scrollDown(by: 1_000, viewportHeight: 5)
        #expect(!log.isPaused)
    }

    @Test func scrollBackWithAFilterCountsMatchingEntries() {
        var log = EventLog()
        for n in 0..<40 { log.append(entry(n, kind: n % 4 == 0 ? .error : .info)) }
        log.setFilter("error")
        log.scrollUp(by: 2, viewportHeight: 3)
        let view = log.visibleEntries(height: 3)
        #expect(view.map(\.time) == [20, 24, 28])
        log.append(entry(40, kind: .error))
        log.append(entry(41, kind: .info))
        #expect(log.visibleEntries(height: 3) == view)
    }

    @Test func clearEmptiesTheLog() {
        var log = EventLog()
        for n in 0..<10 { log.append(entry(n)) }
        log.scrollUp(by: 3, viewportHeight: 2)
        log.clear()
        #expect(log.count == 0 && !log.isPaused && log.visibleEntries(height: 5).isEmpty)
        log.append(entry(1))
        #expect(log.visibleEntries(height: 5).count == 1)
    }

    @Test func fullBufferWithFilterStaysLinear() {
        var log = EventLog()
        for n in 0..<20_000 { log.append(entry(n, target: "client-\(n % 100)")) }
        log.setFilter("client-7")  // client-7 and client-70…79
        #expect(log.visibleCount == 550)
        for n in 20_000..<30_000 { log.append(entry(n, target: "client-\(n % 100)")) }
        #expect(log.count == 5_000 && log.visibleCount == 550)
        #expect(log.visibleEntries(height: 2).map(\.time) == [29_978, 29_979])
    }
}
