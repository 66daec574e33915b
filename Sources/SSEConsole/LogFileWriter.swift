import Foundation
import SSEConsoleCore
#if canImport(Glibc)
import Glibc
#endif

/// Writes `save FILE`'s JSON lines, with an error that names what is wrong with the path (the
/// operator typed it on a console with no shell to ask).
enum LogFileWriter {
    struct Failure: Error, Equatable, CustomStringConvertible {
        var description: String
    }

    /// Creates or truncates `path` and writes `data` to it.
    /// - Throws: ``Failure`` saying which part of the path is missing, not a directory, a
    ///   directory, not writable or on a read-only file system.
    static func write(_ data: Data, to path: String) throws(Failure) {
        let expanded = (path as NSString).expandingTildeInPath
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: expanded, isDirectory: &isDirectory), isDirectory.boolValue {
            throw Failure(description: "\(path) is a directory")
        }
        let parent = (expanded as NSString).deletingLastPathComponent
        if !parent.isEmpty {
            if !FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory) {
                throw Failure(description: "directory \(parent) does not exist")
            }
            if !isDirectory.boolValue {
                throw Failure(description: "\(parent) is not a directory")
            }
        }
        let descriptor = open(expanded, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Self.failure(errno, path: path) }
        defer { close(descriptor) }
        var written = 0
        let result: Int32 = data.withUnsafeBytes { bytes in
            while written < bytes.count {
                let count = Glibc.write(descriptor, bytes.baseAddress! + written, bytes.count - written)
                if count < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += count
            }
            return 0
        }
        if result != 0 { throw Self.failure(result, path: path) }
    }

    private static func failure(_ code: Int32, path: String) -> Failure {
        switch code {
        case EACCES, EPERM: Failure(description: "permission denied: cannot write \(path)")
        case EROFS: Failure(description: "\(path) is on a read-only file system")
        case EISDIR: Failure(description: "\(path) is a directory")
        case ENOENT: Failure(description: "directory of \(path) does not exist")
        case ENOTDIR: Failure(description: "a part of \(path) is not a directory")
        case ENOSPC: Failure(description: "no space left on the device for \(path)")
        default: Failure(description: "cannot write \(path): \(String(cString: strerror(code)))")
        }
    }
}
