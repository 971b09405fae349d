// swift-tools-version:6.1
// The benchmarks: a package of their own, so that the main package's build and CI stay lean.
// `run.sh` builds it in release mode and runs every workload against C, swift-nio and this
// library (see ../BENCHMARKS.md).
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name (`main`, a worktree's name, a clone's).
let sockets = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "SocketsBenchmarks",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
    ],
    targets: [
        // Options and reporting helpers both programs share.
        .target(name: "BenchSupport"),
        // This library's side: the blocking core (`Sockets`, its `Epoll`, `DatagramBatch`)
        // and the async layer (`SocketsAsync`).
        .executableTarget(
            name: "bench-sockets",
            dependencies: [
                "BenchSupport",
                .product(name: "Sockets", package: sockets),
                .product(name: "SocketsAsync", package: sockets),
            ]
        ),
        // swift-nio's side: the same servers and clients on one NIO event loop.
        .executableTarget(
            name: "bench-nio",
            dependencies: [
                "BenchSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
