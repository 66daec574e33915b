// swift-tools-version:6.0
// The SwiftNIO floor of issue 15's comparison: the least an SSE broker on SwiftNIO's HTTP/1 codecs
// (and swift-nio-ssl for TLS, swift-nio-http2 for h2) does per publish and per delivery (see
// Sources/NIOFloor/main.swift).
// Not part of the product; built on its own by scripts/bench-compare.sh.
import PackageDescription

let package = Package(
    name: "nio-floor",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        // TLS as this broker serves it (`--tls-cert`, `--tls-key`): the floor of the TLS workloads.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.25.0"),
        // HTTP/2 over TLS (ALPN h2): the floor of the h2 workload.
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.30.0"),
    ],
    targets: [
        .executableTarget(
            name: "NIOFloor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ]
        )
    ]
)
