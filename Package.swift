// swift-tools-version:6.1
import PackageDescription

// Package traits (SE-0450) keep what an app that depends on this package resolves to what it uses.
// The core (`SSEBroker`) and the server (`SSEBrokerServer`) need no trait; everything else is
// behind one, and every reference to a trait's packages (in tests and examples too) carries its
// condition, so that SwiftPM leaves those packages out of an app's resolution altogether:
//
//     .package(url: "…/swift-sse-broker.git", from: "1.0.0", traits: [])            // core + server
//     .package(url: "…/swift-sse-broker.git", from: "1.0.0", traits: ["Cluster"])   // + PostgreSQL
//
// At the root every trait is on by default: `swift run sse-console` and `swift test` need no flag.
// (`Examples/Downstream` is the check that `traits: []` resolves only the core's packages.)
func when(_ trait: String) -> TargetDependencyCondition? { .when(traits: [trait]) }

let package = Package(
    name: "swift-sse-broker",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SSEBroker", targets: ["SSEBroker"]),
        .library(name: "SSEBrokerServer", targets: ["SSEBrokerServer"]),
        .library(name: "SSEClient", targets: ["SSEClient"]),
        .library(name: "SSEBrokerHummingbird", targets: ["SSEBrokerHummingbird"]),
        .library(name: "SSEBrokerPostgres", targets: ["SSEBrokerPostgres"]),
        .library(name: "SSEBrokerSQLite", targets: ["SSEBrokerSQLite"]),
        .executable(name: "sse-console", targets: ["SSEConsole"]),
        .executable(name: "sse-bench", targets: ["SSEBench"]),
        .executable(name: "sse-hummingbird-example", targets: ["SSEHummingbirdExample"]),
    ],
    traits: [
        .trait(name: "TLS", description: "https on the embedded server (swift-nio-ssl, which builds BoringSSL)."),
        .trait(name: "Cluster", description: "SSEBrokerPostgres: several nodes made one through PostgreSQL (postgres-nio)."),
        .trait(name: "SQLiteHistory", description: "SSEBrokerSQLite: a durable event history in one SQLite file (GRDB)."),
        .trait(name: "Hummingbird", description: "SSEBrokerHummingbird: the endpoints on a Hummingbird 2 router, and its example."),
        .trait(name: "Prometheus", description: "Metrics exported in Prometheus' format (swift-prometheus), as sse-console serves them."),
        .trait(
            name: "Tools",
            description: "The executables sse-console and sse-bench (argument-parser, hdrhistogram), with what the console embeds.",
            enabledTraits: ["TLS", "Cluster", "SQLiteHistory", "Prometheus"]
        ),
        .default(enabledTraits: ["TLS", "Cluster", "SQLiteHistory", "Hummingbird", "Prometheus", "Tools"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.9.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        // HMAC-SHA256 for subscriber tokens (JWT HS256) and digests for constant-time comparison.
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        // Cluster mode: PostgreSQL as the shared event log and NOTIFY/LISTEN backplane.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.25.0"),
        // HTTP/2 on the embedded server (h2 by ALPN over TLS, h2c with prior knowledge).
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.38.0"),
        // SQLite for the durable history (`--history-file`); needs libsqlite3-dev on Linux.
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        // The core: events, wire format, fan-out and slow-client policy. No sockets.
        .target(
            name: "SSEBroker",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                // Requests, statuses and header fields of any HTTP version (no HTTP/1 codec here).
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The HTTP/1.1 and HTTP/2 server on SwiftNIO: routing, request limits, the streaming response.
        .target(
            name: "SSEBrokerServer",
            dependencies: [
                "SSEBroker",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: when("TLS")),
            ]
        ),
        // Cluster mode: several broker nodes made one through PostgreSQL (shared log, NOTIFY/LISTEN, presence).
        .target(
            name: "SSEBrokerPostgres",
            dependencies: [
                "SSEBroker",
                .product(name: "PostgresNIO", package: "postgres-nio", condition: when("Cluster")),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: when("Cluster")),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The broker's endpoints mounted on a Hummingbird 2 router. The core never imports Hummingbird.
        .target(
            name: "SSEBrokerHummingbird",
            dependencies: [
                "SSEBroker",
                // ServerSecurity (tokens, admission), applied as the embedded server applies it.
                "SSEBrokerServer",
                .product(name: "Hummingbird", package: "hummingbird", condition: when("Hummingbird")),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                // MultiThreadedEventLoopGroup.singleton: Hummingbird's loops, for BrokerService's poll signal.
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // A durable event history in one SQLite file (GRDB): the broker's EventJournal, written behind.
        .target(
            name: "SSEBrokerSQLite",
            dependencies: [
                "SSEBroker",
                .product(name: "GRDB", package: "GRDB.swift", condition: when("SQLiteHistory")),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "SSEBrokerSQLiteTests",
            dependencies: [
                "SSEBrokerSQLite",
                "SSEBroker",
                "SSEClient",
                "SSETestSupport",
                .product(name: "GRDB", package: "GRDB.swift", condition: when("SQLiteHistory")),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // `sse-hummingbird-example`: the broker in a Hummingbird app (README, "Mounting on Hummingbird").
        .executableTarget(
            name: "SSEHummingbirdExample",
            dependencies: [
                "SSEBroker",
                "SSEBrokerHummingbird",
                .product(name: "Hummingbird", package: "hummingbird", condition: when("Hummingbird")),
                .product(name: "HummingbirdHTTP2", package: "hummingbird", condition: when("Hummingbird")),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/HummingbirdExample"
        ),
        // A small SSE client on SwiftNIO (WHATWG parsing), used by the tests and by load tools.
        .target(
            name: "SSEClient",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
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
                "SSEBrokerPostgres",
                "SSEBrokerSQLite",
                .product(name: "ArgumentParser", package: "swift-argument-parser", condition: when("Tools")),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus", condition: when("Prometheus")),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: when("TLS")),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // The load generator behind BENCHMARKS.md: SSE subscribers and publishers on SwiftNIO against
        // a broker in another process (this one or nchan), with the broker's CPU and RSS from /proc.
        // (SSEBrokerServer only for its default event-loop count.)
        .executableTarget(
            name: "SSEBench",
            dependencies: [
                "SSEBrokerServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser", condition: when("Tools")),
                .product(name: "Histogram", package: "hdrhistogram-swift", condition: when("Tools")),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: when("Tools")),
            ]
        ),
        // Test helpers shared by the end-to-end tests: a long-running child process, a WebDriver client.
        .target(
            name: "SSETestSupport",
            dependencies: [
                "SSEClient",
                "SSEBroker",
                .target(name: "SSEBrokerPostgres", condition: when("Cluster")),
                .product(name: "PostgresNIO", package: "postgres-nio", condition: when("Cluster")),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/SSETestSupport"
        ),
        // libFuzzer targets; `scripts/fuzz.sh` builds them with -sanitize=fuzzer,address. A plain
        // build makes corpus replayers of them (`FuzzEncoder FILE...`), which the tests also run.
        .target(name: "FuzzSupport", path: "Fuzz/FuzzSupport"),
        .executableTarget(
            name: "FuzzEncoder",
            dependencies: ["FuzzSupport", "SSEBroker", "SSEClient", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/FuzzEncoder"
        ),
        .executableTarget(
            name: "FuzzRequestParsing",
            dependencies: [
                "FuzzSupport",
                "SSEBroker",
                "SSEBrokerServer",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Fuzz/FuzzRequestParsing"
        ),
        .executableTarget(
            name: "FuzzCommandParser", dependencies: ["FuzzSupport", "SSEConsoleCore"], path: "Fuzz/FuzzCommandParser"
        ),
        .executableTarget(name: "FuzzTopicMatcher", dependencies: ["FuzzSupport", "SSEBroker"], path: "Fuzz/FuzzTopicMatcher"),
        .testTarget(name: "SSEConsoleCoreTests", dependencies: ["SSEConsoleCore"]),
        // The console executable: its command executor, and end to end in a real terminal (tmux).
        .testTarget(
            name: "SSEConsoleTests",
            dependencies: [
                "SSEConsole",
                "SSETestSupport",
                "SSEConsoleCore",
                "SSEBroker",
                "SSEBrokerServer",
                "SSEClient",
                // The cluster tests' own statements on the shared database (waiting, cleaning up).
                "SSEBrokerPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio", condition: when("Cluster")),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "SSEBrokerTests",
            dependencies: [
                "SSEBroker",
                "SSETestSupport",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SSEBrokerServerTests",
            dependencies: [
                "SSEBroker",
                "SSETestSupport",
                "SSEBrokerServer",
                "SSEClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: when("TLS")),
            ]
        ),
        // Cluster mode against a real PostgreSQL (a private server per test process, or SSE_TEST_POSTGRES_URL).
        .testTarget(
            name: "SSEBrokerPostgresTests",
            dependencies: [
                "SSEBroker",
                "SSEBrokerPostgres",
                "SSEBrokerServer",
                "SSEClient",
                "SSETestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio", condition: when("Cluster")),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Hummingbird's test client against the mounted endpoints, with the repo's SSE client.
        .testTarget(
            name: "SSEBrokerHummingbirdTests",
            dependencies: [
                "SSEBroker",
                "SSEBrokerHummingbird",
                "SSEBrokerServer",
                "SSEClient",
                "SSETestSupport",
                .product(name: "Hummingbird", package: "hummingbird", condition: when("Hummingbird")),
                .product(name: "HummingbirdTesting", package: "hummingbird", condition: when("Hummingbird")),
                .product(name: "HummingbirdHTTP2", package: "hummingbird", condition: when("Hummingbird")),
                .product(name: "HTTPTypes", package: "swift-http-types", condition: when("Hummingbird")),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
