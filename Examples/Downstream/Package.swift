// swift-tools-version:6.1
import PackageDescription

// An app that uses this repository as a library, the way README's "Using the library" shows: only
// the core and the embedded server, with no trait. CI resolves and builds it
// (`scripts/downstream-check.sh`) and fails if it resolves a package the two do not need.
//
// The broker is referenced by path (two levels up); a path dependency's identity is its folder's
// name, whatever the clone is called.
let brokerPath = "../.."
let brokerIdentity = Context.packageDirectory.split(separator: "/").dropLast(2).last.map { $0.lowercased() } ?? "main"

let package = Package(
    name: "DownstreamApp",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: brokerPath, traits: []),
        // Also what an app needs to run the server as a Service with graceful shutdown.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.0.0"),
    ],
    targets: [
        .executableTarget(
            name: "DownstreamApp",
            dependencies: [
                .product(name: "SSEBroker", package: brokerIdentity),
                .product(name: "SSEBrokerServer", package: brokerIdentity),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
