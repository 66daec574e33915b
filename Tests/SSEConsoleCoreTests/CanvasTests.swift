import Testing
@testable import SSEConsoleCore

@Suite struct CanvasTests {
    @Test func displayWidths() {
        #expect(displayWidth(of: "a" as Character) == 1)
        #expect(displayWidth(of: "é" as Character) == 1)
        #expect(displayWidth(of: "e\u{301}" as Character) == 1)
        #expect(displayWidth(of: "日" as Character) == 2)
        #expect(displayWidth(of: "한" as Character) == 2)
        #expect(displayWidth(of: "Ａ" as Character) == 2)
        #expect(displayWidth(of: "😀" as Character) == 2)
        #expect(displayWidth(of: "👍🏽" as Character) == 2)
        #expect(displayWidth(of: "🇫🇷" as Character) == 2)
        #expect(displayWidth(of: "❤️" as Character) == 2)
        #expect(displayWidth(of: "\u{301}" as Character) == 0)
        #expect(displayWidth(of: "\u{200B}" as Character) == 0)
        #expect(displayWidth(of: "─" as Character) == 1)
        #expect(displayWidth(of: "dashboard-日本") == 14)
    }

    @Test func putClipsAndNeverSplitsAWideCharacter() {
        var canvas = Canvas(width: 6, height: 1)
        #expect(canvas.put("ab日本", row: 0, col: 0) == 6)
        #expect(canvas.plainText == ["ab日本"])
        var narrow = Canvas(width: 5, height: 1)
        #expect(narrow.put("ab日本", row: 0, col: 0) == 4)
        #expect(narrow.plainText == ["ab日"])
        #expect(narrow[0, 3].isContinuation && !narrow[0, 4].isContinuation)
        var limited = Canvas(width: 10, height: 1)
        #expect(limited.put("日本語", row: 0, col: 1, maxWidth: 3) == 2)
        #expect(limited.plainText == [" 日"])
    }

    @Test func overwritingHalfOfAWideCharacterClearsTheOtherHalf() {
        var canvas = Canvas(width: 6, height: 1)
        canvas.put("日本", row: 0, col: 0)
        canvas.put("x", row: 0, col: 1)
        #expect(canvas.plainText == [" x本"])
        canvas.put("y", row: 0, col: 2)
        #expect(canvas.plainText == [" xy"])
        #expect(!canvas[0, 3].isContinuation)
    }

    @Test func controlCharactersAreNeutralisedAndCombiningMarksAttach() {
        var canvas = Canvas(width: 8, height: 1)
        canvas.put("a\u{1B}b", row: 0, col: 0)
        #expect(canvas.plainText == ["a\u{FFFD}b"])
        canvas.put("e", row: 0, col: 4)
        canvas.put("\u{301}", row: 0, col: 5)  // alone: dropped
        canvas.put(["x", "\u{301}"].joined(), row: 0, col: 6)
        #expect(canvas[0, 6].character == "x\u{301}")
    }

    @Test func outOfRangeWritesAreIgnored() {
        var canvas = Canvas(width: 4, height: 2)
        #expect(canvas.put("abc", row: 2, col: 0) == 0)
        #expect(canvas.put("abc", row: -1, col: 0) == 0)
        #expect(canvas.put("abc", row: 0, col: 4) == 0)
        canvas.fill(row: 1, col: -2, width: 10, character: "-")
        #expect(canvas.plainText == ["", "----"])
    }

    @Test func runsGroupIdenticalStyles() {
        var canvas = Canvas(width: 10, height: 1)
        let red = CellStyle(foreground: .red, bold: true)
        canvas.put("ab", row: 0, col: 0)
        canvas.put("日x", row: 0, col: 2, style: red)
        let runs = canvas.runs(row: 0)
        #expect(runs == [
            StyledRun(column: 0, width: 2, text: "ab", style: .plain),
            StyledRun(column: 2, width: 3, text: "日x", style: red),
            StyledRun(column: 5, width: 5, text: "     ", style: .plain),
        ])
    }

    @Test func truncateAndPad() {
        #expect(TextFit.truncate("hello world", toWidth: 8) == "hello w…")
        #expect(TextFit.truncate("日本語日本語", toWidth: 6) == "日本…")
        #expect(TextFit.truncate("abc", toWidth: 3) == "abc")
        #expect(TextFit.pad("日本", toWidth: 6, alignRight: true) == "  日本")
        #expect(TextFit.pad("abc", toWidth: 5) == "abc  ")
    }
}
