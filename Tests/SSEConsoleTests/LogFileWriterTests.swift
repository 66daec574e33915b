import Foundation
import Testing

@testable import SSEConsole

/// `save FILE`'s writer: the file is written, and each kind of bad path gets its own message.
@Suite struct LogFileWriterTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sse-save-\(UUID().uuidString)").path

    @Test func writesAndTruncates() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/log.jsonl"
        try LogFileWriter.write(Data("a much longer first version\n".utf8), to: path)
        try LogFileWriter.write(Data("{}\n".utf8), to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{}\n")
    }

    @Test func badPaths_sayWhatIsWrong() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = FileManager.default.createFile(atPath: "\(directory)/plain", contents: Data())
        let cases: [(String, String)] = [
            ("\(directory)/missing/log.jsonl", "directory \(directory)/missing does not exist"),
            (directory, "\(directory) is a directory"),
            ("\(directory)/plain/log.jsonl", "\(directory)/plain is not a directory"),
        ]
        for (path, message) in cases {
            #expect(throws: LogFileWriter.Failure(description: message)) { try LogFileWriter.write(Data(), to: path) }
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/sys/kernel")))
    func permissionDenied_isNamed() {
        // sysfs refuses to create files even for root, where a chmod-ed directory would not.
        #expect(throws: LogFileWriter.Failure(description: "permission denied: cannot write /sys/kernel/sse-log.jsonl")) {
            try LogFileWriter.write(Data(), to: "/sys/kernel/sse-log.jsonl")
        }
    }
}
