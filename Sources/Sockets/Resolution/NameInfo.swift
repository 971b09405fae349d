import Glibc
import SocketSyscalls

/// Flags for ``NameInfo/lookup(_:flags:)``: the `NI_*` constants of `getnameinfo(3)`.
public struct NameInfoFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `NI_NUMERICHOST`: give the host as a numeric address; never look its name up.
    public static let numericHost = NameInfoFlags(rawValue: 0x01)
    /// `NI_NUMERICSERV`: give the service as a port number; never look its name up.
    public static let numericService = NameInfoFlags(rawValue: 0x02)
    /// `NI_NOFQDN`: for a host in the local domain, give only the first label of its name.
    public static let noFullyQualifiedName = NameInfoFlags(rawValue: 0x04)
    /// `NI_NAMEREQD`: fail with `EAI_NONAME` when the address has no name, rather than
    /// returning it in numeric form.
    public static let nameRequired = NameInfoFlags(rawValue: 0x08)
    /// `NI_DGRAM`: the service is a datagram (UDP) service; a few ports name different TCP
    /// and UDP services (512 is `exec` over TCP and `biff` over UDP).
    public static let datagram = NameInfoFlags(rawValue: 0x10)
    /// `NI_IDN` (GNU): convert the host name from its ASCII (IDNA) form.
    public static let idn = NameInfoFlags(rawValue: 0x20)

    public var description: String {
        let names: [(NameInfoFlags, String)] = [
            (.numericHost, "NI_NUMERICHOST"), (.numericService, "NI_NUMERICSERV"),
            (.noFullyQualifiedName, "NI_NOFQDN"), (.nameRequired, "NI_NAMEREQD"),
            (.datagram, "NI_DGRAM"), (.idn, "NI_IDN"),
        ]
        var rest = self
        var parts: [String] = []
        for (flag, name) in names where rest.contains(flag) {
            parts.append(name)
            rest.remove(flag)
        }
        if !rest.isEmpty { parts.append("0x" + String(rest.rawValue, radix: 16)) }
        return parts.isEmpty ? "[]" : parts.joined(separator: "|")
    }
}

/// Reverse lookups: the host and service names of a socket address.
public enum NameInfo {
    /// The host and service for a socket address.
    ///
    /// The corresponding C function is `getnameinfo(3)`. Without flags the host is the
    /// address's name from `/etc/hosts` or DNS (or the numeric address when it has none) and
    /// the service is its name in `/etc/services` (or the port number). For a Unix address the
    /// host is this machine's name and the service the path. It blocks while it asks DNS; run
    /// it on another thread or task when the caller must not wait.
    ///
    /// ```swift
    /// let (host, service) = try NameInfo.lookup(.ipv4(.loopback, port: 80))  // ("localhost", "http")
    /// ```
    ///
    /// - Throws: ``SocketError`` with ``SocketError/Reason/addressInfo(code:systemError:)``,
    ///   naming the address: `EAI_NONAME` for ``NameInfoFlags/nameRequired`` and an address
    ///   without a name, `EAI_FAMILY` for a family it cannot handle, `EAI_BADFLAGS`, `EAI_AGAIN`.
    public static func lookup(_ address: SocketAddress, flags: NameInfoFlags = []) throws(SocketError) -> (host: String, service: String) {
        try lookup(address, flags: flags, subject: address.description)
    }

    /// ``lookup(_:flags:)`` with `subject` naming the address in errors.
    static func lookup(_ address: SocketAddress, flags: NameInfoFlags, subject: String) throws(SocketError) -> (host: String, service: String) {
        do {
            return try address.withUnsafeSockaddr { (pointer, length) throws(AddressInfoFailure) in
                try Syscall.getnameinfo(pointer, length, flags: flags.rawValue)
            }
        } catch {
            throw SocketError("getnameinfo", address: subject, reason: .addressInfo(code: error.code, systemError: error.systemError))
        }
    }
}
