// Stand-ins for library APIs that other branches are building (name resolution, readiness
// with poll, typed socket options, interfaces). They use only the `Syscall` layer's
// wrappers, never Glibc functions directly, and are replaced by the library's own API as it
// lands.
import Glibc
import CSocketShims
import Sockets
import SocketSyscalls
import SystemPackage

// MARK: - Name resolution (getaddrinfo / getnameinfo)

/// One result of `getaddrinfo`.
struct ResolvedAddress: Sendable {
    var address: SocketAddress
    var type: SocketType
    var `protocol`: SocketProtocol
    var canonicalName: String?
}

enum Resolver {
    /// `getaddrinfo(3)`.
    static func lookup(
        host: String?, service: String?, family: SocketDomain?, type: SocketType?,
        passive: Bool = false, canonicalName: Bool = false, numericHost: Bool = false
    ) throws(SocketError) -> [ResolvedAddress] {
        var hints = addrinfo()
        hints.ai_family = family?.rawValue ?? AF_UNSPEC
        hints.ai_socktype = type?.rawValue ?? 0
        hints.ai_flags = (passive ? AI_PASSIVE : 0) | (canonicalName ? AI_CANONNAME : 0) | (numericHost ? AI_NUMERICHOST : 0)
        let list: UnsafeMutablePointer<addrinfo>?
        do {
            list = try Syscall.getaddrinfo(host: host, service: service, hints: hints)
        } catch {
            let name = [host, service].compactMap { $0 }.joined(separator: ", ")
            throw SocketError("getaddrinfo", address: name, reason: .addressInfo(code: error.code, systemError: error.systemError))
        }
        defer { Syscall.freeaddrinfo(list) }
        var results: [ResolvedAddress] = []
        var entry = list
        while let current = entry {
            let info = current.pointee
            if let address = info.ai_addr {
                results.append(ResolvedAddress(
                    address: SocketAddress(sockaddr: address, length: info.ai_addrlen),
                    type: SocketType(rawValue: info.ai_socktype),
                    protocol: SocketProtocol(rawValue: info.ai_protocol),
                    canonicalName: info.ai_canonname.map { String(cString: $0) }))
            }
            entry = info.ai_next
        }
        return results
    }

    /// `getnameinfo(3)`: the host name (and service name) of an address.
    static func reverse(_ address: SocketAddress, nameRequired: Bool, datagram: Bool = false) throws(SocketError) -> (host: String, service: String) {
        let flags = (nameRequired ? NI_NAMEREQD : 0) | (datagram ? NI_DGRAM : 0)
        do {
            return try address.withUnsafeSockaddr { (pointer, length) throws(AddressInfoFailure) in
                try Syscall.getnameinfo(pointer, length, flags: flags)
            }
        } catch {
            throw SocketError("getnameinfo", address: address.description, reason: .addressInfo(code: error.code, systemError: error.systemError))
        }
    }
}

// MARK: - Readiness (poll)

enum Readiness {
    /// Waits up to `timeout` (forever when `nil`) for events on a descriptor with `poll(2)`;
    /// `true` when an event (or an error or hang-up) was reported.
    static func wait(descriptor: CInt, for events: PollEvents, timeout: Duration?) throws(SocketError) -> Bool {
        var entries = [PollEntry(descriptor: descriptor, events: events)]
        return try poll(&entries, timeout: timeout) > 0
    }

    /// Waits for events on a socket, holding its descriptor open meanwhile.
    static func wait(_ socket: Socket, for events: PollEvents, timeout: Duration?) throws(SocketError) -> Bool {
        guard let ready = try? socket.withDescriptor({ fd in try wait(descriptor: fd, for: events, timeout: timeout) }) else {
            throw SocketError("poll", reason: .closed)
        }
        return ready
    }

    /// `poll(2)` on several descriptors; fills in each entry's `returned` events. `EINTR` is
    /// retried with the time left.
    static func poll(_ entries: inout [PollEntry], timeout: Duration?) throws(SocketError) -> Int {
        let deadline = timeout.map { ContinuousClock.now.advanced(by: $0) }
        var raw = entries.map { pollfd(fd: $0.descriptor, events: $0.events.rawValue, revents: 0) }
        while true {
            var milliseconds: CInt = -1
            if let deadline {
                let left = ContinuousClock.now.duration(to: deadline)
                milliseconds = left <= .zero ? 0 : CInt(clamping: Int64((left.seconds * 1000).rounded(.up)))
            }
            do {
                let count = try raw.withUnsafeMutableBufferPointer { (buffer) throws(Errno) -> Int in
                    try Syscall.poll(buffer.baseAddress, buffer.count, timeoutMilliseconds: milliseconds)
                }
                for index in entries.indices { entries[index].returned = PollEvents(rawValue: raw[index].revents) }
                return count
            } catch where error == .interrupted {
                continue
            } catch {
                throw SocketError("poll", errno: error)
            }
        }
    }
}

/// One descriptor for ``Readiness/poll(_:timeout:)``.
struct PollEntry {
    var descriptor: CInt
    var events: PollEvents
    var returned: PollEvents = []
}

// MARK: - Socket options

enum Options {
    static func setInt(_ socket: Socket, level: CInt, name: CInt, _ value: CInt, _ label: String) throws(SocketError) {
        var value = value
        do {
            try socket.withDescriptor { fd in
                try Syscall.setsockopt(fd, level: level, name: name, &value, socklen_t(MemoryLayout<CInt>.size))
            }
        } catch let error as Errno {
            throw SocketError("setsockopt(\(label))", errno: error)
        } catch let error as SocketError {
            throw error
        } catch {
            throw SocketError("setsockopt(\(label))", reason: .closed)
        }
    }

    static func getInt(_ socket: Socket, level: CInt, name: CInt, _ label: String) throws(SocketError) -> CInt {
        var value: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        do {
            try socket.withDescriptor { fd in
                try Syscall.getsockopt(fd, level: level, name: name, &value, &length)
            }
        } catch let error as Errno {
            throw SocketError("getsockopt(\(label))", errno: error)
        } catch let error as SocketError {
            throw error
        } catch {
            throw SocketError("getsockopt(\(label))", reason: .closed)
        }
        return value
    }

    /// `SO_REUSEADDR`.
    static func setReuseAddress(_ socket: Socket, _ on: Bool) throws(SocketError) {
        try setInt(socket, level: SOL_SOCKET, name: SO_REUSEADDR, on ? 1 : 0, "SO_REUSEADDR")
    }

    static func reuseAddress(_ socket: Socket) throws(SocketError) -> Bool {
        try getInt(socket, level: SOL_SOCKET, name: SO_REUSEADDR, "SO_REUSEADDR") != 0
    }

    /// `TCP_NODELAY`.
    static func setNoDelay(_ socket: Socket, _ on: Bool) throws(SocketError) {
        try setInt(socket, level: CInt(IPPROTO_TCP), name: TCP_NODELAY, on ? 1 : 0, "TCP_NODELAY")
    }

    static func noDelay(_ socket: Socket) throws(SocketError) -> Bool {
        try getInt(socket, level: CInt(IPPROTO_TCP), name: TCP_NODELAY, "TCP_NODELAY") != 0
    }

    /// `SO_RCVBUF` (Linux doubles the value set, for its bookkeeping).
    static func setReceiveBufferSize(_ socket: Socket, _ size: Int) throws(SocketError) {
        try setInt(socket, level: SOL_SOCKET, name: SO_RCVBUF, CInt(clamping: size), "SO_RCVBUF")
    }

    static func receiveBufferSize(_ socket: Socket) throws(SocketError) -> Int {
        Int(try getInt(socket, level: SOL_SOCKET, name: SO_RCVBUF, "SO_RCVBUF"))
    }

    /// `SO_KEEPALIVE`.
    static func setKeepAlive(_ socket: Socket, _ on: Bool) throws(SocketError) {
        try setInt(socket, level: SOL_SOCKET, name: SO_KEEPALIVE, on ? 1 : 0, "SO_KEEPALIVE")
    }

    static func keepAlive(_ socket: Socket) throws(SocketError) -> Bool {
        try getInt(socket, level: SOL_SOCKET, name: SO_KEEPALIVE, "SO_KEEPALIVE") != 0
    }

    /// `SO_TYPE`.
    static func type(_ socket: Socket) throws(SocketError) -> SocketType {
        SocketType(rawValue: try getInt(socket, level: SOL_SOCKET, name: SO_TYPE, "SO_TYPE"))
    }

    /// `IPV6_RECVHOPLIMIT`: deliver each packet's hop limit as a control message.
    static func setReceiveHopLimit(_ socket: Socket, _ on: Bool) throws(SocketError) {
        try setInt(socket, level: CInt(IPPROTO_IPV6), name: IPV6_RECVHOPLIMIT, on ? 1 : 0, "IPV6_RECVHOPLIMIT")
    }

    /// `SO_RCVTIMEO`: a blocking receive fails with `EAGAIN` after this long.
    static func setReceiveTimeout(_ socket: Socket, _ timeout: Duration) throws(SocketError) {
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        do {
            try socket.withDescriptor { fd in
                try Syscall.setsockopt(fd, level: SOL_SOCKET, name: SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
            }
        } catch let error as Errno {
            throw SocketError("setsockopt(SO_RCVTIMEO)", errno: error)
        } catch {
            throw SocketError("setsockopt(SO_RCVTIMEO)", reason: .closed)
        }
    }

    /// The hop limit carried by an `IPV6_HOPLIMIT` control message in raw control bytes.
    static func hopLimit(inControl control: [UInt8]) -> Int? {
        // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then the data,
        // each record padded to 8 bytes.
        var offset = 0
        let header = MemoryLayout<Int>.size + 8
        while offset + header <= control.count {
            let length = control.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: offset, as: UInt.self)) }
            let level = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + MemoryLayout<Int>.size, as: CInt.self) }
            let type = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + MemoryLayout<Int>.size + 4, as: CInt.self) }
            guard length >= header, offset + length <= control.count else { return nil }
            if level == CInt(IPPROTO_IPV6), type == IPV6_HOPLIMIT, length >= header + 4 {
                return Int(control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + header, as: CInt.self) })
            }
            offset += (length + 7) & ~7
        }
        return nil
    }
}

// MARK: - Interfaces (getifaddrs)

/// One entry of `getifaddrs`: an interface with one of its addresses.
struct InterfaceAddressEntry: Sendable {
    var name: String
    var flags: UInt32
    var address: SocketAddress?
    var netmask: SocketAddress?
    var broadcastOrDestination: SocketAddress?
}

enum Interfaces {
    /// `getifaddrs(3)`.
    static func entries() throws(SocketError) -> [InterfaceAddressEntry] {
        let list: UnsafeMutablePointer<ifaddrs>?
        do {
            list = try Syscall.getifaddrs()
        } catch {
            throw SocketError("getifaddrs", errno: error)
        }
        defer { Syscall.freeifaddrs(list) }
        var results: [InterfaceAddressEntry] = []
        var entry = list
        while let current = entry {
            let item = current.pointee
            func decode(_ pointer: UnsafeMutablePointer<sockaddr>?) -> SocketAddress? {
                guard let pointer else { return nil }
                let family = Int32(pointer.pointee.sa_family)
                let length: Int
                switch family {
                case AF_INET: length = MemoryLayout<sockaddr_in>.size
                case AF_INET6: length = MemoryLayout<sockaddr_in6>.size
                case AF_PACKET: length = MemoryLayout<sockaddr_ll>.size
                default: length = MemoryLayout<sockaddr>.size
                }
                return SocketAddress(sockaddr: pointer, length: socklen_t(length))
            }
            results.append(InterfaceAddressEntry(
                name: item.ifa_name.map { String(cString: $0) } ?? "?",
                flags: item.ifa_flags,
                address: decode(item.ifa_addr),
                netmask: decode(item.ifa_netmask),
                broadcastOrDestination: decode(item.ifa_ifu.ifu_broadaddr)))
            entry = item.ifa_next
        }
        return results
    }

    /// `if_nametoindex(3)`.
    static func index(of name: String) -> UInt32? { Syscall.interfaceIndex(name: name) }

    /// The names of the `IFF_*` flags that are set.
    static func flagNames(_ flags: UInt32) -> [String] {
        let names: [(UInt32, String)] = [
            (0x1, "UP"), (0x2, "BROADCAST"), (0x4, "DEBUG"), (0x8, "LOOPBACK"), (0x10, "POINTOPOINT"),
            (0x20, "NOTRAILERS"), (0x40, "RUNNING"), (0x80, "NOARP"), (0x100, "PROMISC"), (0x200, "ALLMULTI"),
            (0x400, "MASTER"), (0x800, "SLAVE"), (0x1000, "MULTICAST"), (0x2000, "PORTSEL"),
            (0x4000, "AUTOMEDIA"), (0x8000, "DYNAMIC"), (0x10000, "LOWER_UP"), (0x20000, "DORMANT"), (0x40000, "ECHO"),
        ]
        return names.filter { flags & $0.0 != 0 }.map(\.1)
    }

    /// The hardware address in a link-layer (`sockaddr_ll`) address, `52:54:00:12:34:56`.
    static func hardwareAddress(_ address: SocketAddress) -> String? {
        guard case .other(let raw) = address, raw.family == .packet, raw.bytes.count >= 12 else { return nil }
        // sockaddr_ll: family(2) protocol(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
        let length = Int(raw.bytes[11])
        guard length > 0, 12 + length <= raw.bytes.count else { return nil }
        return raw.bytes[12..<(12 + length)].map { hex($0) }.joined(separator: ":")
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }

    /// The prefix length of a netmask (the number of leading one bits).
    static func prefixLength(_ netmask: SocketAddress?) -> Int? {
        switch netmask {
        case .ipv4(let mask)?: return mask.address.value.leadingZeroBitCount == 0 ? (~mask.address.value).leadingZeroBitCount : 0
        case .ipv6(let mask)?:
            let high = (~mask.address.high).leadingZeroBitCount
            return high < 64 ? high : 64 + (~mask.address.low).leadingZeroBitCount
        default: return nil
        }
    }
}

// MARK: - select

extension Readiness {
    /// `select(2)` for readability: the descriptors of `fds` that are readable within `timeout`.
    static func selectReadable(_ fds: [CInt], timeout: Duration) throws(SocketError) -> [CInt] {
        guard let highest = fds.max(), highest < cshim_fd_setsize(), fds.allSatisfy({ $0 >= 0 }) else {
            throw SocketError.invalid("select", nil, "descriptors must be in 0..<FD_SETSIZE (\(cshim_fd_setsize()))")
        }
        var set = fd_set()
        cshim_fd_zero(&set)
        for fd in fds { cshim_fd_set(fd, &set) }
        let (seconds, attoseconds) = timeout.components
        var limit = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        do {
            _ = try Syscall.select(highest + 1, &set, nil, nil, &limit)
        } catch {
            throw SocketError("select", errno: error)
        }
        return fds.filter { cshim_fd_isset($0, &set) == 1 }
    }
}
