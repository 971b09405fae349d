import Glibc
import CSocketShims

/// The process at the other end of a Unix socket, as the kernel recorded it when the
/// connection was made (or the pair created): `struct ucred` from `SO_PEERCRED`.
public struct PeerCredentials: Hashable, Sendable, CustomStringConvertible {
    /// The peer's process id (0 if the peer is in a PID namespace this process cannot see).
    public var pid: Int32
    /// The peer's effective user id.
    public var uid: UInt32
    /// The peer's effective group id.
    public var gid: UInt32

    /// Creates credentials (for comparisons in tests and logs).
    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    public var description: String { "pid \(pid), uid \(uid), gid \(gid)" }
}

extension OptionCodec where Value == PeerCredentials {
    static var peerCredentials: OptionCodec<PeerCredentials> {
        OptionCodec(
            capacity: MemoryLayout<cshim_ucred>.size,
            encode: { value, buffer throws(InvalidOptionValue) in
                store(cshim_ucred(pid: value.pid, uid: value.uid, gid: value.gid), buffer)
            },
            decode: { buffer throws(InvalidOptionValue) in
                let raw = try load(cshim_ucred.self, buffer, "a struct ucred")
                return PeerCredentials(pid: raw.pid, uid: raw.uid, gid: raw.gid)
            })
    }
}

/// Path MTU discovery mode, for `IP_MTU_DISCOVER` and `IPV6_MTU_DISCOVER` (`IP_PMTUDISC_*`;
/// the IPv6 constants have the same values).
public struct PathMTUDiscovery: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `IP_PMTUDISC_*` number.
    public let rawValue: Int32
    /// A mode from its number (the kernel rejects unknown ones with `EINVAL`).
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `IP_PMTUDISC_DONT`: never set the Don't Fragment bit; fragment as needed.
    public static let dont = PathMTUDiscovery(rawValue: Int32(IP_PMTUDISC_DONT))
    /// `IP_PMTUDISC_WANT`: use path MTU discovery per route (the usual default).
    public static let want = PathMTUDiscovery(rawValue: Int32(IP_PMTUDISC_WANT))
    /// `IP_PMTUDISC_DO`: always set Don't Fragment; a send larger than the path MTU fails
    /// with `EMSGSIZE`.
    public static let `do` = PathMTUDiscovery(rawValue: Int32(IP_PMTUDISC_DO))
    /// `IP_PMTUDISC_PROBE`: set Don't Fragment but ignore the path MTU (for probing it).
    public static let probe = PathMTUDiscovery(rawValue: Int32(IP_PMTUDISC_PROBE))
    /// `IP_PMTUDISC_INTERFACE`: use the interface MTU, ignore learned path MTUs, never fragment
    /// locally.
    public static let interface = PathMTUDiscovery(rawValue: Int32(IP_PMTUDISC_INTERFACE))
    /// `IP_PMTUDISC_OMIT`: like `.interface`, but fragment when the packet exceeds it.
    public static let omit = PathMTUDiscovery(rawValue: Int32(IP_PMTUDISC_OMIT))

    public var description: String {
        switch self {
        case .dont: return "IP_PMTUDISC_DONT"
        case .want: return "IP_PMTUDISC_WANT"
        case .do: return "IP_PMTUDISC_DO"
        case .probe: return "IP_PMTUDISC_PROBE"
        case .interface: return "IP_PMTUDISC_INTERFACE"
        case .omit: return "IP_PMTUDISC_OMIT"
        default: return "IP_PMTUDISC \(rawValue)"
        }
    }
}

/// TCP keepalive settings: how long a connection is idle before the first probe
/// (`TCP_KEEPIDLE`), the time between probes (`TCP_KEEPINTVL`) and how many unanswered probes
/// end the connection (`TCP_KEEPCNT`). Used with ``Socket/setKeepalive(_:)``.
///
/// A `nil` field leaves that setting as it is (the system defaults come from
/// `net.ipv4.tcp_keepalive_time`, `_intvl` and `_probes`: 2 hours, 75 s, 9).
public struct TCPKeepalive: Hashable, Sendable, CustomStringConvertible {
    /// Idle time before the first probe: whole seconds, 1...32767.
    public var idle: Duration?
    /// Time between probes: whole seconds, 1...32767.
    public var interval: Duration?
    /// Unanswered probes before the connection is dropped: 1...127.
    public var count: Int?

    /// Keepalive timing; leave a field `nil` to keep its current value.
    public init(idle: Duration? = nil, interval: Duration? = nil, count: Int? = nil) {
        self.idle = idle
        self.interval = interval
        self.count = count
    }

    public var description: String {
        func text(_ value: (some CustomStringConvertible)?) -> String { value.map { "\($0)" } ?? "default" }
        return "keepalive(idle: \(text(idle)), interval: \(text(interval)), count: \(text(count)))"
    }
}

/// What `SO_TIMESTAMPING` records and reports (`SOF_TIMESTAMPING_*`): which timestamps are
/// generated (receive, transmit; software or hardware) and how they are reported (in
/// `SCM_TIMESTAMPING` control messages, and for sends on the error queue).
public struct TimestampingFlags: OptionSet, Hashable, Sendable {
    /// The `SOF_TIMESTAMPING_*` bits.
    public let rawValue: UInt32
    /// Flags from their bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `SOF_TIMESTAMPING_TX_HARDWARE`: ask the network card to stamp outgoing packets.
    public static let transmitHardware = TimestampingFlags(rawValue: 1 << 0)
    /// `SOF_TIMESTAMPING_TX_SOFTWARE`: stamp outgoing packets when they leave the driver.
    public static let transmitSoftware = TimestampingFlags(rawValue: 1 << 1)
    /// `SOF_TIMESTAMPING_RX_HARDWARE`: ask the network card to stamp incoming packets.
    public static let receiveHardware = TimestampingFlags(rawValue: 1 << 2)
    /// `SOF_TIMESTAMPING_RX_SOFTWARE`: stamp incoming packets when they reach the kernel.
    public static let receiveSoftware = TimestampingFlags(rawValue: 1 << 3)
    /// `SOF_TIMESTAMPING_SOFTWARE`: report software timestamps.
    public static let software = TimestampingFlags(rawValue: 1 << 4)
    /// `SOF_TIMESTAMPING_SYS_HARDWARE`: obsolete; ignored by the kernel.
    public static let systemHardware = TimestampingFlags(rawValue: 1 << 5)
    /// `SOF_TIMESTAMPING_RAW_HARDWARE`: report hardware timestamps.
    public static let rawHardware = TimestampingFlags(rawValue: 1 << 6)
    /// `SOF_TIMESTAMPING_OPT_ID`: give each send an id, reported with its timestamps (on TCP,
    /// only once connected).
    public static let optionID = TimestampingFlags(rawValue: 1 << 7)
    /// `SOF_TIMESTAMPING_TX_SCHED`: stamp sends when they enter the packet scheduler.
    public static let transmitScheduled = TimestampingFlags(rawValue: 1 << 8)
    /// `SOF_TIMESTAMPING_TX_ACK`: stamp TCP sends when all their data is acknowledged.
    public static let transmitAcknowledged = TimestampingFlags(rawValue: 1 << 9)
    /// `SOF_TIMESTAMPING_OPT_CMSG`: report send timestamps with `IP_PKTINFO`-style control data.
    public static let optionControlMessage = TimestampingFlags(rawValue: 1 << 10)
    /// `SOF_TIMESTAMPING_OPT_TSONLY`: report send timestamps without the packet's payload.
    public static let optionTimestampOnly = TimestampingFlags(rawValue: 1 << 11)
    /// `SOF_TIMESTAMPING_OPT_STATS`: add TCP statistics to send timestamps.
    public static let optionStatistics = TimestampingFlags(rawValue: 1 << 12)
    /// `SOF_TIMESTAMPING_OPT_PKTINFO`: add the arrival interface to hardware receive timestamps.
    public static let optionPacketInfo = TimestampingFlags(rawValue: 1 << 13)
    /// `SOF_TIMESTAMPING_OPT_TX_SWHW`: report both software and hardware send timestamps.
    public static let optionTransmitSoftwareAndHardware = TimestampingFlags(rawValue: 1 << 14)
}

extension OptionCodec where Value == TimestampingFlags {
    static var timestampingFlags: OptionCodec<TimestampingFlags> {
        OptionCodec(
            capacity: 4,
            encode: { value, buffer throws(InvalidOptionValue) in
                // BIND_PHC (bit 15) needs the larger struct so_timestamping.
                guard value.rawValue & (1 << 15) == 0, let raw = Int32(exactly: value.rawValue) else {
                    throw InvalidOptionValue("flags 0x\(String(value.rawValue, radix: 16)) include bits this option's int form cannot carry")
                }
                return store(raw, buffer)
            },
            decode: { buffer throws(InvalidOptionValue) in TimestampingFlags(rawValue: UInt32(bitPattern: try loadInt(buffer))) })
    }
}
