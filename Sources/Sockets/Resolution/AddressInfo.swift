import Glibc
import SocketSyscalls

/// Flags for ``AddressInfo/lookup(host:service:family:type:protocol:flags:)``: the `AI_*`
/// constants of `getaddrinfo(3)` (`ai_flags`).
public struct AddressInfoFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `AI_PASSIVE`: with no host, return the wildcard addresses (`0.0.0.0`, `::`) to bind to,
    /// rather than the loopback addresses to connect to.
    public static let passive = AddressInfoFlags(rawValue: 0x0001)
    /// `AI_CANONNAME`: also return the host's canonical name (needs a host).
    public static let canonicalName = AddressInfoFlags(rawValue: 0x0002)
    /// `AI_NUMERICHOST`: the host must be a numeric address; never look a name up.
    public static let numericHost = AddressInfoFlags(rawValue: 0x0004)
    /// `AI_V4MAPPED`: when asking for IPv6 and the host has only IPv4 addresses, return them
    /// as IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`).
    public static let v4Mapped = AddressInfoFlags(rawValue: 0x0008)
    /// `AI_ALL`: with ``v4Mapped``, return IPv6 and IPv4-mapped addresses together.
    public static let all = AddressInfoFlags(rawValue: 0x0010)
    /// `AI_ADDRCONFIG`: return IPv4 addresses only if the system has a non-loopback IPv4
    /// address, and IPv6 only if it has a non-loopback IPv6 address.
    public static let addressConfig = AddressInfoFlags(rawValue: 0x0020)
    /// `AI_IDN` (GNU): convert an internationalized host name to its ASCII (IDNA) form first.
    public static let idn = AddressInfoFlags(rawValue: 0x0040)
    /// `AI_CANONIDN` (GNU): with ``canonicalName``, convert the canonical name back from IDNA.
    public static let canonicalIDN = AddressInfoFlags(rawValue: 0x0080)
    /// `AI_IDN_ALLOW_UNASSIGNED` (GNU, obsolete): accepted and ignored by glibc since 2.28.
    public static let idnAllowUnassigned = AddressInfoFlags(rawValue: 0x0100)
    /// `AI_IDN_USE_STD3_ASCII_RULES` (GNU, obsolete): accepted and ignored by glibc since 2.28.
    public static let idnUseSTD3ASCIIRules = AddressInfoFlags(rawValue: 0x0200)
    /// `AI_NUMERICSERV`: the service must be a port number; never look a name up.
    public static let numericService = AddressInfoFlags(rawValue: 0x0400)

    public var description: String {
        let names: [(AddressInfoFlags, String)] = [
            (.passive, "AI_PASSIVE"), (.canonicalName, "AI_CANONNAME"), (.numericHost, "AI_NUMERICHOST"),
            (.v4Mapped, "AI_V4MAPPED"), (.all, "AI_ALL"), (.addressConfig, "AI_ADDRCONFIG"),
            (.idn, "AI_IDN"), (.canonicalIDN, "AI_CANONIDN"),
            (.idnAllowUnassigned, "AI_IDN_ALLOW_UNASSIGNED"), (.idnUseSTD3ASCIIRules, "AI_IDN_USE_STD3_ASCII_RULES"),
            (.numericService, "AI_NUMERICSERV"),
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

/// One result of `getaddrinfo(3)`: an address and the socket to use with it.
///
/// Open a socket for an entry with `Socket(info.domain, info.type, info.protocol)` and pass
/// ``address`` to `connect` or `bind`. Try the entries in order: the resolver sorts them by
/// RFC 6724 preference.
public struct AddressInfo: Hashable, Sendable, CustomStringConvertible {
    /// The address family (`ai_family`): ``SocketDomain/inet`` or ``SocketDomain/inet6``.
    public var domain: SocketDomain
    /// The socket type (`ai_socktype`).
    public var type: SocketType
    /// The protocol (`ai_protocol`), such as ``SocketProtocol/tcp``.
    public var `protocol`: SocketProtocol
    /// The address and port (`ai_addr`).
    public var address: SocketAddress
    /// The host's canonical name, when ``AddressInfoFlags/canonicalName`` was asked for.
    ///
    /// C puts it in the first entry only (`ai_canonname`); here every entry of one lookup
    /// carries it.
    public var canonicalName: String?

    /// Creates an entry.
    public init(domain: SocketDomain, type: SocketType, protocol: SocketProtocol, address: SocketAddress, canonicalName: String? = nil) {
        self.domain = domain
        self.type = type
        self.protocol = `protocol`
        self.address = address
        self.canonicalName = canonicalName
    }

    public var description: String {
        var text = "\(domain) \(type) \(`protocol`) \(address)"
        if let canonicalName { text += " (\(canonicalName))" }
        return text
    }

    /// The longest host name accepted: `NI_MAXHOST` less its terminating NUL.
    public static let maximumHostLength = 1024
    /// The longest service name accepted.
    public static let maximumServiceLength = 1024

    /// Resolves a host and service to socket addresses.
    ///
    /// The corresponding C function is `getaddrinfo(3)`. It blocks while it reads
    /// `/etc/hosts` or asks DNS; every value here is `Sendable`, so run it on another thread or
    /// task when the caller must not wait.
    ///
    /// ```swift
    /// for entry in try AddressInfo.lookup(host: "localhost", service: "http", type: .stream) {
    ///     print(entry.address)   // 127.0.0.1:80
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - host: a name or a numeric IPv4/IPv6 address (an IPv6 zone such as `fe80::1%eth0`
    ///     is allowed); `nil` for the loopback addresses, or with ``AddressInfoFlags/passive``
    ///     the wildcard addresses.
    ///   - service: a service name from `/etc/services` (`"http"`) or a port number (`"8080"`);
    ///     `nil` for port 0.
    ///   - family: restrict to ``SocketDomain/inet`` or ``SocketDomain/inet6``; any other
    ///     family fails with `EAI_FAMILY`.
    ///   - type: restrict to one socket type (`nil`: every type the service has).
    ///   - protocol: restrict to one protocol (`nil`: any).
    ///   - flags: `AI_*` flags.
    /// - Returns: at least one entry, in the order to try them.
    /// - Throws: ``SocketError`` with ``SocketError/Reason/addressInfo(code:systemError:)``,
    ///   naming the host: `getaddrinfo(nosuch.invalid): Name or service not known (EAI_NONAME)`;
    ///   or ``SocketError/Reason/invalidArgument(_:)`` before any lookup for an empty host or
    ///   service, one with a NUL byte, or one longer than 1024 bytes.
    public static func lookup(
        host: String?,
        service: String?,
        family: SocketDomain = .unspecified,
        type: SocketType? = nil,
        protocol: SocketProtocol? = nil,
        flags: AddressInfoFlags = []
    ) throws(SocketError) -> [AddressInfo] {
        let subject = describe(host: host, service: service)
        if let host {
            try validateLookupText(host, kind: "host", operation: "getaddrinfo", subject: subject, maximumLength: maximumHostLength)
        }
        if let service {
            try validateLookupText(service, kind: "service", operation: "getaddrinfo", subject: subject, maximumLength: maximumServiceLength)
        }
        var hints = addrinfo()
        hints.ai_flags = flags.rawValue
        hints.ai_family = family.rawValue
        hints.ai_socktype = type?.rawValue ?? 0
        hints.ai_protocol = `protocol`?.rawValue ?? 0

        let list: UnsafeMutablePointer<addrinfo>?
        do {
            list = try Syscall.getaddrinfo(host: host, service: service, hints: hints)
        } catch {
            throw SocketError("getaddrinfo", address: subject, reason: .addressInfo(code: error.code, systemError: error.systemError))
        }
        defer { Syscall.freeaddrinfo(list) }

        var entries: [AddressInfo] = []
        var canonicalName: String? = nil
        var cursor = list
        while let entry = cursor?.pointee {
            cursor = entry.ai_next
            if canonicalName == nil, let name = entry.ai_canonname { canonicalName = String(cString: name) }
            guard let address = entry.ai_addr else { continue }
            entries.append(AddressInfo(
                domain: SocketDomain(rawValue: entry.ai_family),
                type: SocketType(rawValue: entry.ai_socktype),
                protocol: SocketProtocol(rawValue: entry.ai_protocol),
                address: SocketAddress(sockaddr: address, length: entry.ai_addrlen)))
        }
        if let canonicalName {
            for index in entries.indices { entries[index].canonicalName = canonicalName }
        }
        return entries
    }

    /// Resolves a host and a port number to socket addresses: ``lookup(host:service:family:type:protocol:flags:)``
    /// with the port as a numeric service (`AI_NUMERICSERV`).
    ///
    /// The corresponding C function is `getaddrinfo(3)`.
    public static func lookup(
        host: String?,
        port: UInt16,
        family: SocketDomain = .unspecified,
        type: SocketType? = nil,
        protocol: SocketProtocol? = nil,
        flags: AddressInfoFlags = []
    ) throws(SocketError) -> [AddressInfo] {
        try lookup(host: host, service: String(port), family: family, type: type, protocol: `protocol`, flags: flags.union(.numericService))
    }

    /// How a lookup is named in errors: `example.com`, `example.com:http`, `[::1]:80`, `*:80`.
    static func describe(host: String?, service: String?) -> String {
        let hostText = host.map { $0.contains(":") ? "[\($0)]" : $0 }
        switch (hostText, service) {
        case (let host?, let service?): return "\(host):\(service)"
        case (let host?, nil): return host
        case (nil, let service?): return "*:\(service)"
        case (nil, nil): return "*"
        }
    }
}

/// Rejects text that a C lookup function would misread: empty, too long, or holding a NUL byte
/// (C would see only the part before it).
func validateLookupText(_ text: String, kind: String, operation: String, subject: String, maximumLength: Int) throws(SocketError) {
    let length = text.utf8.count
    if length == 0 {
        throw SocketError.invalid(operation, subject, "empty \(kind) name (pass nil instead)")
    }
    if length > maximumLength {
        throw SocketError.invalid(operation, String(subject.prefix(64)) + "...", "\(kind) name is \(length) bytes; the limit is \(maximumLength)")
    }
    if text.utf8.contains(0) {
        throw SocketError.invalid(operation, subject.replacingNULs(), "\(kind) name contains a NUL byte")
    }
}

extension String {
    /// The text with NUL bytes shown as `\0`, for error messages.
    func replacingNULs() -> String {
        var result = ""
        for scalar in unicodeScalars {
            if scalar == "\0" { result += "\\0" } else { result.unicodeScalars.append(scalar) }
        }
        return result
    }
}

/// An `EAI_*` error code of `getaddrinfo(3)`/`getnameinfo(3)`, with glibc's values.
///
/// Compare a failed lookup's code with these: `error.addressInfoError == .noName`.
public struct AddressInfoError: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The C value (negative on glibc).
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `EAI_BADFLAGS`: the flags are invalid or contradict each other (such as
    /// `AI_CANONNAME` without a host).
    public static let badFlags = AddressInfoError(rawValue: -1)
    /// `EAI_NONAME`: the name or service is not known (also: neither host nor service given,
    /// or `AI_NUMERICHOST` with a host that is not numeric).
    public static let noName = AddressInfoError(rawValue: -2)
    /// `EAI_AGAIN`: a temporary failure, such as a DNS server that did not answer.
    public static let again = AddressInfoError(rawValue: -3)
    /// `EAI_FAIL`: a permanent failure in name resolution.
    public static let fail = AddressInfoError(rawValue: -4)
    /// `EAI_NODATA` (GNU): the host exists but has no address (of the requested family).
    public static let noData = AddressInfoError(rawValue: -5)
    /// `EAI_FAMILY`: the address family is not supported.
    public static let family = AddressInfoError(rawValue: -6)
    /// `EAI_SOCKTYPE`: the socket type is not supported.
    public static let socketType = AddressInfoError(rawValue: -7)
    /// `EAI_SERVICE`: the service is not available for the socket type.
    public static let service = AddressInfoError(rawValue: -8)
    /// `EAI_ADDRFAMILY` (GNU): the host has no address in the requested family (for example
    /// a numeric IPv4 host when IPv6 was asked for).
    public static let addressFamily = AddressInfoError(rawValue: -9)
    /// `EAI_MEMORY`: out of memory.
    public static let memory = AddressInfoError(rawValue: -10)
    /// `EAI_SYSTEM`: a system error; see ``SocketError/errno``.
    public static let system = AddressInfoError(rawValue: -11)
    /// `EAI_OVERFLOW`: a result did not fit its buffer.
    public static let overflow = AddressInfoError(rawValue: -12)
    /// `EAI_IDN_ENCODE` (GNU): the name could not be converted to IDNA form.
    public static let idnEncode = AddressInfoError(rawValue: -105)

    /// The symbolic name, such as `EAI_NONAME`.
    public var name: String { AddressInfoFailure.name(of: rawValue) }

    /// `gai_strerror(3)`'s text, such as `Name or service not known`.
    public var text: String { AddressInfoFailure(code: rawValue, systemError: nil).text }

    public var description: String { name }
}

extension SocketError {
    /// The `EAI_*` code of a failed `getaddrinfo`/`getnameinfo`, else `nil`.
    public var addressInfoError: AddressInfoError? {
        addressInfoCode.map(AddressInfoError.init(rawValue:))
    }

    /// Whether a name lookup failed because the name (or its address in the asked-for family)
    /// does not exist: `EAI_NONAME`, `EAI_NODATA` or `EAI_ADDRFAMILY`. Retrying will not help.
    public var isHostNotFound: Bool {
        guard let code = addressInfoError else { return false }
        return code == .noName || code == .noData || code == .addressFamily
    }

    /// Whether a name lookup failed for a reason that may pass (`EAI_AGAIN`: the DNS server
    /// did not answer in time, or answered SERVFAIL).
    public var isTemporaryLookupFailure: Bool {
        addressInfoError == .again
    }
}
