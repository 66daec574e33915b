import Foundation

/// What the three fuzz targets share: libFuzzer's driver, and the corpus replayer a plain build makes.
///
/// `scripts/fuzz.sh` builds with `-sanitize=fuzzer,address -parse-as-library -DFUZZING`. SwiftPM links
/// an executable with `main` aliased to `<Module>_main`, which would hide libFuzzer's own `main`, so
/// each target defines that symbol and hands over to ``run(_:_:testOneInput:)``. A plain build makes
/// a replayer instead that runs the target on each file (or every file of each directory) named on
/// the command line: corpus and crash-regression runs.
public enum FuzzDriver {
    #if FUZZING
    /// Hands the process over to libFuzzer's driver.
    public static func run(
        _ argc: CInt,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
        testOneInput: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
    ) -> CInt {
        var argc = argc
        var argv = argv
        return LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
    }
    #endif

    /// Runs `fuzzOne` on every input named by `arguments` (files, or directories of files).
    public static func replay(_ arguments: some Sequence<String>, fuzzOne: ([UInt8]) -> Void) throws {
        var count = 0
        for argument in arguments {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
                throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: argument])
            }
            let files =
                isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: argument).sorted().map { argument + "/" + $0 }
                : [argument]
            for file in files {
                fuzzOne(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
                count += 1
            }
        }
        print("replayed \(count) inputs")
    }
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt
#endif
