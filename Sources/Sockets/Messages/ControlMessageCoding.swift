import Glibc
import CSocketShims
import SocketSyscalls
import SystemPackage

// Encoding and decoding of control messages in the kernel's layout: each record is a
// `cmsghdr` (`cmsg_len`, `cmsg_level`, `cmsg_type`) followed by its payload at `CMSG_DATA`,
// and the next record starts `CMSG_SPACE(payload)` bytes later (aligned to `size_t`).
//
// The decoder reads only through bounds-checked loads: every `cmsg_len` is checked against
// the bytes left before anything after the header is read, so a truncated or crafted buffer
// gives a `SocketError`, never a read past its end.

/// Level and type numbers of the records this library knows.
///
/// The levels use the `SOL_*` macros, not the equal `IPPROTO_*` constants: naming glibc's
/// anonymous-enum `IPPROTO_IP` from a file that imports CSocketShims (which includes
/// <netinet/in.h> too) hides it from the module's files that import only Glibc.
enum ControlMessageCode {
    static let socketLevel = Int32(SOL_SOCKET)
    static let ipLevel = Int32(SOL_IP)
    static let ipv6Level = Int32(SOL_IPV6)
    static let udpLevel = Int32(SOL_UDP)
    static let tcpLevel = Int32(SOL_TCP)

    static let rights = Int32(SCM_RIGHTS)
    static let credentials = Int32(CSHIM_SCM_CREDENTIALS)
    // The 64-bit layouts of the old and new timestamp records are identical.
    static let timestampOld = Int32(SO_TIMESTAMP_OLD)
    static let timestampNew = Int32(SO_TIMESTAMP_NEW)
    static let timestampNanosecondsOld = Int32(SO_TIMESTAMPNS_OLD)
    static let timestampNanosecondsNew = Int32(SO_TIMESTAMPNS_NEW)
    static let timestampingOld = Int32(SO_TIMESTAMPING_OLD)
    static let timestampingNew = Int32(SO_TIMESTAMPING_NEW)

    static let ipPacketInfo = Int32(IP_PKTINFO)
    static let ipTTL = Int32(IP_TTL)
    static let ipTOS = Int32(IP_TOS)
    static let ipReceiveError = Int32(IP_RECVERR)
    static let ipOriginalDestination = Int32(IP_ORIGDSTADDR)

    static let ipv6PacketInfo = Int32(IPV6_PKTINFO)
    static let ipv6HopLimit = Int32(IPV6_HOPLIMIT)
    static let ipv6TrafficClass = Int32(IPV6_TCLASS)
    static let ipv6ReceiveError = Int32(IPV6_RECVERR)
    static let ipv6OriginalDestination = Int32(IPV6_ORIGDSTADDR)

    static let udpSegment = Int32(UDP_SEGMENT)
    static let udpGRO = Int32(UDP_GRO)

    /// `TCP_CM_INQ`, which has the number of the option that asks for it.
    static let tcpUnreadBytes = Int32(TCP_INQ)

    /// The most descriptors one `SCM_RIGHTS` record may carry (the kernel's `SCM_MAX_FD`).
    static let maximumDescriptors = 253
}

extension ControlMessage {
    /// `CMSG_LEN(0)`: the aligned size of a `cmsghdr`, where the payload starts.
    static let headerLength = Int(cshim_cmsg_len(0))
    private static let levelOffset = MemoryLayout<cmsghdr>.offset(of: \cmsghdr.cmsg_level) ?? 8
    private static let typeOffset = MemoryLayout<cmsghdr>.offset(of: \cmsghdr.cmsg_type) ?? 12

    /// `CMSG_SPACE(bytes)`: the room one record with a payload of `bytes` takes in a control
    /// buffer, alignment padding included.
    public static func space(forPayloadBytes bytes: Int) -> Int {
        Int(cshim_cmsg_space(max(0, bytes)))
    }

    /// The room an `SCM_RIGHTS` record carrying `count` descriptors takes.
    public static func space(forDescriptors count: Int) -> Int {
        space(forPayloadBytes: max(0, count) * MemoryLayout<CInt>.size)
    }

    /// The room this message takes when encoded (`CMSG_SPACE` of its payload).
    public var encodedSpace: Int { Self.space(forPayloadBytes: payloadLength) }

    /// The room a list of messages takes when encoded.
    public static func encodedSpace(of messages: [ControlMessage]) -> Int {
        messages.reduce(0) { $0 + $1.encodedSpace }
    }

    // MARK: Encoding

    /// Encodes messages into a caller's buffer in the kernel's layout, padding included.
    ///
    /// The buffer needs ``encodedSpace(of:)`` bytes; it need not be aligned.
    /// - Returns: the number of bytes written, the `msg_controllen` to pass to `sendmsg`.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` when the buffer is too small or a
    ///   message holds a value the kernel would reject (no descriptors or more than 253, a
    ///   negative descriptor, a TTL outside 1...255, ...).
    public static func encode(_ messages: [ControlMessage], into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        let needed = encodedSpace(of: messages)
        guard needed <= buffer.count else {
            throw SocketError.invalid("encode control messages", nil, "they need \(needed) bytes; the buffer holds \(buffer.count)")
        }
        var offset = 0
        for message in messages {
            try message.validate()
            let (level, type) = message.levelAndType
            let payload = message.payloadLength
            let space = space(forPayloadBytes: payload)
            let record = UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<(offset + space)])
            record.initializeMemory(as: UInt8.self, repeating: 0)
            record.storeBytes(of: UInt(headerLength + payload), toByteOffset: 0, as: UInt.self)
            record.storeBytes(of: level, toByteOffset: levelOffset, as: Int32.self)
            record.storeBytes(of: type, toByteOffset: typeOffset, as: Int32.self)
            message.writePayload(into: UnsafeMutableRawBufferPointer(rebasing: record[headerLength..<(headerLength + payload)]))
            offset += space
        }
        return offset
    }

    /// Encodes messages into a new array (see ``encode(_:into:)``).
    public static func encode(_ messages: [ControlMessage]) throws(SocketError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: encodedSpace(of: messages))
        let written = try bytes.withMutableBytesTyped { (buffer) throws(SocketError) in try encode(messages, into: buffer) }
        bytes.removeSubrange(written...)
        return bytes
    }

    /// The record's level and type.
    var levelAndType: (Int32, Int32) {
        typealias Code = ControlMessageCode
        switch self {
        case .descriptors, .receivedDescriptors: return (Code.socketLevel, Code.rights)
        case .credentials: return (Code.socketLevel, Code.credentials)
        case .ipv4PacketInfo: return (Code.ipLevel, Code.ipPacketInfo)
        case .ipv6PacketInfo: return (Code.ipv6Level, Code.ipv6PacketInfo)
        case .timeToLive: return (Code.ipLevel, Code.ipTTL)
        case .hopLimit: return (Code.ipv6Level, Code.ipv6HopLimit)
        case .typeOfService: return (Code.ipLevel, Code.ipTOS)
        case .trafficClass: return (Code.ipv6Level, Code.ipv6TrafficClass)
        case .timestamp(let time):
            return (Code.socketLevel, time.resolution == .microseconds ? Code.timestampOld : Code.timestampNanosecondsOld)
        case .timestamping: return (Code.socketLevel, Code.timestampingOld)
        case .extendedError(let error):
            return error.domain == .inet6 ? (Code.ipv6Level, Code.ipv6ReceiveError) : (Code.ipLevel, Code.ipReceiveError)
        case .originalDestination(let address):
            return address.domain == .inet6 ? (Code.ipv6Level, Code.ipv6OriginalDestination) : (Code.ipLevel, Code.ipOriginalDestination)
        case .segmentSize: return (Code.udpLevel, Code.udpSegment)
        case .receivedSegmentSize: return (Code.udpLevel, Code.udpGRO)
        case .tcpUnreadBytes: return (Code.tcpLevel, Code.tcpUnreadBytes)
        case .unknown(let level, let type, _): return (level, type)
        }
    }

    /// The payload's length in bytes (what `CMSG_LEN` adds the header to).
    var payloadLength: Int {
        switch self {
        case .descriptors(let fds): return fds.count * MemoryLayout<CInt>.size
        case .receivedDescriptors(let fds): return fds.count * MemoryLayout<CInt>.size
        case .credentials: return MemoryLayout<cshim_ucred>.size
        case .ipv4PacketInfo: return MemoryLayout<in_pktinfo>.size
        case .ipv6PacketInfo: return MemoryLayout<cshim_in6_pktinfo>.size
        case .timeToLive, .hopLimit, .trafficClass, .receivedSegmentSize, .tcpUnreadBytes: return MemoryLayout<CInt>.size
        case .typeOfService: return 1
        case .timestamp: return MemoryLayout<timespec>.size
        case .timestamping: return 3 * MemoryLayout<timespec>.size
        case .extendedError(let error):
            return MemoryLayout<sock_extended_err>.size + Self.socketAddressLength(for: error.domain)
        case .originalDestination(let address): return Self.socketAddressLength(for: address.domain)
        case .segmentSize: return MemoryLayout<UInt16>.size
        case .unknown(_, _, let bytes): return bytes.count
        }
    }

    private static func socketAddressLength(for domain: SocketDomain) -> Int {
        domain == .inet6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size
    }

    /// Rejects values the kernel would refuse, before any system call.
    func validate() throws(SocketError) {
        func invalid(_ why: String) -> SocketError { SocketError.invalid("encode control message", description, why) }
        switch self {
        case .descriptors(let fds):
            guard (1...ControlMessageCode.maximumDescriptors).contains(fds.count) else {
                throw invalid("SCM_RIGHTS carries 1...\(ControlMessageCode.maximumDescriptors) descriptors, not \(fds.count)")
            }
            if let bad = fds.first(where: { $0 < 0 }) { throw invalid("descriptor \(bad) is negative") }
        case .receivedDescriptors(let fds):
            guard (1...ControlMessageCode.maximumDescriptors).contains(fds.count) else {
                throw invalid("SCM_RIGHTS carries 1...\(ControlMessageCode.maximumDescriptors) descriptors, not \(fds.count)")
            }
            if fds.contains(where: \.isClosed) { throw invalid("a received descriptor was already closed or taken") }
        case .timeToLive(let ttl):
            guard (1...255).contains(ttl) else { throw invalid("a TTL is 1...255, not \(ttl)") }
        case .hopLimit(let hops):
            guard (-1...255).contains(hops) else { throw invalid("a hop limit is -1...255, not \(hops)") }
        case .trafficClass(let tclass):
            guard (-1...255).contains(tclass) else { throw invalid("a traffic class is -1...255, not \(tclass)") }
        case .receivedSegmentSize(let size):
            guard Int32(exactly: size) != nil else { throw invalid("segment size \(size) does not fit in an int") }
        case .tcpUnreadBytes(let count):
            guard Int32(exactly: count) != nil else { throw invalid("byte count \(count) does not fit in an int") }
        case .timestamp(let time):
            try Self.validate(time, invalid)
        case .timestamping(let software, let hardware):
            try Self.validate(software, invalid)
            try Self.validate(hardware, invalid)
        case .extendedError(let error):
            guard error.domain == .inet || error.domain == .inet6 else { throw invalid("an extended error's domain is AF_INET or AF_INET6") }
        case .originalDestination(let address):
            guard address.domain == .inet || address.domain == .inet6 else { throw invalid("an original destination is an IPv4 or IPv6 address") }
        case .unknown(_, _, let bytes):
            guard bytes.count <= 1 << 20 else { throw invalid("payload of \(bytes.count) bytes exceeds 1 MiB") }
        case .credentials, .ipv4PacketInfo, .ipv6PacketInfo, .typeOfService, .segmentSize:
            break
        }
    }

    private static func validate(_ time: SocketTimestamp, _ invalid: (String) -> SocketError) throws(SocketError) {
        guard (0..<1_000_000_000).contains(time.nanoseconds) else {
            throw invalid("nanoseconds \(time.nanoseconds) are outside 0..<1000000000")
        }
    }

    /// Writes the payload; `buffer` holds exactly ``payloadLength`` bytes. Call after ``validate()``.
    private func writePayload(into buffer: UnsafeMutableRawBufferPointer) {
        func store<T>(_ value: T) { buffer.storeBytes(of: value, toByteOffset: 0, as: T.self) }
        func storeDescriptors(_ fds: [CInt]) {
            for (index, fd) in fds.enumerated() {
                buffer.storeBytes(of: fd, toByteOffset: index * MemoryLayout<CInt>.size, as: CInt.self)
            }
        }
        switch self {
        case .descriptors(let fds):
            storeDescriptors(fds)
        case .receivedDescriptors(let fds):
            storeDescriptors(fds.map(\.descriptor))
        case .credentials(let credentials):
            store(cshim_ucred(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid))
        case .ipv4PacketInfo(let info):
            store(in_pktinfo(
                ipi_ifindex: info.interfaceIndex,
                ipi_spec_dst: in_addr(s_addr: info.localAddress.value.bigEndian),
                ipi_addr: in_addr(s_addr: info.destinationAddress.value.bigEndian)))
        case .ipv6PacketInfo(let info):
            store(cshim_in6_pktinfo(ipi6_addr: in6_addr(info.address), ipi6_ifindex: info.interfaceIndex))
        case .timeToLive(let value), .hopLimit(let value), .trafficClass(let value), .receivedSegmentSize(let value),
             .tcpUnreadBytes(let value):
            store(CInt(truncatingIfNeeded: value))
        case .typeOfService(let tos):
            store(tos)
        case .timestamp(let time):
            if time.resolution == .microseconds {
                store(timeval(tv_sec: Int(time.seconds), tv_usec: Int(time.nanoseconds / 1000)))
            } else {
                store(timespec(tv_sec: Int(time.seconds), tv_nsec: Int(time.nanoseconds)))
            }
        case .timestamping(let software, let hardware):
            let size = MemoryLayout<timespec>.size
            buffer.storeBytes(of: timespec(tv_sec: Int(software.seconds), tv_nsec: Int(software.nanoseconds)), toByteOffset: 0, as: timespec.self)
            buffer.storeBytes(of: timespec(tv_sec: Int(hardware.seconds), tv_nsec: Int(hardware.nanoseconds)), toByteOffset: 2 * size, as: timespec.self)
        case .extendedError(let error):
            var header = sock_extended_err()
            header.ee_errno = UInt32(bitPattern: error.errno.rawValue)
            header.ee_origin = error.origin.rawValue
            header.ee_type = error.type
            header.ee_code = error.code
            header.ee_info = error.info
            header.ee_data = error.data
            store(header)
            if let offender = error.offender {
                Self.writeAddress(offender, into: UnsafeMutableRawBufferPointer(rebasing: buffer[MemoryLayout<sock_extended_err>.size...]))
            }
        case .originalDestination(let address):
            Self.writeAddress(address, into: buffer)
        case .segmentSize(let size):
            store(size)
        case .unknown(_, _, let bytes):
            buffer.copyBytes(from: bytes)
        }
    }

    /// Copies as much of the `sockaddr` as fits in `buffer` (which is zeroed).
    private static func writeAddress(_ address: SocketAddress, into buffer: UnsafeMutableRawBufferPointer) {
        var storage = sockaddr_storage()
        let length = min(Int(address.encode(into: &storage)), buffer.count)
        withUnsafeBytes(of: &storage) { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[..<length]))
        }
    }

    // MARK: Decoding

    /// Calls `body` with each record's level, type and payload, checking every `cmsg_len`
    /// against the bytes left.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` for a record shorter than its
    ///   header, one longer than the bytes left, or trailing bytes too few for a header.
    static func forEachRecord(
        in buffer: UnsafeRawBufferPointer, _ body: (Int32, Int32, UnsafeRawBufferPointer) throws(SocketError) -> Void
    ) throws(SocketError) {
        var offset = 0
        while offset < buffer.count {
            let left = buffer.count - offset
            guard left >= headerLength else {
                throw SocketError.invalid("decode control messages", nil, "\(left) bytes at offset \(offset) are too few for a cmsghdr (\(headerLength))")
            }
            let length = buffer.loadUnaligned(fromByteOffset: offset, as: UInt.self)
            guard length >= UInt(headerLength) else {
                throw SocketError.invalid("decode control messages", nil, "cmsg_len \(length) at offset \(offset) is shorter than the header (\(headerLength))")
            }
            guard length <= UInt(left) else {
                throw SocketError.invalid("decode control messages", nil, "cmsg_len \(length) at offset \(offset) runs past the \(left) bytes left")
            }
            let end = offset + Int(length)
            let level = buffer.loadUnaligned(fromByteOffset: offset + levelOffset, as: Int32.self)
            let type = buffer.loadUnaligned(fromByteOffset: offset + typeOffset, as: Int32.self)
            try body(level, type, UnsafeRawBufferPointer(rebasing: buffer[(offset + headerLength)..<end]))
            // The last record may lack its padding (the kernel trims it to the space left).
            offset += min(space(forPayloadBytes: Int(length) - headerLength), left)
        }
    }

    /// Decodes control data in the kernel's layout, as `recvmsg` leaves it.
    ///
    /// `SCM_RIGHTS` records become ``descriptors(_:)`` with the raw numbers: this does not take
    /// ownership of them (``Socket/receiveMessage(into:controlBuffer:flags:)`` does). A record
    /// whose payload has the wrong size for its type (as when the kernel cut it short with
    /// `MSG_CTRUNC`) is kept as ``unknown(level:type:bytes:)``.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` when the records' lengths do not fit
    ///   the buffer (truncated or malformed data); nothing is read outside `buffer`.
    public static func decode(_ buffer: UnsafeRawBufferPointer) throws(SocketError) -> [ControlMessage] {
        var messages: [ControlMessage] = []
        try forEachRecord(in: buffer) { level, type, payload throws(SocketError) in
            messages.append(decodeRecord(level: level, type: type, payload: payload))
        }
        return messages
    }

    /// Decodes control data from an array (see ``decode(_:)-(UnsafeRawBufferPointer)``).
    public static func decode(_ bytes: [UInt8]) throws(SocketError) -> [ControlMessage] {
        try bytes.withBytesTyped { (buffer) throws(SocketError) in try decode(buffer) }
    }

    /// The typed form of one record; `.unknown` for unknown types and unexpected sizes.
    static func decodeRecord(level: Int32, type: Int32, payload: UnsafeRawBufferPointer) -> ControlMessage {
        typealias Code = ControlMessageCode
        let count = payload.count
        func int32() -> Int? { count == 4 ? Int(payload.loadUnaligned(as: Int32.self)) : nil }
        // A timestamp whose fraction is out of range is not one the kernel wrote.
        func timestamp(at offset: Int) -> SocketTimestamp? {
            let time = payload.loadUnaligned(fromByteOffset: offset, as: timespec.self)
            guard (0..<1_000_000_000).contains(time.tv_nsec) else { return nil }
            return SocketTimestamp(seconds: Int64(time.tv_sec), nanoseconds: Int64(time.tv_nsec), resolution: .nanoseconds)
        }
        let decoded: ControlMessage?
        switch (level, type) {
        case (Code.socketLevel, Code.rights) where count % MemoryLayout<CInt>.size == 0:
            decoded = .descriptors((0..<(count / MemoryLayout<CInt>.size)).map {
                payload.loadUnaligned(fromByteOffset: $0 * MemoryLayout<CInt>.size, as: CInt.self)
            })
        case (Code.socketLevel, Code.credentials) where count == MemoryLayout<cshim_ucred>.size:
            let credentials = payload.loadUnaligned(as: cshim_ucred.self)
            decoded = .credentials(PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid))
        case (Code.socketLevel, Code.timestampOld), (Code.socketLevel, Code.timestampNew):
            guard count == MemoryLayout<timeval>.size else { decoded = nil; break }
            let time = payload.loadUnaligned(as: timeval.self)
            guard (0..<1_000_000).contains(time.tv_usec) else { decoded = nil; break }
            decoded = .timestamp(SocketTimestamp(seconds: Int64(time.tv_sec), nanoseconds: Int64(time.tv_usec) * 1000, resolution: .microseconds))
        case (Code.socketLevel, Code.timestampNanosecondsOld), (Code.socketLevel, Code.timestampNanosecondsNew):
            decoded = count == MemoryLayout<timespec>.size ? timestamp(at: 0).map { .timestamp($0) } : nil
        case (Code.socketLevel, Code.timestampingOld), (Code.socketLevel, Code.timestampingNew):
            let size = MemoryLayout<timespec>.size
            if count == 3 * size, let software = timestamp(at: 0), let hardware = timestamp(at: 2 * size) {
                decoded = .timestamping(software: software, hardware: hardware)
            } else {
                decoded = nil
            }
        case (Code.ipLevel, Code.ipPacketInfo) where count == MemoryLayout<in_pktinfo>.size:
            let info = payload.loadUnaligned(as: in_pktinfo.self)
            decoded = .ipv4PacketInfo(IPv4PacketInfo(
                interfaceIndex: info.ipi_ifindex,
                localAddress: IPv4Address(value: UInt32(bigEndian: info.ipi_spec_dst.s_addr)),
                destinationAddress: IPv4Address(value: UInt32(bigEndian: info.ipi_addr.s_addr))))
        case (Code.ipLevel, Code.ipTTL):
            decoded = int32().map { .timeToLive($0) }
        case (Code.ipLevel, Code.ipTOS):
            // Received as one byte; an int is accepted too, as the kernel does on send.
            decoded = count == 1 ? .typeOfService(payload[0]) : int32().map { .typeOfService(UInt8(truncatingIfNeeded: $0)) }
        case (Code.ipLevel, Code.ipReceiveError):
            decoded = decodeExtendedError(payload, domain: .inet).map { .extendedError($0) }
        case (Code.ipLevel, Code.ipOriginalDestination) where count >= MemoryLayout<sockaddr_in>.size:
            decoded = decodeAddress(payload).map { .originalDestination($0) }
        case (Code.ipv6Level, Code.ipv6PacketInfo) where count == MemoryLayout<cshim_in6_pktinfo>.size:
            let info = payload.loadUnaligned(as: cshim_in6_pktinfo.self)
            decoded = .ipv6PacketInfo(IPv6PacketInfo(address: IPv6Address(info.ipi6_addr), interfaceIndex: info.ipi6_ifindex))
        case (Code.ipv6Level, Code.ipv6HopLimit):
            decoded = int32().map { .hopLimit($0) }
        case (Code.ipv6Level, Code.ipv6TrafficClass):
            decoded = int32().map { .trafficClass($0) }
        case (Code.ipv6Level, Code.ipv6ReceiveError):
            decoded = decodeExtendedError(payload, domain: .inet6).map { .extendedError($0) }
        case (Code.ipv6Level, Code.ipv6OriginalDestination) where count >= MemoryLayout<sockaddr_in6>.size:
            decoded = decodeAddress(payload).map { .originalDestination($0) }
        case (Code.udpLevel, Code.udpSegment) where count == MemoryLayout<UInt16>.size:
            decoded = .segmentSize(payload.loadUnaligned(as: UInt16.self))
        case (Code.udpLevel, Code.udpGRO):
            decoded = int32().map { .receivedSegmentSize($0) }
        case (Code.tcpLevel, Code.tcpUnreadBytes):
            decoded = int32().map { .tcpUnreadBytes($0) }
        default:
            decoded = nil
        }
        return decoded ?? .unknown(level: level, type: type, bytes: Array(payload))
    }

    /// A `sockaddr` in a payload; `nil` for `AF_UNSPEC` (no address).
    private static func decodeAddress(_ bytes: UnsafeRawBufferPointer) -> SocketAddress? {
        guard bytes.count >= MemoryLayout<sa_family_t>.size, let base = bytes.baseAddress,
              bytes.loadUnaligned(as: sa_family_t.self) != sa_family_t(AF_UNSPEC) else { return nil }
        return SocketAddress(sockaddr: base, length: socklen_t(clamping: bytes.count))
    }

    /// `sock_extended_err` and the offender address that follows it.
    private static func decodeExtendedError(_ payload: UnsafeRawBufferPointer, domain: SocketDomain) -> ExtendedError? {
        let size = MemoryLayout<sock_extended_err>.size
        guard payload.count >= size else { return nil }
        let header = payload.loadUnaligned(as: sock_extended_err.self)
        return ExtendedError(
            errno: Errno(rawValue: CInt(bitPattern: header.ee_errno)),
            origin: ExtendedError.Origin(rawValue: header.ee_origin),
            type: header.ee_type, code: header.ee_code, info: header.ee_info, data: header.ee_data,
            offender: decodeAddress(UnsafeRawBufferPointer(rebasing: payload[size...])),
            domain: domain)
    }
}
