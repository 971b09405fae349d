import Glibc
import SocketSyscalls

/// An IPv4 address, such as `127.0.0.1`.
///
/// Parsing and printing follow `inet_pton(3)`/`inet_ntop(3)` exactly: four decimal parts,
/// each 0–255, no leading zeros, no shorthand.
public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The address as a number in host byte order: `127.0.0.1` is `0x7F00_0001`.
    public var value: UInt32

    /// Creates an address from its number in host byte order.
    public init(value: UInt32) { self.value = value }

    /// Creates `a.b.c.d`.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses dotted-quad text as `inet_pton(AF_INET)` does.
    /// - Throws: ``SocketError`` with ``SocketError/Reason/invalidArgument(_:)`` for anything else.
    public init(_ text: String) throws(SocketError) {
        var raw: UInt32 = 0
        // A NUL would end the C string early: "1.2.3.4\0junk" must not parse as 1.2.3.4.
        guard text.utf8.count <= 15, !text.utf8.contains(0), Syscall.inetPton(family: AF_INET, text, &raw) else {
            throw SocketError.invalid("parse IPv4 address", "\"\(text)\"", "not an IPv4 address (expected four numbers 0-255 like 192.0.2.1)")
        }
        value = UInt32(bigEndian: raw)
    }

    /// Parses the classic, lenient forms that `inet_aton(3)` accepts: one to four parts, each
    /// decimal, octal (leading `0`) or hex (`0x`), the last filling the remaining bytes, so
    /// `127.1` is 127.0.0.1 and `0x7f000001` too. Prefer ``init(_:)`` for new input: these
    /// forms surprise people (`010.0.0.1` is 8.0.0.1). Unlike glibc's `inet_aton`, text after
    /// a space is not silently ignored: it is an error.
    public init(legacy text: String) throws(SocketError) {
        guard text.utf8.count <= 64, !text.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }), let raw = Syscall.inetAton(text) else {
            throw SocketError.invalid("parse IPv4 address", "\"\(text)\"", "not an IPv4 address in any inet_aton form")
        }
        value = UInt32(bigEndian: raw)
    }

    /// `0.0.0.0`: any address (`INADDR_ANY`).
    public static let any = IPv4Address(value: 0)
    /// `127.0.0.1` (`INADDR_LOOPBACK`).
    public static let loopback = IPv4Address(127, 0, 0, 1)
    /// `255.255.255.255` (`INADDR_BROADCAST`).
    public static let broadcast = IPv4Address(value: .max)

    /// The four bytes, most significant first.
    public var bytes: [UInt8] {
        [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    /// In 127.0.0.0/8.
    public var isLoopback: Bool { value >> 24 == 127 }
    /// In 224.0.0.0/4.
    public var isMulticast: Bool { value >> 28 == 0xE }
    /// `0.0.0.0`.
    public var isUnspecified: Bool { value == 0 }
    /// In 169.254.0.0/16.
    public var isLinkLocal: Bool { value >> 16 == 0xA9FE }
    /// In 10/8, 172.16/12 or 192.168/16 (RFC 1918).
    public var isPrivate: Bool {
        value >> 24 == 10 || value >> 20 == 0xAC1 || value >> 16 == 0xC0A8
    }

    public var description: String {
        "\(value >> 24).\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
    }

    public var debugDescription: String { "IPv4Address(\(description))" }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }
}

/// An IPv6 address, such as `2001:db8::1`.
///
/// Parsing follows `inet_pton(AF_INET6)`; printing follows `inet_ntop`, which gives the
/// RFC 5952 form (lower case, the longest run of zero groups compressed, `::ffff:1.2.3.4` for
/// IPv4-mapped addresses). A zone (`%eth0`) belongs to a socket address: see
/// ``IPv6SocketAddress/scopeID``.
public struct IPv6Address: Hashable, Sendable, Comparable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The first eight bytes, big-endian.
    public var high: UInt64
    /// The last eight bytes, big-endian.
    public var low: UInt64

    /// Creates an address from its two halves as numbers.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Creates an address from 16 bytes in network order.
    /// - Throws: when `bytes` does not hold exactly 16 bytes.
    public init(bytes: [UInt8]) throws(SocketError) {
        guard bytes.count == 16 else {
            throw SocketError.invalid("make IPv6 address", nil, "needs 16 bytes, got \(bytes.count)")
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<8 { high = high << 8 | UInt64(bytes[index]) }
        for index in 8..<16 { low = low << 8 | UInt64(bytes[index]) }
        self.init(high: high, low: low)
    }

    /// Creates an address from eight 16-bit groups.
    public init(_ g0: UInt16, _ g1: UInt16, _ g2: UInt16, _ g3: UInt16, _ g4: UInt16, _ g5: UInt16, _ g6: UInt16, _ g7: UInt16) {
        high = UInt64(g0) << 48 | UInt64(g1) << 32 | UInt64(g2) << 16 | UInt64(g3)
        low = UInt64(g4) << 48 | UInt64(g5) << 32 | UInt64(g6) << 16 | UInt64(g7)
    }

    /// Parses text as `inet_pton(AF_INET6)` does (no zone; see ``IPv6SocketAddress``).
    public init(_ text: String) throws(SocketError) {
        var raw = in6_addr()
        guard text.utf8.count <= 45, !text.utf8.contains(0), Syscall.inetPton(family: AF_INET6, text, &raw) else {
            throw SocketError.invalid("parse IPv6 address", "\"\(text)\"", "not an IPv6 address")
        }
        self.init(raw)
    }

    /// `::`: any address (`in6addr_any`).
    public static let any = IPv6Address(high: 0, low: 0)
    /// `::1` (`in6addr_loopback`).
    public static let loopback = IPv6Address(high: 0, low: 1)

    /// The IPv4-mapped form `::ffff:a.b.c.d` of an IPv4 address.
    public init(ipv4Mapped address: IPv4Address) {
        self.init(high: 0, low: 0xFFFF_0000_0000 | UInt64(address.value))
    }

    /// The 16 bytes in network order.
    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64($0))) }
    }

    /// `::1`.
    public var isLoopback: Bool { self == .loopback }
    /// `::`.
    public var isUnspecified: Bool { self == .any }
    /// In ff00::/8.
    public var isMulticast: Bool { high >> 56 == 0xFF }
    /// In fe80::/10.
    public var isLinkLocal: Bool { high >> 54 == 0x3FA }
    /// In fc00::/7 (unique local).
    public var isUniqueLocal: Bool { high >> 57 == 0x7E }
    /// The IPv4 address inside an IPv4-mapped address (`::ffff:a.b.c.d`), or `nil`.
    public var ipv4Mapped: IPv4Address? {
        guard high == 0, low >> 32 == 0xFFFF else { return nil }
        return IPv4Address(value: UInt32(truncatingIfNeeded: low))
    }

    public var description: String {
        var raw = in6_addr(self)
        return Syscall.inetNtop(family: AF_INET6, &raw)
    }

    public var debugDescription: String { "IPv6Address(\(description))" }

    public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}

extension IPv6Address {
    init(_ raw: in6_addr) {
        var raw = raw
        var high: UInt64 = 0
        var low: UInt64 = 0
        withUnsafeBytes(of: &raw) { bytes in
            for index in 0..<8 { high = high << 8 | UInt64(bytes[index]) }
            for index in 8..<16 { low = low << 8 | UInt64(bytes[index]) }
        }
        self.init(high: high, low: low)
    }
}

extension in6_addr {
    init(_ address: IPv6Address) {
        self.init()
        var big = (address.high.bigEndian, address.low.bigEndian)
        withUnsafeMutableBytes(of: &self) { target in
            withUnsafeBytes(of: &big) { source in target.copyMemory(from: source) }
        }
    }
}

/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Parses either form (IPv4 dotted quad, or IPv6 without a zone).
    public init(_ text: String) throws(SocketError) {
        if text.contains(":") {
            self = .v6(try IPv6Address(text))
        } else if let v4 = try? IPv4Address(text) {
            self = .v4(v4)
        } else {
            throw SocketError.invalid("parse IP address", "\"\(text)\"", "not an IPv4 or IPv6 address")
        }
    }

    /// The family: ``SocketDomain/inet`` or ``SocketDomain/inet6``.
    public var domain: SocketDomain {
        switch self {
        case .v4: return .inet
        case .v6: return .inet6
        }
    }

    public var isLoopback: Bool {
        switch self {
        case .v4(let address): return address.isLoopback
        case .v6(let address): return address.isLoopback
        }
    }

    public var description: String {
        switch self {
        case .v4(let address): return address.description
        case .v6(let address): return address.description
        }
    }
}
