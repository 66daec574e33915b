// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "swift-sse-broker",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SSEBroker", targets: ["SSEBroker"]),
        .library(name: "SSEBrokerServer", targets: ["SSEBrokerServer"]),
        .library(name: "SSEClient", targets: ["SSEClient"]),
        .executable(name: "sse-console", targets: ["SSEConsole"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        // HMAC-SHA256 for subscriber tokens (JWT HS256) and digests for constant-time comparison.
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        // The core: events, wire format, fan-out and slow-client policy. No sockets.
        .target(
            name: "SSEBroker",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The HTTP/1.1 server on SwiftNIO: routing, request limits, the streaming response.
        .target(
            name: "SSEBrokerServer",
            dependencies: [
                "SSEBroker",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // A small SSE client on SwiftNIO (WHATWG parsing), used by the tests and by load tools.
        .target(
            name: "SSEClient",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The console's logic: state, command parsing, line editing, layout into styled cells. No I/O.
        .target(name: "SSEConsoleCore"),
        // ncursesw as a system library (Debian: libncurses-dev); only `Screen` uses it.
        .systemLibrary(name: "CNcurses"),
        .executableTarget(
            name: "SSEConsole",
            dependencies: [
                "SSEBroker",
                "SSEConsoleCore",
                "CNcurses",
                "SSEBrokerServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // libFuzzer targets; `scripts/fuzz.sh` builds them with -sanitize=fuzzer,address. A plain
        // build makes corpus replayers of them (`FuzzEncoder FILE...`), which the tests also run.
        .executableTarget(
            name: "FuzzEncoder",
            dependencies: ["SSEBroker", "SSEClient", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/FuzzEncoder"
        ),
        .executableTarget(
            name: "FuzzRequestParsing",
            dependencies: [
                "SSEBroker",
                "SSEBrokerServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Fuzz/FuzzRequestParsing"
        ),
        .executableTarget(name: "FuzzCommandParser", dependencies: ["SSEConsoleCore"], path: "Fuzz/FuzzCommandParser"),
        .testTarget(name: "SSEConsoleCoreTests", dependencies: ["SSEConsoleCore"]),
        // The console executable: its command executor, and end to end in a real terminal (tmux).
        .testTarget(
            name: "SSEConsoleTests",
            dependencies: [
                "SSEConsole",
                "SSEConsoleCore",
                "SSEBroker",
                "SSEClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SSEBrokerTests",
            dependencies: [
                "SSEBroker",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SSEBrokerServerTests",
            dependencies: [
                "SSEBroker",
                "SSEBrokerServer",
                "SSEClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
