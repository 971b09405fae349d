import Glibc
import CSocketShims
import SocketSyscalls
public import SystemPackage

/// One control (ancillary) message, the typed form of a `cmsghdr` record that `sendmsg(2)`
/// takes and `recvmsg(2)` gives.
///
/// Send them with ``Socket/sendMessage(_:to:controlMessages:flags:)-([UInt8],_,_,_)``; receive them with
/// ``Socket/receiveMessage(into:controlBuffer:flags:)`` after setting the options that ask
/// for them (``SocketOption/receivePacketInfo``, ``SocketOption/receiveTimeToLive``,
/// ``SocketOption/timestampNanoseconds``, ...). ``encode(_:into:)`` and ``decode(_:)-([UInt8])`` convert to and
/// from the raw bytes with the kernel's alignment (`CMSG_SPACE`, `CMSG_LEN`).
public enum ControlMessage: Sendable, Equatable, CustomStringConvertible {
    /// `SCM_RIGHTS` to send: descriptors the caller owns and keeps open until the send returns
    /// (the receiver gets its own duplicates). ``decode(_:)-([UInt8])`` also gives this case, with
    /// numbers that only mean something if they were just received by this process.
    case descriptors([CInt])
    /// `SCM_RIGHTS` received by this library's `receiveMessage`: descriptors this process now
    /// owns, each closed when its ``ReceivedDescriptor`` goes away unless taken.
    case receivedDescriptors([ReceivedDescriptor])
    /// `SCM_CREDENTIALS`: a process id, user id and group id (Unix sockets). The receiver
    /// gets them with every message once it sets `SO_PASSCRED` (``SocketOption/passCredentials``);
    /// a sender may only claim its own, unless privileged.
    case credentials(PeerCredentials)
    /// `IP_PKTINFO`: received, the datagram's destination and interface; sent, the source
    /// address and/or interface to use.
    case ipv4PacketInfo(IPv4PacketInfo)
    /// `IPV6_PKTINFO`: received, the datagram's destination and interface; sent, the source
    /// address and/or interface to use.
    case ipv6PacketInfo(IPv6PacketInfo)
    /// `IP_TTL`: the received datagram's time-to-live, or the TTL for one sent datagram.
    case timeToLive(Int)
    /// `IPV6_HOPLIMIT`: the received datagram's hop limit, or the hop limit for one send.
    case hopLimit(Int)
    /// `IP_TOS`: the received datagram's type-of-service byte, or the TOS for one send.
    case typeOfService(UInt8)
    /// `IPV6_TCLASS`: the received datagram's traffic class, or the class for one send.
    case trafficClass(Int)
    /// `SO_TIMESTAMP` (microseconds) or `SO_TIMESTAMPNS` (nanoseconds): when the kernel
    /// received the datagram, on the real-time clock.
    case timestamp(SocketTimestamp)
    /// `SO_TIMESTAMPING`: the software and the raw hardware timestamps (zero when absent).
    case timestamping(software: SocketTimestamp, hardware: SocketTimestamp)
    /// `IP_RECVERR` / `IPV6_RECVERR`: an error from the error queue (`MSG_ERRQUEUE`), with
    /// the ICMP details and the address of the node that reported it.
    case extendedError(ExtendedError)
    /// `IP_ORIGDSTADDR` / `IPV6_ORIGDSTADDR`: the datagram's original destination address
    /// and port (useful behind transparent proxying).
    case originalDestination(SocketAddress)
    /// `UDP_SEGMENT` on send: split the buffer into datagrams of this size in the kernel
    /// (UDP generic segmentation offload).
    case segmentSize(UInt16)
    /// `UDP_GRO` received: the buffer holds several coalesced datagrams of this size (the last
    /// may be shorter); needs ``SocketOption/udpReceiveOffload``.
    case receivedSegmentSize(Int)
    /// `TCP_CM_INQ` received: how many bytes were left in the TCP receive queue after this
    /// read; needs ``SocketOption/tcpReportUnreadBytes`` (`TCP_INQ`).
    case tcpUnreadBytes(Int)
    /// Any other record, with its level, type and payload bytes.
    case unknown(level: Int32, type: Int32, bytes: [UInt8])

    public var description: String {
        switch self {
        case .descriptors(let fds): return "SCM_RIGHTS\(fds)"
        case .receivedDescriptors(let fds): return "SCM_RIGHTS\(fds.map(\.descriptor))"
        case .credentials(let credentials): return "SCM_CREDENTIALS(\(credentials))"
        case .ipv4PacketInfo(let info): return "IP_PKTINFO(\(info))"
        case .ipv6PacketInfo(let info): return "IPV6_PKTINFO(\(info))"
        case .timeToLive(let ttl): return "IP_TTL(\(ttl))"
        case .hopLimit(let hops): return "IPV6_HOPLIMIT(\(hops))"
        case .typeOfService(let tos): return "IP_TOS(0x\(String(tos, radix: 16)))"
        case .trafficClass(let tclass): return "IPV6_TCLASS(\(tclass))"
        case .timestamp(let time): return "SO_TIMESTAMP(\(time))"
        case .timestamping(let software, let hardware): return "SO_TIMESTAMPING(software: \(software), hardware: \(hardware))"
        case .extendedError(let error): return "RECVERR(\(error))"
        case .originalDestination(let address): return "ORIGDSTADDR(\(address))"
        case .segmentSize(let size): return "UDP_SEGMENT(\(size))"
        case .receivedSegmentSize(let size): return "UDP_GRO(\(size))"
        case .tcpUnreadBytes(let count): return "TCP_CM_INQ(\(count))"
        case .unknown(let level, let type, let bytes): return "cmsg(level: \(level), type: \(type), \(bytes.count) bytes)"
        }
    }
}

extension PeerCredentials {
    /// This process's credentials (`getpid`, `getuid`, `getgid`): what an unprivileged
    /// process may send as ``ControlMessage/credentials(_:)`` (`SCM_CREDENTIALS`).
    public static var current: PeerCredentials {
        let (pid, uid, gid) = Syscall.processCredentials()
        return PeerCredentials(pid: pid, uid: uid, gid: gid)
    }
}

/// `struct in_pktinfo`: where an IPv4 datagram arrived, or where to send one from.
public struct IPv4PacketInfo: Hashable, Sendable, CustomStringConvertible {
    /// The interface index (`ipi_ifindex`); 0 on send lets routing choose.
    public var interfaceIndex: Int32
    /// Received: the local address the datagram was routed to, the right source for a
    /// reply. Sent: the source address to use (`ipi_spec_dst`); `0.0.0.0` for any.
    public var localAddress: IPv4Address
    /// Received: the destination address in the IP header (`ipi_addr`); ignored on send.
    public var destinationAddress: IPv4Address

    public init(interfaceIndex: Int32 = 0, localAddress: IPv4Address = .any, destinationAddress: IPv4Address = .any) {
        self.interfaceIndex = interfaceIndex
        self.localAddress = localAddress
        self.destinationAddress = destinationAddress
    }

    public var description: String {
        "interface \(interfaceIndex), local \(localAddress), destination \(destinationAddress)"
    }
}

/// `struct in6_pktinfo`: where an IPv6 datagram arrived, or where to send one from.
public struct IPv6PacketInfo: Hashable, Sendable, CustomStringConvertible {
    /// Received: the destination address. Sent: the source address (`::` for any).
    public var address: IPv6Address
    /// The interface index; 0 on send lets routing choose.
    public var interfaceIndex: UInt32

    public init(address: IPv6Address = .any, interfaceIndex: UInt32 = 0) {
        self.address = address
        self.interfaceIndex = interfaceIndex
    }

    public var description: String { "interface \(interfaceIndex), address \(address)" }
}

/// A kernel timestamp on the real-time clock (`CLOCK_REALTIME`): seconds and nanoseconds
/// since the Unix epoch.
public struct SocketTimestamp: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// How precise the kernel's value is: `SO_TIMESTAMP` gives microseconds (`timeval`),
    /// `SO_TIMESTAMPNS` and `SO_TIMESTAMPING` nanoseconds (`timespec`).
    public enum Resolution: Hashable, Sendable {
        case microseconds
        case nanoseconds
    }

    /// Whole seconds since the epoch.
    public var seconds: Int64
    /// Nanoseconds within the second, 0..<1,000,000,000 (a multiple of 1,000 for
    /// ``Resolution/microseconds``).
    public var nanoseconds: Int64
    /// The resolution the kernel reported in.
    public var resolution: Resolution

    public init(seconds: Int64, nanoseconds: Int64, resolution: Resolution = .nanoseconds) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
        self.resolution = resolution
    }

    /// The time since the Unix epoch.
    public var sinceEpoch: Duration { .seconds(seconds) + .nanoseconds(nanoseconds) }

    /// Whether the timestamp is all zeros (`SO_TIMESTAMPING` leaves absent ones zero).
    public var isZero: Bool { seconds == 0 && nanoseconds == 0 }

    public static func < (lhs: SocketTimestamp, rhs: SocketTimestamp) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }

    public var description: String {
        let fraction = String(nanoseconds)
        return "\(seconds).\(String(repeating: "0", count: max(0, 9 - fraction.count)))\(fraction)"
    }
}

/// `struct sock_extended_err` from the error queue (`IP_RECVERR`, `IPV6_RECVERR`), with the
/// address of the node that reported the error (`SO_EE_OFFENDER`).
public struct ExtendedError: Hashable, Sendable, CustomStringConvertible {
    /// Where an extended error came from (`SO_EE_ORIGIN_*`).
    public struct Origin: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// `SO_EE_ORIGIN_NONE`.
        public static let none = Origin(rawValue: 0)
        /// `SO_EE_ORIGIN_LOCAL`: this host (for example a message too long for the path MTU).
        public static let local = Origin(rawValue: 1)
        /// `SO_EE_ORIGIN_ICMP`: an ICMP message.
        public static let icmp = Origin(rawValue: 2)
        /// `SO_EE_ORIGIN_ICMP6`: an ICMPv6 message.
        public static let icmp6 = Origin(rawValue: 3)
        /// `SO_EE_ORIGIN_TXSTATUS` / `SO_EE_ORIGIN_TIMESTAMPING`: a transmit timestamp.
        public static let transmitStatus = Origin(rawValue: 4)
        /// `SO_EE_ORIGIN_ZEROCOPY`: a `MSG_ZEROCOPY` completion.
        public static let zeroCopy = Origin(rawValue: 5)
        /// `SO_EE_ORIGIN_TXTIME`: a packet dropped by `SO_TXTIME` scheduling.
        public static let transmitTime = Origin(rawValue: 6)

        public var description: String {
            switch self {
            case .none: return "none"
            case .local: return "local"
            case .icmp: return "ICMP"
            case .icmp6: return "ICMPv6"
            case .transmitStatus: return "transmit status"
            case .zeroCopy: return "zero-copy"
            case .transmitTime: return "transmit time"
            default: return "origin \(rawValue)"
            }
        }
    }

    /// The error (`ee_errno`), such as `ECONNREFUSED` for an ICMP port unreachable.
    public var errno: Errno
    /// Where it came from (`ee_origin`).
    public var origin: Origin
    /// The ICMP type (`ee_type`), for ICMP origins.
    public var type: UInt8
    /// The ICMP code (`ee_code`), for ICMP origins.
    public var code: UInt8
    /// Extra information (`ee_info`), such as the MTU for "fragmentation needed".
    public var info: UInt32
    /// More data (`ee_data`), such as the end of a zero-copy range (see
    /// ``zeroCopyCompletion``).
    public var data: UInt32
    /// The node that reported the error (`SO_EE_OFFENDER`), when known.
    public var offender: SocketAddress?
    /// ``SocketDomain/inet`` for `IP_RECVERR`, ``SocketDomain/inet6`` for `IPV6_RECVERR`.
    public var domain: SocketDomain

    public init(
        errno: Errno, origin: Origin, type: UInt8 = 0, code: UInt8 = 0, info: UInt32 = 0, data: UInt32 = 0,
        offender: SocketAddress? = nil, domain: SocketDomain = .inet
    ) {
        self.errno = errno
        self.origin = origin
        self.type = type
        self.code = code
        self.info = info
        self.data = data
        self.offender = offender
        self.domain = domain
    }

    public var description: String {
        var text = "\(errno.name ?? "errno \(errno.rawValue)") from \(origin), type \(type), code \(code)"
        if info != 0 { text += ", info \(info)" }
        if data != 0 { text += ", data \(data)" }
        if let offender { text += ", offender \(offender)" }
        return text
    }
}

/// A `MSG_ZEROCOPY` completion: the kernel no longer needs the buffers of the zero-copy sends
/// numbered ``first`` through ``last``, so they may be reused.
///
/// Each socket numbers its zero-copy sends from 0, one number per `send` (or `sendmsg`) with
/// ``MessageFlags/zeroCopy`` that succeeded, and reports them on its error queue; consecutive
/// completions may come as one range. The numbers are 32 bits and wrap around.
public struct ZeroCopyCompletion: Hashable, Sendable, CustomStringConvertible {
    /// The first send completed (`ee_info`).
    public var first: UInt32
    /// The last send completed (`ee_data`).
    public var last: UInt32
    /// Whether the kernel copied the data after all (`SO_EE_CODE_ZEROCOPY_COPIED`), as it does
    /// for loopback and for devices without scatter-gather: zero copy then saved nothing, and
    /// plain sends would be cheaper.
    public var wasCopied: Bool

    public init(first: UInt32, last: UInt32, wasCopied: Bool) {
        self.first = first
        self.last = last
        self.wasCopied = wasCopied
    }

    /// How many sends the range covers.
    public var count: Int { Int(last &- first) + 1 }

    /// Whether the send numbered `send` is in the range (wrap-around included).
    public func contains(_ send: UInt32) -> Bool { send &- first <= last &- first }

    public var description: String {
        "zero-copy sends \(first)...\(last) completed\(wasCopied ? " (copied)" : "")"
    }
}

extension ExtendedError {
    /// `SO_EE_CODE_ZEROCOPY_COPIED`, in ``code`` of a zero-copy completion.
    static let zeroCopyCopiedCode: UInt8 = 1

    /// The completion this error reports when it came from `MSG_ZEROCOPY`
    /// (``Origin/zeroCopy``); `nil` for any other origin.
    public var zeroCopyCompletion: ZeroCopyCompletion? {
        guard origin == .zeroCopy else { return nil }
        return ZeroCopyCompletion(first: info, last: data, wasCopied: code & Self.zeroCopyCopiedCode != 0)
    }
}
