import Testing
@testable import SSEConsoleCore

private func complete(_ text: String, ids: [String] = ["alpha-1", "alpha-2", "alpha-3", "beta"]) -> CompletionResult {
    let characters = Array(text)
    return Completion.complete(characters, cursor: characters.count, clientIDs: ids)
}

@Suite struct CompletionTests {
    @Test func commandNames() {
        let unique = complete("ki")
        #expect(unique.replacement == "kick" && unique.isUnique && unique.wordRange == 0..<2)
        let several = complete("b")
        #expect(several.candidates == ["ban", "broadcast", "broadcastTo"])
        #expect(several.replacement == "b")
        let prefix = complete("BRO")
        #expect(prefix.candidates == ["broadcast", "broadcastTo"] && prefix.replacement == "broadcast")
        #expect(complete("zz").candidates.isEmpty)
        #expect(complete("").candidates.count == CommandParser.specs.count)
    }

    @Test func clientIDsInTheIDPosition() {
        for command in ["kick", "ban", "unban", "broadcastTo", "to", "KICK"] {
            let result = complete("\(command) al")
            #expect(result.candidates == ["alpha-1", "alpha-2", "alpha-3"], "\(command)")
            #expect(result.replacement == "alpha-")
            #expect(result.wordRange == (command.count + 1)..<(command.count + 3))
        }
        #expect(complete("kick b").replacement == "beta")
        #expect(complete("kick b").isUnique)
        #expect(complete("kick x").candidates.isEmpty)
    }

    @Test func noCompletionElsewhere() {
        #expect(complete("broadcast al").candidates.isEmpty)  // <type>, not an id
        #expect(complete("to alpha-1 al").candidates.isEmpty)
        #expect(complete("clients al").candidates.isEmpty)
    }

    @Test func duplicateIDsAreOfferedOnce() {
        let result = complete("kick a", ids: ["alice", "alice", "bob"])
        #expect(result.candidates == ["alice"] && result.isUnique)
    }

    @Test func longestCommonPrefix() {
        #expect(Completion.longestCommonPrefix(["alpha-1", "alpha-2"]) == "alpha-")
        #expect(Completion.longestCommonPrefix(["abc", "xyz"]) == "")
        #expect(Completion.longestCommonPrefix(["日本a", "日本b"]) == "日本")
        #expect(Completion.longestCommonPrefix([]) == "")
    }

    @Test func completesTheWordBeforeTheCursorOnly() {
        let text = Array("kick al now")
        let result = Completion.complete(text, cursor: 7, clientIDs: ["alpha-1", "beta"])
        #expect(result.wordRange == 5..<7 && result.replacement == "alpha-1")
    }
}
