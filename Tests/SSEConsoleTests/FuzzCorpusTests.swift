import Foundation
import Testing

/// Every committed fuzz input — the seeds, and each crash the fuzzers found, kept as a regression
/// test — replayed through the fuzz targets' plain-build replayers (`Fuzz/*/Driver.swift`).
@Suite struct FuzzCorpusTests {
    @Test(arguments: ["FuzzEncoder", "FuzzRequestParsing", "FuzzCommandParser", "FuzzTopicMatcher"])
    func corpus_replaysCleanly(target: String) throws {
        let binary = URL(fileURLWithPath: try consoleBinary()).deletingLastPathComponent().appendingPathComponent(target).path
        let corpus = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus/\(target)").path
        let (status, output) = try spawn([binary, corpus])
        #expect(status == 0, "\(output)")
        #expect(output.hasPrefix("replayed "))
    }
}
