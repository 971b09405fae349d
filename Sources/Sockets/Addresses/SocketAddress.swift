public import Glibc
import SocketSyscalls

/// An IPv4 address and port, `sockaddr_in`: printed and parsed as `127.0.0.1:80`.
public struct IPv4SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    public var port: UInt16

    public init(address: IPv4Address, port: UInt16) {
        self.address = address
        self.port = port
    }

    public var description: String { "\(address):\(port)" }
}

/// An IPv6 address, port, flow label and scope, `sockaddr_in6`: printed and parsed as
/// `[fe80::1%eth0]:80` (the zone by interface name or number).
public struct IPv6SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv6Address
    public var port: UInt16
    /// The flow information, in host byte order (`sin6_flowinfo`).
    public var flowInfo: UInt32
    /// The scope (zone) id: an interface index for link-local addresses, 0 for none.
    public var scopeID: UInt32

    public init(address: IPv6Address, port: UInt16, flowInfo: UInt32 = 0, scopeID: UInt32 = 0) {
        self.address = address
        self.port = port
        self.flowInfo = flowInfo
        self.scopeID = scopeID
    }

    /// The address with its zone, `fe80::1%eth0`, naming the interface when it exists.
    public var hostDescription: String {
        guard scopeID != 0 else { return address.description }
        let zone = Syscall.interfaceName(index: scopeID) ?? String(scopeID)
        return "\(address)%\(zone)"
    }

    public var description: String { "[\(hostDescription)]:\(port)" }
}

/// A Unix-domain address, `sockaddr_un`: a filesystem path, a Linux abstract name, or unnamed.
///
/// Printed as the path (`/run/app.sock`), as `@name` for an abstract name, and as `(unnamed)`.
public struct UnixSocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// The three kinds of Unix address.
    public enum Kind: Hashable, Sendable {
        /// A filesystem path.
        case path
        /// Linux's abstract namespace: a name that is not in the filesystem.
        case abstract
        /// No name: a socket that was never bound (or autobound by `bind` with an empty name).
        case unnamed
    }

    /// Which kind of address this is.
    public let kind: Kind
    /// The path's or abstract name's bytes (without the abstract name's leading NUL).
    public let bytes: [UInt8]

    /// The longest path: `sun_path` holds 108 bytes, one of them the terminating NUL.
    public static let maximumPathLength = 107
    /// The longest abstract name (after its leading NUL byte).
    public static let maximumAbstractLength = 107

    /// A filesystem path.
    /// - Throws: for an empty path, one over 107 bytes, or one holding a NUL byte.
    public init(path: String) throws(SocketError) {
        try self.init(pathBytes: Array(path.utf8))
    }

    /// A filesystem path given as bytes, which need not be UTF-8.
    /// - Throws: for an empty path, one over 107 bytes, or one holding a NUL byte.
    public init(pathBytes: [UInt8]) throws(SocketError) {
        let shown = String(decoding: pathBytes, as: UTF8.self)
        guard !pathBytes.isEmpty else {
            throw SocketError.invalid("make Unix address", "\"\"", "empty path (use UnixSocketAddress.unnamed to autobind)")
        }
        guard pathBytes.count <= Self.maximumPathLength else {
            throw SocketError.invalid("make Unix address", shown, "path is \(pathBytes.count) bytes; the limit is \(Self.maximumPathLength)")
        }
        guard !pathBytes.contains(0) else {
            throw SocketError.invalid("make Unix address", shown, "path contains a NUL byte")
        }
        self.kind = .path
        self.bytes = pathBytes
    }

    /// A path exactly as the kernel reported it: any bytes, up to the whole `sun_path` (108,
    /// with no NUL), which a peer that is not this library may have bound.
    init(decodedPath bytes: [UInt8]) {
        self.kind = .path
        self.bytes = bytes
    }

    /// A name in Linux's abstract namespace (any bytes, up to 107).
    public init(abstract name: [UInt8]) throws(SocketError) {
        guard name.count <= Self.maximumAbstractLength else {
            throw SocketError.invalid("make Unix address", "@" + String(decoding: name, as: UTF8.self), "abstract name is \(name.count) bytes; the limit is \(Self.maximumAbstractLength)")
        }
        self.kind = .abstract
        self.bytes = name
    }

    /// A name in Linux's abstract namespace.
    public init(abstract name: String) throws(SocketError) {
        try self.init(abstract: Array(name.utf8))
    }

    private init(unnamed: Void) {
        kind = .unnamed
        bytes = []
    }

    /// The unnamed address. Binding to it asks the kernel to autobind an abstract name.
    public static let unnamed = UnixSocketAddress(unnamed: ())

    /// The path, for a ``Kind/path`` address.
    public var path: String? {
        kind == .path ? String(decoding: bytes, as: UTF8.self) : nil
    }

    public var description: String {
        switch kind {
        case .path: return String(decoding: bytes, as: UTF8.self)
        case .abstract: return "@" + String(decoding: bytes, as: UTF8.self)
        case .unnamed: return "(unnamed)"
        }
    }
}

/// An address of a family this library has no type for, kept as the raw `sockaddr` bytes.
public struct RawSocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// The family (`sa_family`).
    public let family: SocketDomain
    /// The whole `sockaddr`, family included, exactly as long as the kernel reported.
    public let bytes: [UInt8]

    /// Wraps raw bytes; the first two hold the family.
    /// - Throws: when there are fewer than 2 or more than 128 bytes.
    public init(bytes: [UInt8]) throws(SocketError) {
        guard bytes.count >= 2, bytes.count <= MemoryLayout<sockaddr_storage>.size else {
            throw SocketError.invalid("make raw socket address", nil, "length \(bytes.count) is outside 2...\(MemoryLayout<sockaddr_storage>.size)")
        }
        self.bytes = bytes
        self.family = SocketDomain(rawValue: Int32(UInt16(bytes[0]) | UInt16(bytes[1]) << 8))
    }

    /// An `AF_UNSPEC` address of zeros.
    init(unspecifiedOfLength length: Int) {
        family = .unspecified
        bytes = Array(repeating: 0, count: length)
    }

    public var description: String {
        "\(family)[" + bytes.dropFirst(2).map { String($0, radix: 16) }.joined(separator: ":") + "]"
    }
}

/// Any socket address: what `bind`, `connect`, `accept`, `sendto`, `recvfrom`, `getsockname`
/// and `getpeername` take and give.
///
/// Converts to and from `sockaddr_storage` with the exact length, which abstract Unix names
/// depend on. Parse one from the text people type with ``init(_:)``.
public enum SocketAddress: Hashable, Sendable, CustomStringConvertible {
    case ipv4(IPv4SocketAddress)
    case ipv6(IPv6SocketAddress)
    case unix(UnixSocketAddress)
    /// Any other family (`AF_PACKET`, `AF_NETLINK`, ...), as raw bytes.
    case other(RawSocketAddress)

    /// The address family.
    public var domain: SocketDomain {
        switch self {
        case .ipv4: return .inet
        case .ipv6: return .inet6
        case .unix: return .unix
        case .other(let raw): return raw.family
        }
    }

    /// The port of an IP address, else `nil`.
    public var port: UInt16? {
        switch self {
        case .ipv4(let address): return address.port
        case .ipv6(let address): return address.port
        default: return nil
        }
    }

    /// The IP address of an IPv4 or IPv6 socket address, else `nil`.
    public var ipAddress: IPAddress? {
        switch self {
        case .ipv4(let address): return .v4(address.address)
        case .ipv6(let address): return .v6(address.address)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .ipv4(let address): return address.description
        case .ipv6(let address): return address.description
        case .unix(let address): return address.description
        case .other(let address): return address.description
        }
    }
}

// MARK: - Building addresses

extension SocketAddress {
    /// An IPv4 socket address.
    public static func ipv4(_ address: IPv4Address, port: UInt16) -> SocketAddress {
        .ipv4(IPv4SocketAddress(address: address, port: port))
    }

    /// An IPv6 socket address.
    public static func ipv6(_ address: IPv6Address, port: UInt16, flowInfo: UInt32 = 0, scopeID: UInt32 = 0) -> SocketAddress {
        .ipv6(IPv6SocketAddress(address: address, port: port, flowInfo: flowInfo, scopeID: scopeID))
    }

    /// A Unix socket address for a filesystem path.
    public static func unix(path: String) throws(SocketError) -> SocketAddress {
        .unix(try UnixSocketAddress(path: path))
    }

    /// A Unix socket address in Linux's abstract namespace.
    public static func unix(abstract name: String) throws(SocketError) -> SocketAddress {
        .unix(try UnixSocketAddress(abstract: name))
    }

    /// A numeric host (IPv4, or IPv6 with an optional `%zone`) and a port. No name lookup:
    /// use ``AddressInfo`` for host names.
    /// - Throws: for a malformed host or an unknown zone.
    public init(host: String, port: UInt16) throws(SocketError) {
        if host.contains(":") {
            let (address, scope) = try Self.parseIPv6WithZone(host)
            self = .ipv6(IPv6SocketAddress(address: address, port: port, scopeID: scope))
        } else {
            self = .ipv4(IPv4SocketAddress(address: try IPv4Address(host), port: port))
        }
    }

    /// Parses the text people type: `127.0.0.1:80`, `[::1]:80`, `[fe80::1%eth0]:80`,
    /// a Unix path containing `/` (`/run/app.sock`, `./x.sock`), or `@name` for an abstract name.
    /// - Throws: ``SocketError`` saying what is wrong with the text.
    public init(_ text: String) throws(SocketError) {
        if text.hasPrefix("@") {
            self = .unix(try UnixSocketAddress(abstract: String(text.dropFirst())))
            return
        }
        if text.contains("/") {
            self = .unix(try UnixSocketAddress(path: text))
            return
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw SocketError.invalid("parse socket address", text, "missing ']' after the IPv6 address")
            }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw SocketError.invalid("parse socket address", text, "expected ':PORT' after ']'")
            }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw SocketError.invalid("parse socket address", text, "expected HOST:PORT, [IPv6]:PORT, a path or @name")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                throw SocketError.invalid("parse socket address", text, "an IPv6 address with a port must be written [ADDRESS]:PORT")
            }
        }
        guard !portText.isEmpty, portText.utf8.count <= 10, portText.utf8.allSatisfy({ (48...57).contains($0) }), let port = Int(portText) else {
            throw SocketError.invalid("parse socket address", text, "port \"\(portText)\" is not a number")
        }
        let validPort = try Self.validPort(port, input: text)
        if text.hasPrefix("[") {
            let (address, scope) = try Self.parseIPv6WithZone(String(host))
            self = .ipv6(IPv6SocketAddress(address: address, port: validPort, scopeID: scope))
        } else {
            self = try SocketAddress(host: String(host), port: validPort)
        }
    }

    static func validPort(_ port: Int, input: String) throws(SocketError) -> UInt16 {
        guard let valid = UInt16(exactly: port) else {
            throw SocketError.invalid("parse socket address", input, "port \(port) is outside 0...65535")
        }
        return valid
    }

    /// Splits `fe80::1%eth0` into the address and the zone's interface index.
    static func parseIPv6WithZone(_ text: String) throws(SocketError) -> (IPv6Address, UInt32) {
        guard let percent = text.firstIndex(of: "%") else { return (try IPv6Address(text), 0) }
        let address = try IPv6Address(String(text[..<percent]))
        let zone = String(text[text.index(after: percent)...])
        if let number = UInt32(zone) { return (address, number) }
        guard !zone.isEmpty, zone.utf8.count < 16, let index = Syscall.interfaceIndex(name: zone) else {
            throw SocketError.invalid("parse IPv6 address", text, "no interface named \"\(zone)\" for the zone")
        }
        return (address, index)
    }
}

// MARK: - sockaddr conversion

extension SocketAddress {
    /// Calls `body` with this address as a `sockaddr` pointer and its exact length.
    public func withUnsafeSockaddr<R, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        var storage = sockaddr_storage()
        let length = encode(into: &storage)
        return try withUnsafePointer(to: &storage) { (pointer) throws(E) -> R in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(E) -> R in
                try body(address, length)
            }
        }
    }

    /// Writes this address into `storage` and returns its exact length.
    public func encode(into storage: inout sockaddr_storage) -> socklen_t {
        storage = sockaddr_storage()
        return withUnsafeMutableBytes(of: &storage) { raw -> socklen_t in
            switch self {
            case .ipv4(let address):
                var inet = sockaddr_in()
                inet.sin_family = sa_family_t(AF_INET)
                inet.sin_port = address.port.bigEndian
                inet.sin_addr.s_addr = address.address.value.bigEndian
                raw.storeBytes(of: inet, as: sockaddr_in.self)
                return socklen_t(MemoryLayout<sockaddr_in>.size)
            case .ipv6(let address):
                var inet6 = sockaddr_in6()
                inet6.sin6_family = sa_family_t(AF_INET6)
                inet6.sin6_port = address.port.bigEndian
                inet6.sin6_flowinfo = address.flowInfo.bigEndian
                inet6.sin6_addr = in6_addr(address.address)
                inet6.sin6_scope_id = address.scopeID
                raw.storeBytes(of: inet6, as: sockaddr_in6.self)
                return socklen_t(MemoryLayout<sockaddr_in6>.size)
            case .unix(let address):
                raw.storeBytes(of: sa_family_t(AF_UNIX), as: sa_family_t.self)
                let pathOffset = MemoryLayout<sa_family_t>.size
                switch address.kind {
                case .path:
                    // A decoded path may fill all of sun_path (108 bytes) with no NUL; the
                    // length then stops at the end of sockaddr_un, as the kernel requires.
                    let count = min(address.bytes.count, MemoryLayout<sockaddr_un>.size - pathOffset)
                    raw.baseAddress!.advanced(by: pathOffset).copyMemory(from: address.bytes, byteCount: count)
                    return socklen_t(min(pathOffset + count + 1, MemoryLayout<sockaddr_un>.size))
                case .abstract:
                    raw.baseAddress!.advanced(by: pathOffset + 1).copyMemory(from: address.bytes, byteCount: address.bytes.count)
                    return socklen_t(pathOffset + 1 + address.bytes.count)
                case .unnamed:
                    return socklen_t(pathOffset)
                }
            case .other(let address):
                raw.copyBytes(from: address.bytes)
                return socklen_t(address.bytes.count)
            }
        }
    }

    /// Decodes an address the kernel wrote (from `accept`, `recvfrom`, `getsockname`, ...).
    ///
    /// `length` is the length the kernel reported; it is clamped to `sockaddr_storage`'s size.
    /// A family without a type here becomes ``other(_:)``.
    public init(sockaddr pointer: UnsafeRawPointer, length: socklen_t) {
        let length = min(Int(length), MemoryLayout<sockaddr_storage>.size)
        let raw = UnsafeRawBufferPointer(start: pointer, count: length)
        let family = length >= 2 ? Int32(raw.loadUnaligned(as: sa_family_t.self)) : Int32(AF_UNSPEC)
        switch family {
        case Int32(AF_INET) where length >= MemoryLayout<sockaddr_in>.size:
            let inet = raw.loadUnaligned(as: sockaddr_in.self)
            self = .ipv4(IPv4SocketAddress(address: IPv4Address(value: UInt32(bigEndian: inet.sin_addr.s_addr)), port: UInt16(bigEndian: inet.sin_port)))
        case Int32(AF_INET6) where length >= MemoryLayout<sockaddr_in6>.size:
            let inet6 = raw.loadUnaligned(as: sockaddr_in6.self)
            self = .ipv6(IPv6SocketAddress(
                address: IPv6Address(inet6.sin6_addr), port: UInt16(bigEndian: inet6.sin6_port),
                flowInfo: UInt32(bigEndian: inet6.sin6_flowinfo), scopeID: inet6.sin6_scope_id))
        case Int32(AF_UNIX):
            let pathOffset = MemoryLayout<sa_family_t>.size
            let path = length > pathOffset ? Array(raw[pathOffset..<length]) : []
            if path.isEmpty {
                self = .unix(.unnamed)
            } else if path[0] == 0 {
                self = .unix((try? UnixSocketAddress(abstract: Array(path.dropFirst()))) ?? .unnamed)
            } else {
                // The path ends at its first NUL; its bytes are kept as they are (not
                // necessarily UTF-8, possibly all 108 bytes of sun_path).
                let end = path.firstIndex(of: 0) ?? path.count
                self = .unix(UnixSocketAddress(decodedPath: Array(path[..<min(end, MemoryLayout<sockaddr_un>.size - pathOffset)])))
            }
        default:
            if let rawAddress = try? RawSocketAddress(bytes: Array(raw)) {
                self = .other(rawAddress)
            } else {
                self = .unix(.unnamed)
            }
        }
    }

    /// Decodes a `sockaddr_storage` of the given length.
    /// - Throws: when `length` is negative or larger than `sockaddr_storage`.
    public init(storage: sockaddr_storage, length: socklen_t) throws(SocketError) {
        guard Int(length) <= MemoryLayout<sockaddr_storage>.size else {
            throw SocketError.invalid("decode socket address", nil, "length \(length) exceeds sockaddr_storage (\(MemoryLayout<sockaddr_storage>.size))")
        }
        var storage = storage
        self = withUnsafeBytes(of: &storage) { SocketAddress(sockaddr: $0.baseAddress!, length: length) }
    }
}
