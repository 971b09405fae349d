import Glibc
import CSocketShims

/// A communication domain, the first argument of `socket(2)` (`AF_*`).
///
/// An open set: any value the kernel knows round-trips through ``rawValue``. Linux has no
/// Xerox NS domain (`AF_NS` of 4.3BSD); asking for a family the kernel lacks fails with
/// `EAFNOSUPPORT`.
public struct SocketDomain: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `AF_UNSPEC`: any family (used in name lookups and to disconnect a datagram socket).
    public static let unspecified = SocketDomain(rawValue: Int32(AF_UNSPEC))
    /// `AF_INET`: IPv4.
    public static let inet = SocketDomain(rawValue: Int32(AF_INET))
    /// `AF_INET6`: IPv6.
    public static let inet6 = SocketDomain(rawValue: Int32(AF_INET6))
    /// `AF_UNIX`: local sockets, named by a path or (Linux) an abstract name.
    public static let unix = SocketDomain(rawValue: Int32(AF_UNIX))
    /// `AF_PACKET` (Linux): link-layer frames.
    public static let packet = SocketDomain(rawValue: Int32(AF_PACKET))
    /// `AF_NETLINK` (Linux): messages to and from the kernel.
    public static let netlink = SocketDomain(rawValue: Int32(AF_NETLINK))
    /// `AF_VSOCK` (Linux): virtual machine sockets.
    public static let vsock = SocketDomain(rawValue: 40)

    /// The `AF_*` name Linux gives the family (`AF_NETROM` for 6), or `family N` for a
    /// number Linux does not define.
    public var description: String {
        guard rawValue >= 0, Int(rawValue) < Self.linuxNames.count else { return "family \(rawValue)" }
        return Self.linuxNames[Int(rawValue)]
    }

    /// Linux's `AF_*` names by number (`include/linux/socket.h`), up to `AF_MAX` (46) exclusive.
    /// Several are not built into every kernel: `socket(2)` then fails with `EAFNOSUPPORT`.
    private static let linuxNames = [
        "AF_UNSPEC", "AF_UNIX", "AF_INET", "AF_AX25", "AF_IPX", "AF_APPLETALK", "AF_NETROM", "AF_BRIDGE",
        "AF_ATMPVC", "AF_X25", "AF_INET6", "AF_ROSE", "AF_DECnet", "AF_NETBEUI", "AF_SECURITY", "AF_KEY",
        "AF_NETLINK", "AF_PACKET", "AF_ASH", "AF_ECONET", "AF_ATMSVC", "AF_RDS", "AF_SNA", "AF_IRDA",
        "AF_PPPOX", "AF_WANPIPE", "AF_LLC", "AF_IB", "AF_MPLS", "AF_CAN", "AF_TIPC", "AF_BLUETOOTH",
        "AF_IUCV", "AF_RXRPC", "AF_ISDN", "AF_PHONET", "AF_IEEE802154", "AF_CAIF", "AF_ALG", "AF_NFC",
        "AF_VSOCK", "AF_KCM", "AF_QIPCRTR", "AF_SMC", "AF_XDP", "AF_MCTP",
    ]
}

/// A socket type, the second argument of `socket(2)` (`SOCK_*`).
public struct SocketType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `SOCK_STREAM`: a reliable, ordered byte stream (TCP, Unix stream).
    public static let stream = SocketType(rawValue: Int32(SOCK_STREAM.rawValue))
    /// `SOCK_DGRAM`: unreliable messages with boundaries (UDP, Unix datagram).
    public static let datagram = SocketType(rawValue: Int32(SOCK_DGRAM.rawValue))
    /// `SOCK_RAW`: packets with their network headers (needs `CAP_NET_RAW`).
    public static let raw = SocketType(rawValue: Int32(SOCK_RAW.rawValue))
    /// `SOCK_SEQPACKET`: reliable, ordered messages with boundaries (Unix, SCTP).
    public static let sequencedPacket = SocketType(rawValue: Int32(SOCK_SEQPACKET.rawValue))
    /// `SOCK_RDM`: reliable datagrams (rarely supported).
    public static let reliableDatagram = SocketType(rawValue: Int32(SOCK_RDM.rawValue))

    public var description: String {
        switch self {
        case .stream: return "SOCK_STREAM"
        case .datagram: return "SOCK_DGRAM"
        case .raw: return "SOCK_RAW"
        case .sequencedPacket: return "SOCK_SEQPACKET"
        case .reliableDatagram: return "SOCK_RDM"
        default: return "type \(rawValue)"
        }
    }
}

/// A protocol number, the third argument of `socket(2)` (`IPPROTO_*` for IP sockets).
public struct SocketProtocol: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// 0: the default protocol for the domain and type.
    public static let `default` = SocketProtocol(rawValue: 0)
    /// `IPPROTO_TCP`.
    public static let tcp = SocketProtocol(rawValue: Int32(IPPROTO_TCP))
    /// `IPPROTO_UDP`.
    public static let udp = SocketProtocol(rawValue: Int32(IPPROTO_UDP))
    /// `IPPROTO_ICMP`: raw ICMP, or (with `SOCK_DGRAM`) an unprivileged ping socket.
    public static let icmp = SocketProtocol(rawValue: Int32(IPPROTO_ICMP))
    /// `IPPROTO_ICMPV6`.
    public static let icmpv6 = SocketProtocol(rawValue: Int32(IPPROTO_ICMPV6))
    /// `IPPROTO_RAW`: raw IP, sending implies `IP_HDRINCL`.
    public static let rawIP = SocketProtocol(rawValue: Int32(IPPROTO_RAW))
    /// `IPPROTO_SCTP`.
    public static let sctp = SocketProtocol(rawValue: Int32(IPPROTO_SCTP))
    /// `IPPROTO_UDPLITE`.
    public static let udpLite = SocketProtocol(rawValue: Int32(IPPROTO_UDPLITE))
    /// `IPPROTO_MPTCP` (Linux): multipath TCP.
    public static let mptcp = SocketProtocol(rawValue: 262)

    public var description: String {
        switch self {
        case .default: return "0"
        case .tcp: return "IPPROTO_TCP"
        case .udp: return "IPPROTO_UDP"
        case .icmp: return "IPPROTO_ICMP"
        case .icmpv6: return "IPPROTO_ICMPV6"
        case .rawIP: return "IPPROTO_RAW"
        case .sctp: return "IPPROTO_SCTP"
        case .udpLite: return "IPPROTO_UDPLITE"
        case .mptcp: return "IPPROTO_MPTCP"
        default: return "protocol \(rawValue)"
        }
    }
}

/// Which directions `shutdown(2)` closes.
public enum ShutdownDirection: Int32, Sendable {
    /// `SHUT_RD`: no more receiving; further reads return end-of-file.
    case read = 0
    /// `SHUT_WR`: no more sending; the peer reads end-of-file (TCP sends FIN).
    case write = 1
    /// `SHUT_RDWR`: both.
    case both = 2
}

/// Flags for `send`/`recv` and the flags the kernel reports on a received message (`MSG_*`).
public struct MessageFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `MSG_OOB`: out-of-band (TCP urgent) data; received, the message is the urgent byte.
    public static let outOfBand = MessageFlags(rawValue: Int32(MSG_OOB))
    /// `MSG_PEEK`: return data without removing it from the queue.
    public static let peek = MessageFlags(rawValue: Int32(MSG_PEEK))
    /// `MSG_DONTROUTE`: send only to directly connected hosts.
    public static let dontRoute = MessageFlags(rawValue: Int32(MSG_DONTROUTE))
    /// `MSG_CTRUNC` (received): control data was cut short for lack of buffer space.
    public static let controlTruncated = MessageFlags(rawValue: Int32(MSG_CTRUNC))
    /// `MSG_TRUNC`: (received) the datagram was longer than the buffer; (passed to recv) return
    /// the real length.
    public static let truncated = MessageFlags(rawValue: Int32(MSG_TRUNC))
    /// `MSG_DONTWAIT`: do not block for this call only.
    public static let dontWait = MessageFlags(rawValue: Int32(MSG_DONTWAIT))
    /// `MSG_EOR`: end of record. Sent on TCP, later data stays out of the record's last
    /// segment. Linux reports it on receive for SCTP and vsock sequenced packets; an `AF_UNIX`
    /// `SOCK_SEQPACKET` receive returns one record from its start per call and does not set it
    /// (only ``truncated`` when the record did not fit).
    public static let endOfRecord = MessageFlags(rawValue: Int32(MSG_EOR))
    /// `MSG_WAITALL`: block until the whole buffer is filled (or EOF, error, signal).
    public static let waitAll = MessageFlags(rawValue: Int32(MSG_WAITALL))
    /// `MSG_CONFIRM`: the link layer made forward progress (skip ARP probing).
    public static let confirm = MessageFlags(rawValue: Int32(MSG_CONFIRM))
    /// `MSG_ERRQUEUE`: receive from the socket's error queue.
    public static let errorQueue = MessageFlags(rawValue: Int32(MSG_ERRQUEUE))
    /// `MSG_NOSIGNAL`: no `SIGPIPE` on a broken connection. Always added on every send.
    public static let noSignal = MessageFlags(rawValue: Int32(MSG_NOSIGNAL))
    /// `MSG_MORE`: more data follows. TCP holds the bytes back (like `TCP_CORK`, at most
    /// 200 ms) until a send without it; UDP adds them to one datagram, sent by the first send
    /// without it.
    public static let more = MessageFlags(rawValue: Int32(MSG_MORE))
    /// `MSG_WAITFORONE`: for `recvmmsg`, block only for the first message.
    public static let waitForOne = MessageFlags(rawValue: Int32(MSG_WAITFORONE))
    /// `MSG_FASTOPEN`: connect and send data in the SYN (TCP Fast Open); see
    /// ``Socket/sendFastOpen(_:to:)-(UnsafeRawBufferPointer,_)``.
    public static let fastOpen = MessageFlags(rawValue: Int32(MSG_FASTOPEN))
    /// `MSG_CMSG_CLOEXEC`: descriptors received with `SCM_RIGHTS` are close-on-exec.
    public static let controlCloseOnExec = MessageFlags(rawValue: Int32(MSG_CMSG_CLOEXEC))
    /// `MSG_ZEROCOPY`: send without copying. Needs ``SocketOption/zeroCopy`` (`SO_ZEROCOPY`),
    /// without which it is ignored; the buffer must then stay unchanged until the error queue
    /// reports the send complete (``ExtendedError/zeroCopyCompletion``).
    public static let zeroCopy = MessageFlags(rawValue: 0x4000000)

    public var description: String {
        let names: [(MessageFlags, String)] = [
            (.outOfBand, "MSG_OOB"), (.peek, "MSG_PEEK"), (.dontRoute, "MSG_DONTROUTE"),
            (.controlTruncated, "MSG_CTRUNC"), (.truncated, "MSG_TRUNC"), (.dontWait, "MSG_DONTWAIT"),
            (.endOfRecord, "MSG_EOR"), (.waitAll, "MSG_WAITALL"), (.confirm, "MSG_CONFIRM"),
            (.errorQueue, "MSG_ERRQUEUE"), (.noSignal, "MSG_NOSIGNAL"), (.more, "MSG_MORE"),
            (.waitForOne, "MSG_WAITFORONE"), (.fastOpen, "MSG_FASTOPEN"),
            (.controlCloseOnExec, "MSG_CMSG_CLOEXEC"), (.zeroCopy, "MSG_ZEROCOPY"),
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
