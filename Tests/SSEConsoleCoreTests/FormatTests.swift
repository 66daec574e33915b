import Testing
@testable import SSEConsoleCore

@Suite struct FormatTests {
    @Test func thousands() {
        #expect(Format.thousands(0) == "0")
        #expect(Format.thousands(999) == "999")
        #expect(Format.thousands(1_234) == "1,234")
        #expect(Format.thousands(1_234_567) == "1,234,567")
        #expect(Format.thousands(-12_345) == "-12,345")
    }

    @Test func bytes() {
        #expect(Format.bytes(0) == "0B")
        #expect(Format.bytes(1_023) == "1023B")
        #expect(Format.bytes(1_024) == "1.0K")
        #expect(Format.bytes(12_595) == "12.3K")
        #expect(Format.bytes(1_048_575) == "1.0M")
        #expect(Format.bytes(5_347_737) == "5.1M")
        #expect(Format.bytes(3 * 1_073_741_824) == "3.0G")
        #expect(Format.bytes(-5) == "0B")
    }

    @Test func rates() {
        #expect(Format.rate(0) == "0.0/s")
        #expect(Format.rate(12) == "12.0/s")
        #expect(Format.rate(999.96) == "1.0k/s")
        #expect(Format.rate(9_900) == "9.9k/s")
        #expect(Format.rate(1_250_000) == "1.3M/s")
        #expect(Format.rate(.nan) == "0.0/s")
        #expect(Format.byteRate(512) == "512 B/s")
        #expect(Format.byteRate(5_347_737) == "5.1 MB/s")
        #expect(Format.byteRateShort(5_347_737) == "5.1MB/s")
    }

    @Test func durations() {
        #expect(Format.duration(0) == "0s")
        #expect(Format.duration(12.9) == "12s")
        #expect(Format.duration(243) == "4m03s")
        #expect(Format.duration(3_725) == "1h02m")
        #expect(Format.duration(7_260) == "2h01m")
        #expect(Format.duration(273_600) == "3d04h")
        #expect(Format.duration(-5) == "0s")
        #expect(Format.seconds(3) == "3s")
        #expect(Format.seconds(2.5) == "2.5s")
        #expect(Format.seconds(0.25) == "250ms")
        #expect(Format.durationToken(.seconds(90)) == "90s")
        #expect(Format.durationToken(.seconds(300)) == "5m")
        #expect(Format.durationToken(.seconds(7_200)) == "2h")
        #expect(Format.durationToken(.seconds(172_800)) == "2d")
    }

    @Test func clock() {
        #expect(Format.clock(Fixtures.now) == "12:00:00")
        #expect(Format.clock(Fixtures.now + 3_661.9) == "13:01:01")
        #expect(Format.clock(Fixtures.now, utcOffset: 7_200) == "14:00:00")
        #expect(Format.clock(Fixtures.now, utcOffset: -13 * 3_600) == "23:00:00")
    }

    @Test func oneLine() {
        #expect(Format.oneLine("a\nb\r\nc\rd") == "a⏎b⏎c⏎d")
        #expect(Format.oneLine("tab\there\u{0}\u{7F}\u{85}") == "tab␉here␀␡\u{FFFD}")
        #expect(Format.oneLine("abcdef", maxCharacters: 3) == "abc…")
        #expect(LogEntry.preview(of: "x\ny") == "x⏎y")
    }
}
