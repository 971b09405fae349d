// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Sockets",
    products: [
        .library(name: "Sockets", targets: ["Sockets"]),
        .library(name: "SocketsAsync", targets: ["SocketsAsync"]),
        .library(name: "SocketsServiceLifecycle", targets: ["SocketsServiceLifecycle"]),
        .executable(name: "sock", targets: ["sock"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Only for `swift package generate-documentation` (scripts/build-docs.sh): a command
        // plugin that no target depends on, so it adds no library to the builds of packages
        // that use this one.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Only what Swift cannot express: macros (CMSG_*, FD_SET), headers Glibc's module lacks.
        .target(name: "CSocketShims"),
        // Layer 1: one thin wrapper per system call; EINTR retried, errno captured at once.
        .target(
            name: "SocketSyscalls",
            dependencies: ["CSocketShims", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        // Layer 2: the synchronous core.
        .target(
            name: "Sockets",
            dependencies: ["SocketSyscalls", "CSocketShims", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        // Layer 3: the event loop and async/await sockets. swift-log's `Logging` (one small
        // module, no dependencies) is where SocketServer reports the errors it cannot throw.
        .target(
            name: "SocketsAsync",
            dependencies: [
                "Sockets",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        // SocketServer as a swift-service-lifecycle Service: a product of its own, so that only
        // those who run under a ServiceGroup build service-lifecycle (and its async-algorithms).
        .target(
            name: "SocketsServiceLifecycle",
            dependencies: ["SocketsAsync", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: strict
        ),
        // Layer 4: the command-line tool.
        .executableTarget(
            name: "sock",
            dependencies: [
                "Sockets",
                "SocketsAsync",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // One lock and one descriptor-leak trait for every test target: the descriptor table
        // is per process, and all test targets run in one process.
        .target(
            name: "SocketsTestSupport", dependencies: ["SocketSyscalls", "Sockets", "SocketsAsync"], path: "Tests/SocketsTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "SocketsTests",
            dependencies: ["Sockets", "SocketSyscalls", "SocketsTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SocketsAsyncTests",
            dependencies: ["SocketsTestSupport", "SocketsAsync", "Sockets", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SocketsServiceLifecycleTests",
            dependencies: [
                "SocketsServiceLifecycle",
                "SocketsAsync",
                "SocketsTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Faults (loss, delay, resets, black holes in network namespaces) and hostile peers.
        .testTarget(
            name: "ReliabilityTests",
            dependencies: ["Sockets", "SocketsAsync", "SocketsTestSupport", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        // End-to-end tests of the `sock` tool: they run the built binary (`swift build
        // --product sock` first) against real peers (python3, socat) over loopback.
        .testTarget(
            name: "SockToolTests",
            dependencies: ["SocketsTestSupport"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
