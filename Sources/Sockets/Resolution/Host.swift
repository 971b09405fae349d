import Glibc
import SocketSyscalls

/// What `gethostbyname_ex`/`gethostbyaddr` return: a host's name, its other names, and its
/// addresses.
public struct HostEntry: Hashable, Sendable, CustomStringConvertible {
    /// The canonical (official) name, or for a reverse lookup the address's name.
    public var name: String
    /// Other names: the name asked for, when the canonical name differs (a DNS alias or CNAME).
    ///
    /// Unlike the legacy C calls, the thread-safe lookups do not report the extra names of an
    /// `/etc/hosts` line; this holds only what `getaddrinfo` reveals.
    public var aliases: [String]
    /// The addresses, IPv4 and IPv6, in the resolver's order of preference, without repeats.
    public var addresses: [IPAddress]

    /// Creates an entry.
    public init(name: String, aliases: [String], addresses: [IPAddress]) {
        self.name = name
        self.aliases = aliases
        self.addresses = addresses
    }

    public var description: String {
        let aliasText = aliases.isEmpty ? "" : " (aliases: \(aliases.joined(separator: ", ")))"
        return "\(name)\(aliasText): \(addresses.map(\.description).joined(separator: ", "))"
    }
}

// Thread-safe equivalents of `gethostbyname`, `gethostbyname_ex` and `gethostbyaddr`.
//
// They are built on `getaddrinfo(3)` and `getnameinfo(3)`, never on the legacy calls, which
// share static buffers between threads and (`gethostbyname`) know only IPv4. They can run on
// any thread; each blocks while it reads `/etc/hosts` or asks DNS. (Not named `Host`, which
// Foundation also defines.)
extension HostEntry {
    /// The addresses and canonical name of a host: `gethostbyname_ex` for IPv4 and IPv6.
    ///
    /// The corresponding C function is `getaddrinfo(3)` with `AI_CANONNAME`.
    ///
    /// ```swift
    /// let entry = try HostEntry.byName("localhost")   // localhost: 127.0.0.1
    /// ```
    ///
    /// - Parameters:
    ///   - name: a host name, or a numeric address (returned as is).
    ///   - family: ``SocketDomain/unspecified`` for both IPv4 and IPv6,
    ///     ``SocketDomain/inet`` for IPv4 only (what `gethostbyname` gives), or
    ///     ``SocketDomain/inet6`` for IPv6 only.
    /// - Throws: ``SocketError``: `EAI_NONAME` for an unknown host, `EAI_NODATA` for a host
    ///   without an address of the family, `EAI_AGAIN` when DNS did not answer, `EAI_FAMILY`
    ///   for another family; ``SocketError/Reason/invalidArgument(_:)`` for an empty name, one
    ///   with a NUL byte, or one longer than 1024 bytes.
    public static func byName(_ name: String, family: SocketDomain = .unspecified) throws(SocketError) -> HostEntry {
        // One socket type, so each address comes back once rather than once per type.
        let entries = try AddressInfo.lookup(host: name, service: nil, family: family, type: .stream, flags: .canonicalName)
        var addresses: [IPAddress] = []
        for entry in entries {
            if let address = entry.address.ipAddress, !addresses.contains(address) { addresses.append(address) }
        }
        let canonical = entries.first?.canonicalName ?? name
        let aliases = canonical == name ? [] : [name]
        return HostEntry(name: canonical, aliases: aliases, addresses: addresses)
    }

    /// The name of an address: `gethostbyaddr` for IPv4 and IPv6.
    ///
    /// The corresponding C function is `getnameinfo(3)` with `NI_NAMEREQD`.
    ///
    /// ```swift
    /// let entry = try HostEntry.byAddress(.v4(.loopback))   // localhost: 127.0.0.1
    /// ```
    ///
    /// - Returns: the name, and the address itself as the only address.
    /// - Throws: ``SocketError`` with `EAI_NONAME` when the address has no name,
    ///   `EAI_AGAIN` when DNS did not answer.
    public static func byAddress(_ address: IPAddress) throws(SocketError) -> HostEntry {
        let socketAddress: SocketAddress
        switch address {
        case .v4(let v4): socketAddress = .ipv4(v4, port: 0)
        case .v6(let v6): socketAddress = .ipv6(v6, port: 0)
        }
        let (name, _) = try NameInfo.lookup(socketAddress, flags: [.nameRequired, .numericService], subject: address.description)
        return HostEntry(name: name, aliases: [], addresses: [address])
    }

    /// The longest host name Linux accepts (`HOST_NAME_MAX`): see ``setHostName(_:)``.
    public static let maximumHostNameLength = 64
}

/// This machine's host name (in the calling thread's UTS namespace).
///
/// The corresponding C function is `gethostname(2)`.
public func hostName() throws(SocketError) -> String {
    do {
        return try Syscall.gethostname()
    } catch {
        throw SocketError("gethostname", errno: error)
    }
}

/// Sets this machine's host name (in the calling thread's UTS namespace). Needs
/// `CAP_SYS_ADMIN`.
///
/// The corresponding C function is `sethostname(2)`.
/// - Throws: ``SocketError/Reason/invalidArgument(_:)`` for a name over 64 bytes
///   (``HostEntry/maximumHostNameLength``) or with a NUL byte, before the call; `EPERM`
///   without the capability.
public func setHostName(_ name: String) throws(SocketError) {
    let length = name.utf8.count
    guard length <= HostEntry.maximumHostNameLength else {
        throw SocketError.invalid("sethostname", String(name.prefix(64)) + "...", "host name is \(length) bytes; the limit is \(HostEntry.maximumHostNameLength)")
    }
    guard !name.utf8.contains(0) else {
        throw SocketError.invalid("sethostname", name.replacingNULs(), "host name contains a NUL byte")
    }
    do {
        try Syscall.sethostname(name)
    } catch {
        throw SocketError("sethostname", address: name, errno: error)
    }
}
