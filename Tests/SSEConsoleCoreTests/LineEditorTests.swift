import Testing
@testable import SSEConsoleCore

private func editor(_ text: String, cursor: Int? = nil) -> LineEditor {
    var editor = LineEditor(text: text)
    if let cursor {
        editor.moveToStart()
        for _ in 0..<cursor { editor.moveRight() }
    }
    return editor
}

@Suite struct LineEditorTests {
    @Test func insertAndMove() {
        var e = LineEditor()
        e.insert("helo")
        e.moveLeft()
        e.insert("l")
        #expect(e.text == "hello")
        #expect(e.cursor == 4)
        e.moveToStart()
        #expect(e.cursor == 0)
        e.moveLeft()
        #expect(e.cursor == 0)
        e.moveToEnd()
        e.moveRight()
        #expect(e.cursor == 5)
    }

    @Test func backspaceAndDelete() {
        var e = editor("abc", cursor: 1)
        e.backspace()
        #expect(e.text == "bc" && e.cursor == 0)
        e.backspace()
        #expect(e.text == "bc")
        e.deleteForward()
        #expect(e.text == "c" && e.cursor == 0)
        e.moveToEnd()
        e.deleteForward()
        #expect(e.text == "c")
    }

    @Test func unicodeGraphemesEditAsOneUnit() {
        var e = LineEditor()
        e.insert("日本é👍🏽")
        #expect(e.characters.count == 4)
        e.backspace()
        #expect(e.text == "日本é")
        e.moveLeft()
        e.backspace()
        #expect(e.text == "日é")
        // A decomposed é typed as e + U+0301 becomes one character.
        var d = LineEditor()
        d.insert("e")
        d.insert("\u{301}")
        #expect(d.characters.count == 1)
        d.backspace()
        #expect(d.isEmpty)
        // Two regional indicators form one flag.
        var f = LineEditor()
        f.insert("\u{1F1EB}")
        f.insert("\u{1F1F7}")
        #expect(f.characters.count == 1)
    }

    @Test func killToStartAndEndAndYank() {
        var e = editor("kick alice now", cursor: 10)
        e.killToEnd()
        #expect(e.text == "kick alice")
        e.moveToStart()
        e.yank()
        #expect(e.text == " nowkick alice" && e.cursor == 4)
        var u = editor("kick alice", cursor: 5)
        u.killToStart()
        #expect(u.text == "alice" && u.cursor == 0)
    }

    @Test func deleteWordBackwardRules() {
        var e = editor("broadcast greeting hello")
        e.deleteWordBackward()
        #expect(e.text == "broadcast greeting ")
        var spaces = editor("foo bar   ")
        spaces.deleteWordBackward()
        #expect(spaces.text == "foo ")
        var middle = editor("foo bar baz", cursor: 7)
        middle.deleteWordBackward()
        #expect(middle.text == "foo  baz" && middle.cursor == 4)
        var punctuation = editor("b t {\"a\":1}")
        punctuation.deleteWordBackward()
        #expect(punctuation.text == "b t ")
        var start = editor("abc", cursor: 0)
        start.deleteWordBackward()
        #expect(start.text == "abc")
    }

    @Test func historyRestoresDraftAndSkipsDuplicates() {
        var e = LineEditor()
        e.insert("kick alice")
        #expect(e.commit() == "kick alice")
        e.insert("clear")
        _ = e.commit()
        e.insert("clear")
        _ = e.commit()
        e.addToHistory("")
        #expect(e.history == ["kick alice", "clear"])

        e.insert("unsent dra")
        e.historyPrevious()
        #expect(e.text == "clear")
        e.historyPrevious()
        #expect(e.text == "kick alice")
        e.historyPrevious()
        #expect(e.text == "kick alice")
        e.historyNext()
        #expect(e.text == "clear")
        e.historyNext()
        #expect(e.text == "unsent dra" && e.cursor == 10)
        e.historyNext()
        #expect(e.text == "unsent dra")
    }

    @Test func historyIsBounded() {
        var e = LineEditor(historyLimit: 3)
        for n in 1...5 { e.addToHistory("cmd \(n)") }
        #expect(e.history == ["cmd 3", "cmd 4", "cmd 5"])
    }

    @Test func visibleSliceShowsEverythingWhenItFits() {
        let e = editor("hello", cursor: 2)
        let slice = e.visibleSlice(width: 10)
        #expect(slice.text == "hello" && slice.cursorColumn == 2)
    }

    @Test func visibleSliceScrollsToKeepTheCursorVisible() {
        let text = "0123456789abcdefghij"  // 20 columns
        var e = editor(text)
        var slice = e.visibleSlice(width: 10)
        #expect(slice.cursorColumn <= 9)
        #expect(text.hasSuffix(slice.text))
        #expect(slice.text.count + (10 - slice.cursorColumn) >= 1)
        e.moveToStart()
        slice = e.visibleSlice(width: 10)
        #expect(slice.text == "0123456789" && slice.cursorColumn == 0)
        // Every cursor position stays visible.
        for position in 0...text.count {
            let moved = editor(text, cursor: position)
            let s = moved.visibleSlice(width: 10)
            #expect((0..<10).contains(s.cursorColumn), "cursor \(position)")
            #expect(displayWidth(of: s.text) <= 10)
        }
    }

    @Test func visibleSliceScrollsInJumpsNotPerKeystroke() {
        let text = (0..<30).map { String($0 % 10) }.joined()
        let e1 = editor(text, cursor: 28)
        let e2 = editor(text, cursor: 26)
        #expect(e1.visibleSlice(width: 10).text == e2.visibleSlice(width: 10).text)
        #expect(e1.visibleSlice(width: 10).cursorColumn - e2.visibleSlice(width: 10).cursorColumn == 2)
    }

    @Test func visibleSliceCountsWideCharacters() {
        let e = editor("日本語日本語日本語")  // 18 columns
        let slice = e.visibleSlice(width: 9)
        #expect(displayWidth(of: slice.text) <= 9)
        #expect(slice.cursorColumn == displayWidth(of: slice.text))
        #expect(slice.cursorColumn < 9)
        let start = editor("日本語日本語", cursor: 1).visibleSlice(width: 9)
        #expect(start.text == "日本語日" && start.cursorColumn == 2)
    }
}
