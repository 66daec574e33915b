// swift-tools-version:6.0
// The floor for issue 15's targeted workload: the least an SSE broker on SwiftNIO's HTTP/1 codecs
// can do per one-event publish (see README.md here). Not part of the product; built on its own.
import PackageDescription

let package = Package(
    name: "nio-floor",
    dependencies: [.package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0")],
    targets: [
        .executableTarget(
            name: "NIOFloor",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")]
        )
    ]
)
