import Testing
@testable import SSEConsoleCore

private let context = KeyContext(screen: ScreenSize(cols: 80, rows: 24))

extension ConsoleState {
    /// Types `text` key by key and returns the actions of the last key.
    @discardableResult
    mutating func type(_ text: String, context: KeyContext = context) -> [ConsoleAction] {
        var actions: [ConsoleAction] = []
        for character in text { actions = handle(.character(character), context: context) }
        return actions
    }

    @discardableResult
    mutating func press(_ keys: Key..., context: KeyContext = context) -> [ConsoleAction] {
        var actions: [ConsoleAction] = []
        for key in keys { actions = handle(key, context: context) }
        return actions
    }
}

@Suite struct ConsoleStateTests {
    @Test func typingACommandAndEnterExecutesIt() {
        var state = ConsoleState()
        state.type("broadcast greeting hello")
        let actions = state.press(.enter)
        #expect(actions == [.execute(.broadcast(type: "greeting", data: "hello"))])
        #expect(state.editor.isEmpty)
        #expect(state.editor.history == ["broadcast greeting hello"])
    }

    @Test func parseErrorKeepsTheLineAndExecutesNothing() {
        var state = ConsoleState()
        state.type("brodcast x")
        let actions = state.press(.enter)
        #expect(actions.isEmpty)
        #expect(state.editor.text == "brodcast x")
        #expect(state.message == ResultMessage(#"unknown command "brodcast" (did you mean "broadcast"?)"#, severity: .error))
        #expect(state.editor.history.isEmpty)
    }

    @Test func enterOnABlankLineDoesNothing() {
        var state = ConsoleState()
        state.type("   ")
        let actions = state.press(.enter)
        #expect(actions.isEmpty)
        #expect(state.message == nil)
    }

    @Test func editingKeysReachTheLineEditor() {
        var state = ConsoleState()
        state.type("kick alice")
        state.press(.ctrl("a"), .delete, .delete, .delete, .delete, .delete)
        #expect(state.editor.text == "alice")
        state.type("ban ")
        state.press(.ctrl("e"), .backspace, .left, .right, .home, .end)
        #expect(state.editor.text == "ban alic" && state.editor.cursor == 8)
        state.press(.ctrl("w"))
        #expect(state.editor.text == "ban ")
        state.press(.ctrl("u"))
        #expect(state.editor.isEmpty)
        state.type("日本")
        state.press(.left, .ctrl("k"))
        #expect(state.editor.text == "日")
    }

    @Test func upAndDownBrowseHistory() {
        var state = ConsoleState()
        state.type("clear")
        state.press(.enter)
        state.type("draft")
        state.press(.up)
        #expect(state.editor.text == "clear")
        state.press(.down)
        #expect(state.editor.text == "draft")
    }

    @Test func qTypesInCommandModeAndQuitsInNavigateMode() {
        var state = ConsoleState()
        let actions1 = state.type("q")
        #expect(actions1.isEmpty)
        #expect(state.editor.text == "q")
        state.press(.escape)
        #expect(state.mode == .navigate)
        let actions2 = state.type("q")
        #expect(actions2 == [.quit])
    }

    @Test func ctrlCQuitsInBothModes() {
        var state = ConsoleState()
        let actions1 = state.press(.ctrl("c"))
        #expect(actions1 == [.quit])
        state.press(.escape)
        let actions2 = state.press(.ctrl("C"))
        #expect(actions2 == [.quit])
    }

    @Test func kickAndBanTheSelectedClientInNavigateMode() {
        var state = Fixtures.state()
        state.press(.escape, .down, .down)
        #expect(state.clients.selectedRow?.id == "bob")
        let actions1 = state.type("k")
        #expect(actions1 == [.execute(.kick(clientID: "bob"))])
        let actions2 = state.type("B")
        #expect(actions2 == [.execute(.ban(clientID: "bob", duration: nil))])
        var empty = ConsoleState()
        empty.press(.escape)
        let actions3 = empty.type("k")
        #expect(actions3.isEmpty)
        #expect(empty.message?.severity == .error)
    }

    @Test func navigateModeKeys() {
        var state = Fixtures.state()
        state.press(.escape)
        state.type("s")
        #expect(state.clients.sortColumn == .address)
        state.type("S")
        #expect(!state.clients.sortAscending)
        state.press(.tab)
        #expect(state.focus == .log)
        let actions = state.type("c")
        #expect(actions == [.execute(.clear)])
        state.type("/")
        #expect(state.mode == .command && state.editor.text == "filter ")
        state.press(.escape)
        state.type(":")
        #expect(state.mode == .command)
        state.press(.escape)
        state.type("i")
        #expect(state.mode == .command)
        // Enter on the log opens the selected entry's detail; on an empty log it says why not.
        state.press(.escape, .enter)
        if case .event(let view) = state.detail {
            #expect(view.entry == Fixtures.entries.last)
        } else {
            Issue.record("Enter on the log did not open the event detail")
        }
        var empty = ConsoleState()
        empty.press(.escape, .tab, .enter)
        #expect(empty.detail == nil && empty.message?.severity == .error)
    }

    @Test func navigateKeysScrollTheFocusedPane() {
        var state = ConsoleState()
        for n in 0..<100 { state.appendLog(LogEntry(time: Double(n), source: .broker, kind: .info, message: "\(n)")) }
        state.press(.escape, .tab)
        // ↑↑ select older entries (the view moves only when the selection would leave it).
        state.press(.up, .up)
        #expect(state.selectedLogEntry?.message == "97" && state.log.scrollOffset == 0)
        state.press(.pageUp)
        #expect(state.log.isPaused)
        state.press(.end)
        #expect(!state.log.isPaused)
        state.press(.home)
        let logHeight = LayoutGeometry(size: context.screen, clientRowCount: 0).logViewportHeight
        #expect(state.log.visibleEntries(height: logHeight).first?.message == "0")
        state.type("G")
        #expect(!state.log.isPaused)
    }

    @Test func pageKeysScrollTheLogInCommandMode() {
        var state = ConsoleState()
        for n in 0..<100 { state.appendLog(LogEntry(time: Double(n), source: .broker, kind: .info, message: "\(n)")) }
        state.press(.pageUp)
        #expect(state.log.isPaused && state.mode == .command)
        state.press(.pageDown)
        #expect(!state.log.isPaused)
    }

    @Test func helpOverlayOpensAndClosesOnAnyKeyWithoutActing() {
        var state = ConsoleState()
        state.type("?")
        #expect(state.isHelpVisible && state.editor.isEmpty)
        let actions1 = state.press(.enter)
        #expect(actions1.isEmpty)
        #expect(!state.isHelpVisible)
        state.press(.function(1))
        #expect(state.isHelpVisible)
        let actions2 = state.type("q")  // closes, does not type
        #expect(actions2.isEmpty)
        #expect(!state.isHelpVisible && state.editor.isEmpty)
        state.press(.escape, .function(1))
        let actions3 = state.press(.character("q"))
        #expect(actions3.isEmpty && state.mode == .navigate)
        state.type("?")
        #expect(state.isHelpVisible)
        let actions4 = state.press(.resize)
        #expect(actions4 == [.redraw])
        #expect(state.isHelpVisible)  // a resize is not a key press
        // "?" inside a line is just a character.
        var typing = ConsoleState()
        typing.type("b t what?")
        #expect(typing.editor.text == "b t what?" && !typing.isHelpVisible)
    }

    @Test func tabCompletesAndCycles() {
        var state = ConsoleState()
        let ids = KeyContext(screen: context.screen, clientIDs: ["alpha-1", "alpha-2", "alpha-3"])
        state.type("ki")
        state.press(.tab, context: ids)
        #expect(state.editor.text == "kick ")
        state.type("a")
        state.press(.tab, context: ids)
        #expect(state.editor.text == "kick alpha-")
        #expect(state.message == ResultMessage("3 matches: alpha-1 alpha-2 alpha-3", severity: .info))
        state.press(.tab, context: ids)
        #expect(state.editor.text == "kick alpha-1")
        state.press(.tab, context: ids)
        #expect(state.editor.text == "kick alpha-2")
        state.press(.backTab, context: ids)
        #expect(state.editor.text == "kick alpha-1")
        state.type(" ")
        state.press(.tab, context: ids)
        #expect(state.message == ResultMessage("no completions", severity: .info))
    }

    @Test func tabUsesTheTableIDsByDefault() {
        var state = Fixtures.state()
        state.press(.ctrl("u"))
        state.type("kick d")
        state.press(.tab)
        #expect(state.editor.text == "kick dashboard-日本 ")
        state.press(.ctrl("u"))
        state.type("kick c")  // carol has departed
        state.press(.tab)
        #expect(state.editor.text == "kick c")
    }

    @Test func applyLocalHandlesUIOnlyCommands() {
        var state = Fixtures.state()
        let handled1 = state.applyLocal(.filter("bob"))
        #expect(handled1)
        #expect(state.log.filter == "bob" && state.log.visibleCount == 2)
        let handled2 = state.applyLocal(.filter(nil))
        #expect(handled2)
        #expect(state.log.filter == nil)
        let handled3 = state.applyLocal(.clear)
        #expect(handled3)
        #expect(state.log.count == 0 && state.message?.severity == .ok)
        let handled4 = state.applyLocal(.help)
        #expect(handled4 && state.isHelpVisible)
        state.focus = .log
        let handled5 = state.applyLocal(.clients)
        #expect(handled5 && state.focus == .clients)
        let handled6 = state.applyLocal(.kick(clientID: "bob"))
        #expect(!handled6)
        let handled7 = state.applyLocal(.quit)
        #expect(!handled7)
    }

    @Test func ctrlLAndResizeRequestARedraw() {
        var state = ConsoleState()
        let actions1 = state.press(.ctrl("l"))
        #expect(actions1 == [.redraw])
        let actions2 = state.press(.resize)
        #expect(actions2 == [.redraw])
    }
}
