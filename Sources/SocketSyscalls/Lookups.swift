import Glibc
public import CSocketShims
public import SystemPackage

/// A failure of `getaddrinfo(3)` or `getnameinfo(3)`: an `EAI_*` code, and for `EAI_SYSTEM`
/// the errno behind it.
public struct AddressInfoFailure: Error, Sendable, Equatable {
    /// The `EAI_*` code (negative on glibc).
    public let code: CInt
    /// The errno that `EAI_SYSTEM` refers to.
    public let systemError: Errno?

    @inlinable
    public init(code: CInt, systemError: Errno?) {
        self.code = code
        self.systemError = systemError
    }

    /// `gai_strerror(3)`'s text for the code.
    public var text: String {
        if code == EAI_SYSTEM, let systemError { return systemError.description }
        guard let pointer = gai_strerror(code) else { return "unknown error \(code)" }
        return String(cString: pointer)
    }
}

extension Syscall {
    // MARK: Name resolution

    /// The corresponding C function is `getaddrinfo(3)`. The caller frees the list with
    /// ``freeaddrinfo(_:)``.
    public static func getaddrinfo(
        host: String?, service: String?, hints: addrinfo
    ) throws(AddressInfoFailure) -> UnsafeMutablePointer<addrinfo>? {
        var hints = hints
        var result: UnsafeMutablePointer<addrinfo>? = nil
        var code: CInt = 0
        repeat {
            code = Glibc.getaddrinfo(host, service, &hints, &result)
        } while code == EAI_SYSTEM && errno == EINTR
        if code != 0 {
            throw AddressInfoFailure(code: code, systemError: code == EAI_SYSTEM ? Errno(rawValue: errno) : nil)
        }
        return result
    }

    /// The corresponding C function is `freeaddrinfo(3)`.
    public static func freeaddrinfo(_ list: UnsafeMutablePointer<addrinfo>?) {
        if let list { Glibc.freeaddrinfo(list) }
    }

    /// The corresponding C function is `getnameinfo(3)`: the host and service for an address.
    public static func getnameinfo(
        _ address: UnsafePointer<sockaddr>, _ length: socklen_t, flags: CInt
    ) throws(AddressInfoFailure) -> (host: String, service: String) {
        // NI_MAXHOST is 1025, NI_MAXSERV 32.
        var host = [CChar](repeating: 0, count: 1025)
        var service = [CChar](repeating: 0, count: 32)
        var code: CInt = 0
        repeat {
            code = Glibc.getnameinfo(address, length, &host, socklen_t(host.count), &service, socklen_t(service.count), flags)
        } while code == EAI_SYSTEM && errno == EINTR
        if code != 0 {
            throw AddressInfoFailure(code: code, systemError: code == EAI_SYSTEM ? Errno(rawValue: errno) : nil)
        }
        return (decodeCString(host), decodeCString(service))
    }

    /// The corresponding C function is `gethostname(2)`.
    public static func gethostname() throws(Errno) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        _ = try retryingInterrupts { Glibc.gethostname(&buffer, buffer.count - 1) }
        return decodeCString(buffer)
    }

    /// The corresponding C function is `getservbyname_r(3)`: the port (host byte order) of a
    /// named service for a protocol (`"tcp"`, `"udp"`), or `nil` when unknown.
    public static func servicePort(name: String, protocol: String?) -> UInt16? {
        var entry = servent()
        var buffer = [CChar](repeating: 0, count: 4096)
        var result: UnsafeMutablePointer<servent>? = nil
        let code = getservbyname_r(name, `protocol`, &entry, &buffer, buffer.count, &result)
        guard code == 0, let result else { return nil }
        return UInt16(bigEndian: UInt16(truncatingIfNeeded: result.pointee.s_port))
    }

    /// The corresponding C function is `getservbyport_r(3)`: the name of the service on a port.
    public static func serviceName(port: UInt16, protocol: String?) -> String? {
        var entry = servent()
        var buffer = [CChar](repeating: 0, count: 4096)
        var result: UnsafeMutablePointer<servent>? = nil
        let code = getservbyport_r(CInt(port.bigEndian), `protocol`, &entry, &buffer, buffer.count, &result)
        guard code == 0, let result, let name = result.pointee.s_name else { return nil }
        return String(cString: name)
    }

    /// The corresponding C function is `getprotobyname_r(3)`.
    public static func protocolNumber(name: String) -> CInt? {
        var entry = protoent()
        var buffer = [CChar](repeating: 0, count: 4096)
        var result: UnsafeMutablePointer<protoent>? = nil
        let code = getprotobyname_r(name, &entry, &buffer, buffer.count, &result)
        guard code == 0, let result else { return nil }
        return result.pointee.p_proto
    }

    /// The corresponding C function is `getprotobynumber_r(3)`.
    public static func protocolName(number: CInt) -> String? {
        var entry = protoent()
        var buffer = [CChar](repeating: 0, count: 4096)
        var result: UnsafeMutablePointer<protoent>? = nil
        let code = getprotobynumber_r(number, &entry, &buffer, buffer.count, &result)
        guard code == 0, let result, let name = result.pointee.p_name else { return nil }
        return String(cString: name)
    }

    // MARK: Text forms of addresses

    /// The corresponding C function is `inet_pton(3)`. Returns `false` for text that is not an
    /// address of the family. `destination` must hold 4 bytes (AF_INET) or 16 (AF_INET6).
    public static func inetPton(family: CInt, _ text: String, _ destination: UnsafeMutableRawPointer) -> Bool {
        Glibc.inet_pton(family, text, destination) == 1
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

/// The text of a NUL-terminated C string held in an array.
@usableFromInline
func decodeCString(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { pointer in
        let bytes = UnsafeRawBufferPointer(pointer)
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}
