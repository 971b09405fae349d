import Glibc
public import CSocketShims
public import SystemPackage

/// A failure of `getaddrinfo(3)` or `getnameinfo(3)`: an `EAI_*` code, and for `EAI_SYSTEM`
/// the errno behind it.
public struct AddressInfoFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The `EAI_*` code (negative on glibc).
    public let code: CInt
    /// The errno that `EAI_SYSTEM` refers to.
    public let systemError: Errno?

    @inlinable
    public init(code: CInt, systemError: Errno?) {
        self.code = code
        self.systemError = systemError
    }

    /// `gai_strerror(3)`'s text for the code; for `EAI_SYSTEM`, the errno's text.
    public var text: String {
        if code == EAI_SYSTEM, let systemError { return systemError.description }
        // gai_strerror returns static (possibly translated) strings, so it is thread-safe.
        guard let pointer = gai_strerror(code) else { return "unknown error \(code)" }
        return String(cString: pointer)
    }

    /// The code's symbolic name, such as `EAI_NONAME`, or `EAI <number>` for an unknown code.
    /// The values are glibc's, including its GNU extensions (`EAI_NODATA`, `EAI_ADDRFAMILY`,
    /// `EAI_IDN_ENCODE`, ...).
    public var name: String { Self.name(of: code) }

    /// The symbolic name of an `EAI_*` code.
    public static func name(of code: CInt) -> String {
        switch code {
        case -1: return "EAI_BADFLAGS"
        case -2: return "EAI_NONAME"
        case -3: return "EAI_AGAIN"
        case -4: return "EAI_FAIL"
        case -5: return "EAI_NODATA"
        case -6: return "EAI_FAMILY"
        case -7: return "EAI_SOCKTYPE"
        case -8: return "EAI_SERVICE"
        case -9: return "EAI_ADDRFAMILY"
        case -10: return "EAI_MEMORY"
        case -11: return "EAI_SYSTEM"
        case -12: return "EAI_OVERFLOW"
        case -100: return "EAI_INPROGRESS"
        case -101: return "EAI_CANCELED"
        case -102: return "EAI_NOTCANCELED"
        case -103: return "EAI_ALLDONE"
        case -104: return "EAI_INTR"
        case -105: return "EAI_IDN_ENCODE"
        default: return "EAI \(code)"
        }
    }

    /// The text and the name: `Name or service not known (EAI_NONAME)`; for `EAI_SYSTEM`
    /// also the errno's name: `Too many open files (EAI_SYSTEM: EMFILE)`.
    public var description: String {
        if code == EAI_SYSTEM, let systemError {
            return "\(text) (EAI_SYSTEM: \(systemError.name ?? "errno \(systemError.rawValue)"))"
        }
        return "\(text) (\(name))"
    }
}

/// One entry of the services database (`struct servent`), copied out of the C buffer.
public struct ServiceRecord: Sendable, Equatable {
    /// The official name, such as `http`.
    public var name: String
    /// Other names for the service, such as `www`.
    public var aliases: [String]
    /// The port, in host byte order.
    public var port: UInt16
    /// The transport protocol's name, such as `tcp`.
    public var protocolName: String
}

/// One entry of the protocols database (`struct protoent`), copied out of the C buffer.
public struct ProtocolRecord: Sendable, Equatable {
    /// The official name, such as `tcp`.
    public var name: String
    /// Other names, such as `TCP`.
    public var aliases: [String]
    /// The protocol number (`IPPROTO_*`).
    public var number: CInt
}

extension Syscall {
    // MARK: Name resolution

    /// The corresponding C function is `getaddrinfo(3)`. The caller frees the list with
    /// ``freeaddrinfo(_:)``. `host` and `service` must not contain NUL bytes (the C call would
    /// see only the text before the first one); the `Sockets` layer checks this.
    public static func getaddrinfo(
        host: String?, service: String?, hints: addrinfo
    ) throws(AddressInfoFailure) -> UnsafeMutablePointer<addrinfo>? {
        var hints = hints
        var result: UnsafeMutablePointer<addrinfo>? = nil
        while true {
            let code = Glibc.getaddrinfo(host, service, &hints, &result)
            if code == 0 { return result }
            let systemError = code == EAI_SYSTEM ? Errno(rawValue: errno) : nil
            if systemError == .interrupted { continue }
            throw AddressInfoFailure(code: code, systemError: systemError)
        }
    }

    /// The corresponding C function is `freeaddrinfo(3)`.
    public static func freeaddrinfo(_ list: UnsafeMutablePointer<addrinfo>?) {
        if let list { Glibc.freeaddrinfo(list) }
    }

    /// The corresponding C function is `getnameinfo(3)`: the host and service for an address.
    public static func getnameinfo(
        _ address: UnsafePointer<sockaddr>, _ length: socklen_t, flags: CInt
    ) throws(AddressInfoFailure) -> (host: String, service: String) {
        // NI_MAXHOST is 1025, NI_MAXSERV 32; a Unix path needs up to 108 for the service.
        var host = [CChar](repeating: 0, count: 1025)
        var service = [CChar](repeating: 0, count: 128)
        while true {
            let code = Glibc.getnameinfo(address, length, &host, socklen_t(host.count), &service, socklen_t(service.count), flags)
            if code == 0 { return (decodeCString(host), decodeCString(service)) }
            let systemError = code == EAI_SYSTEM ? Errno(rawValue: errno) : nil
            if systemError == .interrupted { continue }
            throw AddressInfoFailure(code: code, systemError: systemError)
        }
    }

    /// The corresponding C function is `gethostname(2)`.
    public static func gethostname() throws(Errno) -> String {
        // HOST_NAME_MAX is 64 on Linux; the extra room keeps the result NUL-terminated.
        var buffer = [CChar](repeating: 0, count: 256)
        _ = try retryingInterrupts { Glibc.gethostname(&buffer, buffer.count - 1) }
        return decodeCString(buffer)
    }

    /// The corresponding C function is `sethostname(2)`. `name` must not contain NUL bytes.
    public static func sethostname(_ name: String) throws(Errno) {
        let length = name.utf8.count
        _ = try retryingInterrupts { Glibc.sethostname(name, length) }
    }

    /// The corresponding C function is `getservbyname_r(3)`: the entry for a named service and
    /// protocol (`"tcp"`, `"udp"`, or `nil` for any), or `nil` when there is none.
    /// Neither string may contain NUL bytes.
    public static func serviceEntry(name: String, protocol: String?) throws(Errno) -> ServiceRecord? {
        try withGrowingBuffer { (buffer: UnsafeMutablePointer<CChar>, size: Int) -> (CInt, ServiceRecord?) in
            var entry = servent()
            var result: UnsafeMutablePointer<servent>? = nil
            let code = getservbyname_r(name, `protocol`, &entry, buffer, size, &result)
            return (code, result.map { ServiceRecord($0.pointee) })
        }
    }

    /// The corresponding C function is `getservbyport_r(3)`: the entry for the service on a port
    /// (host byte order) and protocol, or `nil` when there is none.
    public static func serviceEntry(port: UInt16, protocol: String?) throws(Errno) -> ServiceRecord? {
        try withGrowingBuffer { (buffer: UnsafeMutablePointer<CChar>, size: Int) -> (CInt, ServiceRecord?) in
            var entry = servent()
            var result: UnsafeMutablePointer<servent>? = nil
            // The port goes in as an int holding the network-order 16 bits.
            let code = getservbyport_r(CInt(port.bigEndian), `protocol`, &entry, buffer, size, &result)
            return (code, result.map { ServiceRecord($0.pointee) })
        }
    }

    /// The corresponding C function is `getprotobyname_r(3)`; `nil` when there is no such
    /// protocol. `name` must not contain NUL bytes.
    public static func protocolEntry(name: String) throws(Errno) -> ProtocolRecord? {
        try withGrowingBuffer { (buffer: UnsafeMutablePointer<CChar>, size: Int) -> (CInt, ProtocolRecord?) in
            var entry = protoent()
            var result: UnsafeMutablePointer<protoent>? = nil
            let code = getprotobyname_r(name, &entry, buffer, size, &result)
            return (code, result.map { ProtocolRecord($0.pointee) })
        }
    }

    /// The corresponding C function is `getprotobynumber_r(3)`; `nil` when there is no such
    /// protocol.
    public static func protocolEntry(number: CInt) throws(Errno) -> ProtocolRecord? {
        try withGrowingBuffer { (buffer: UnsafeMutablePointer<CChar>, size: Int) -> (CInt, ProtocolRecord?) in
            var entry = protoent()
            var result: UnsafeMutablePointer<protoent>? = nil
            let code = getprotobynumber_r(number, &entry, buffer, size, &result)
            return (code, result.map { ProtocolRecord($0.pointee) })
        }
    }

    // MARK: Text forms of addresses

    /// The corresponding C function is `inet_pton(3)`. Returns `false` for text that is not an
    /// address of the family. `destination` must hold 4 bytes (AF_INET) or 16 (AF_INET6).
    public static func inetPton(family: CInt, _ text: String, _ destination: UnsafeMutableRawPointer) -> Bool {
        Glibc.inet_pton(family, text, destination) == 1
    }

    /// The corresponding C function is `inet_aton(3)`: the classic, lenient IPv4 forms
    /// (`127.1`, `0x7f.1`, `017700000001`). Returns the address in network byte order.
    public static func inetAton(_ text: String) -> UInt32? {
        var address = in_addr()
        guard Glibc.inet_aton(text, &address) != 0 else { return nil }
        return address.s_addr
    }

    /// The corresponding C function is `inet_ntop(3)`.
    public static func inetNtop(family: CInt, _ source: UnsafeRawPointer) -> String {
        // INET6_ADDRSTRLEN is 46.
        var buffer = [CChar](repeating: 0, count: 64)
        guard Glibc.inet_ntop(family, source, &buffer, socklen_t(buffer.count)) != nil else { return "" }
        return decodeCString(buffer)
    }

    // MARK: Interfaces

    /// The corresponding C function is `if_nametoindex(3)`; `nil` when there is no such interface.
    public static func interfaceIndex(name: String) -> UInt32? {
        let index = if_nametoindex(name)
        return index == 0 ? nil : index
    }

    /// The corresponding C function is `if_indextoname(3)`; `nil` when there is no such interface.
    public static func interfaceName(index: UInt32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(index, &buffer) != nil else { return nil }
        return decodeCString(buffer)
    }

    /// The corresponding C function is `getifaddrs(3)`; free the list with ``freeifaddrs(_:)``.
    public static func getifaddrs() throws(Errno) -> UnsafeMutablePointer<ifaddrs>? {
        var list: UnsafeMutablePointer<ifaddrs>? = nil
        _ = try retryingInterrupts { Glibc.getifaddrs(&list) }
        return list
    }

    /// The corresponding C function is `freeifaddrs(3)`.
    public static func freeifaddrs(_ list: UnsafeMutablePointer<ifaddrs>?) {
        if let list { Glibc.freeifaddrs(list) }
    }

    /// The corresponding C function is `if_nameindex(3)`: every interface's index and name.
    public static func interfaceNameIndex() throws(Errno) -> [(index: UInt32, name: String)] {
        guard let list = if_nameindex() else { throw Errno(rawValue: errno) }
        defer { if_freenameindex(list) }
        var result: [(index: UInt32, name: String)] = []
        var entry = list
        while entry.pointee.if_index != 0, let name = entry.pointee.if_name {
            result.append((entry.pointee.if_index, String(cString: name)))
            entry += 1
        }
        return result
    }
}

/// Runs a `get*_r` call with a scratch buffer, doubling it (up to 1 MiB) while the call says
/// `ERANGE`. `body` returns the call's result code (0 or an errno) and the copied entry.
func withGrowingBuffer<Entry>(
    _ body: (UnsafeMutablePointer<CChar>, Int) -> (CInt, Entry?)
) throws(Errno) -> Entry? {
    var size = 1024
    while true {
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
        let (code, entry) = body(buffer, size)
        buffer.deallocate()
        if code == 0 { return entry }
        if code == ERANGE, size < 1 << 20 {
            size *= 2
            continue
        }
        if code == EINTR { continue }
        // glibc reports "not found" as 0 with a null result, but ENOENT from some backends.
        if code == ENOENT { return nil }
        throw Errno(rawValue: code)
    }
}

/// The strings of a NULL-terminated C array of C strings (an alias list).
func decodeCStringList(_ list: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> [String] {
    guard var cursor = list else { return [] }
    var result: [String] = []
    while let item = cursor.pointee {
        result.append(String(cString: item))
        cursor += 1
    }
    return result
}

extension ServiceRecord {
    init(_ entry: servent) {
        name = entry.s_name.map { String(cString: $0) } ?? ""
        aliases = decodeCStringList(entry.s_aliases)
        port = UInt16(bigEndian: UInt16(truncatingIfNeeded: entry.s_port))
        protocolName = entry.s_proto.map { String(cString: $0) } ?? ""
    }
}

extension ProtocolRecord {
    init(_ entry: protoent) {
        name = entry.p_name.map { String(cString: $0) } ?? ""
        aliases = decodeCStringList(entry.p_aliases)
        number = entry.p_proto
    }
}

/// The text of a NUL-terminated C string held in an array.
@usableFromInline
func decodeCString(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { pointer in
        let bytes = UnsafeRawBufferPointer(pointer)
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}
