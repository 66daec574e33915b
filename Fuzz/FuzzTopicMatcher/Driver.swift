import FuzzSupport

// libFuzzer's entry points for this target, or a corpus replayer in a plain build (see FuzzDriver).

#if FUZZING
@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutableRawPointer) -> CInt {
    fuzzSetUp()
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzOne(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@_cdecl("FuzzTopicMatcher_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, testOneInput: fuzzerTestOneInput)
}
#else
@main
struct Replay {
    static func main() throws {
        fuzzSetUp()
        try FuzzDriver.replay(CommandLine.arguments.dropFirst(), fuzzOne: fuzzOne)
    }
}
#endif
