// swift-tools-version:6.1
// libFuzzer targets for the Sockets package's parsers and decoders. Build and run them with
// `scripts/fuzz.sh` (swift build -c release --sanitize=fuzzer --sanitize=address); each
// target is an executable whose entry point is libFuzzer's `LLVMFuzzerTestOneInput`.
import PackageDescription

let package = Package(
    name: "SocketsFuzz",
    dependencies: [
        .package(name: "Sockets", path: ".."),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // Address text (IPv4, IPv6 with zones, host:port, [v6]:port, Unix paths, @abstract)
        // and sockaddr bytes of any length.
        .executableTarget(name: "FuzzAddress", dependencies: [.product(name: "Sockets", package: "Sockets")]),
        // Typed option values decoded from the bytes getsockopt reports, and re-encoded.
        .executableTarget(name: "FuzzOptions", dependencies: [
            .product(name: "Sockets", package: "Sockets"), .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // Control messages decoded from a recvmsg control buffer, and re-encoded.
        .executableTarget(name: "FuzzControlMessage", dependencies: [.product(name: "Sockets", package: "Sockets")]),
    ],
    swiftLanguageModes: [.v6]
)
