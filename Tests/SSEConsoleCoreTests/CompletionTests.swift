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
        #expect(several.candidates == ["ban", "bans", "broadcast", "broadcastTo"])
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
        #expect(complete("broadcast al").candidates.isEmpty)  // <type>, not an id (and no topics here)
        #expect(complete("to alpha-1 al").candidates.isEmpty)
        #expect(complete("clients al").candidates.isEmpty)
    }

    @Test func topicsInTheTypePosition() {
        let topics = ["orders.eu", "orders.us", "price", "price"]
        func complete(_ text: String) -> CompletionResult {
            Completion.complete(Array(text), cursor: text.count, clientIDs: ["alpha-1"], topics: topics)
        }
        #expect(complete("broadcast or").candidates == ["orders.eu", "orders.us"])
        #expect(complete("broadcast or").replacement == "orders.")
        #expect(complete("b pr").candidates == ["price"])
        #expect(complete("broadcastTo alpha-1 pr").candidates == ["price"])
        #expect(complete("to alpha-1 or").candidates == ["orders.eu", "orders.us"])
        #expect(complete("topics pr").candidates == ["price"])
        #expect(complete("broadcast price pr").candidates.isEmpty)  // data, not a type
        #expect(complete("kick pr").candidates.isEmpty)  // an id, not a type
    }

    @Test func clientTable_offersTheConnectedClientsExactTopics() {
        var table = ClientTable()
        table.update([
            ClientRow(connectionID: 1, id: "a", remoteAddress: "-", connectedAt: 0, topics: ["price", "orders.*"]),
            ClientRow(connectionID: 2, id: "b", remoteAddress: "-", connectedAt: 0, topics: ["chat", "price"]),
        ], now: 0)
        #expect(table.topics == ["chat", "price"])
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
