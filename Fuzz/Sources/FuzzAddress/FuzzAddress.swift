// Fuzzes the address parsers and the sockaddr decoder, checking round trips as it goes:
// text -> value -> text -> value gives the same value, and sockaddr bytes -> value ->
// sockaddr -> value too. ASan catches any read outside the input (it is copied into an
// allocation of exactly its size).
import Glibc
import Sockets

func fail(_ message: String) -> Never {
    let line = "FuzzAddress: property violated: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    abort()
}

/// The input's bytes in a heap block of exactly their size, so that reading one byte past
/// the end is a heap-buffer-overflow for ASan.
func withExactCopy<R>(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    defer { copy.deallocate() }
    copy.copyMemory(from: bytes)
    return body(UnsafeRawBufferPointer(copy))
}

/// Encoding to `sockaddr_storage` and decoding again gives the same address.
func checkSockaddrRoundTrip(_ address: SocketAddress) {
    var storage = sockaddr_storage()
    let length = address.encode(into: &storage)
    guard Int(length) <= MemoryLayout<sockaddr_storage>.size else { fail("encoded length \(length) for \(address)") }
    guard let decoded = try? SocketAddress(storage: storage, length: length) else { fail("cannot decode encoded \(address)") }
    guard decoded == address else { fail("sockaddr round trip: \(address) became \(decoded)") }
}

/// Text typed by people: every parser, and each value it accepts prints to text that parses
/// back to the same value.
func checkText(_ text: String) {
    if let v4 = try? IPv4Address(text) {
        // inet_pton's form is canonical: the text is exactly what prints.
        guard v4.description == text else { fail("IPv4 \(text.debugDescription) printed as \(v4)") }
    }
    if let v4 = try? IPv4Address(legacy: text) {
        guard (try? IPv4Address(v4.description)) == v4 else { fail("legacy IPv4 \(text.debugDescription) -> \(v4) does not reparse") }
    }
    if let v6 = try? IPv6Address(text) {
        guard (try? IPv6Address(v6.description)) == v6 else { fail("IPv6 \(text.debugDescription) -> \(v6) does not reparse") }
        guard (try? IPv6Address(bytes: v6.bytes)) == v6 else { fail("IPv6 bytes round trip for \(v6)") }
    }
    if let ip = try? IPAddress(text) {
        guard (try? IPAddress(ip.description)) == ip else { fail("IP \(text.debugDescription) -> \(ip) does not reparse") }
    }
    if let address = try? SocketAddress(text) {
        let printed = address.description
        guard let again = try? SocketAddress(printed) else { fail("\(text.debugDescription) -> \(printed.debugDescription) does not reparse") }
        guard again == address else { fail("\(text.debugDescription) -> \(address) reparses as \(again)") }
        checkSockaddrRoundTrip(address)
    }
}

/// `SocketAddress(host:port:)` with any host, and the text form `HOST:PORT` with any port
/// number: the text parser accepts only 0...65535.
func checkHostAndPort(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count >= 4 else { return }
    let port = Int(bytes.loadUnaligned(as: Int32.self))
    let host = String(decoding: bytes[4...], as: UTF8.self)
    let text = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    // (A host with a `/` or a leading `@` makes the text a Unix address, which has no port.)
    if let parsed = try? SocketAddress(text), parsed.port != nil, !(0...65535).contains(port) {
        fail("port \(port) accepted as \(parsed)")
    }
    guard let address = try? SocketAddress(host: host, port: UInt16(truncatingIfNeeded: port)) else { return }
    guard address.port == UInt16(truncatingIfNeeded: port) else { fail("port \(port) accepted as \(address)") }
    guard (try? SocketAddress(address.description)) == address else { fail("\(host):\(port) -> \(address) does not reparse") }
    checkSockaddrRoundTrip(address)
}

/// What the kernel (or anyone) may leave in a sockaddr buffer, with the reported length.
func checkSockaddr(_ bytes: UnsafeRawBufferPointer) {
    // An empty buffer has no address to point at; length 0 is fuzzed through checkStorage.
    guard let address = withExactCopy(bytes, { copy in
        copy.baseAddress.map { SocketAddress(sockaddr: $0, length: socklen_t(copy.count)) }
    }) else { return }
    _ = address.description
    // Decoding is a normalisation: once decoded, an address survives the round trip.
    checkSockaddrRoundTrip(address)
    switch address {
    case .ipv4:
        guard (try? SocketAddress(address.description)) == address else { fail("decoded \(address) does not reparse") }
    case .ipv6(let v6):
        // The text form has no flow label.
        var unlabelled = v6
        unlabelled.flowInfo = 0
        guard (try? SocketAddress(address.description)) == .ipv6(unlabelled) else { fail("decoded \(address) does not reparse") }
    case .unix(let unix):
        guard unix.bytes.count <= 108 else { fail("Unix address of \(unix.bytes.count) bytes") }
    case .other(let raw):
        guard raw.bytes.count == min(bytes.count, MemoryLayout<sockaddr_storage>.size) else { fail("raw address of \(raw.bytes.count) bytes from \(bytes.count)") }
    }
}

/// A `sockaddr_storage` with any claimed length: lengths over its size are refused.
func checkStorage(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count >= 2 else { return }
    let length = socklen_t(bytes.loadUnaligned(as: UInt16.self))
    var storage = sockaddr_storage()
    withUnsafeMutableBytes(of: &storage) { target in
        let count = min(target.count, bytes.count - 2)
        target.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[2..<(2 + count)]))
    }
    let decoded = try? SocketAddress(storage: storage, length: length)
    if Int(length) > MemoryLayout<sockaddr_storage>.size {
        guard decoded == nil else { fail("length \(length) accepted") }
    } else if let decoded {
        checkSockaddrRoundTrip(decoded)
    } else {
        fail("length \(length) refused")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAddress(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let body = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    switch data[0] % 4 {
    case 0: checkText(String(decoding: body, as: UTF8.self))
    case 1: checkHostAndPort(body)
    case 2: checkSockaddr(body)
    default: checkStorage(body)
    }
    return 0
}
