import Glibc
import CSocketShims
import SocketSyscalls

// Typed addresses for two Linux-only families. They travel inside `SocketAddress.other`, whose
// raw bytes are the exact `sockaddr`; the accessors below decode and encode them.

/// An `AF_PACKET` address, `struct sockaddr_ll`: an interface, a link-layer protocol and a
/// hardware address. `recvfrom` on a packet socket reports one per frame; `bind` takes one
/// to choose the interface and protocol.
public struct LinkLayerSocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// Which way a frame went or whom it was for (`sll_pkttype`, `PACKET_*`).
    public struct PacketType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// `PACKET_HOST`: addressed to this host.
        public static let host = PacketType(rawValue: UInt8(PACKET_HOST))
        /// `PACKET_BROADCAST`: a link-layer broadcast.
        public static let broadcast = PacketType(rawValue: UInt8(PACKET_BROADCAST))
        /// `PACKET_MULTICAST`: a link-layer multicast.
        public static let multicast = PacketType(rawValue: UInt8(PACKET_MULTICAST))
        /// `PACKET_OTHERHOST`: for another host, seen in promiscuous mode.
        public static let otherHost = PacketType(rawValue: UInt8(PACKET_OTHERHOST))
        /// `PACKET_OUTGOING`: sent by this host (looped back to packet sockets).
        public static let outgoing = PacketType(rawValue: UInt8(PACKET_OUTGOING))

        public var description: String {
            switch self {
            case .host: return "host"
            case .broadcast: return "broadcast"
            case .multicast: return "multicast"
            case .otherHost: return "other host"
            case .outgoing: return "outgoing"
            default: return "type \(rawValue)"
            }
        }
    }

    /// The link-layer protocol (EtherType) in host byte order, such as `0x0800` for IPv4;
    /// ``allProtocols`` (`ETH_P_ALL`) when binding to see every frame.
    public var protocolNumber: UInt16
    /// The interface index (`sll_ifindex`); 0 for any interface when binding.
    public var interfaceIndex: Int32
    /// The ARP hardware type (`sll_hatype`, `ARPHRD_*`): 1 for Ethernet, 772 for loopback.
    public var hardwareType: UInt16
    /// Which way the frame went (`sll_pkttype`).
    public var packetType: PacketType
    /// The hardware (MAC) address, at most 8 bytes (`sll_addr`, `sll_halen`).
    public let hardwareAddress: [UInt8]

    /// `ETH_P_ALL`: every protocol.
    public static let allProtocols = UInt16(ETH_P_ALL)
    /// `ETH_P_IP`: IPv4.
    public static let ipv4Protocol = UInt16(ETH_P_IP)
    /// `ETH_P_IPV6`: IPv6.
    public static let ipv6Protocol = UInt16(ETH_P_IPV6)
    /// `ETH_P_ARP`: ARP.
    public static let arpProtocol = UInt16(ETH_P_ARP)

    /// The size of `sockaddr_ll` up to `sll_addr`.
    static let headerLength = 12

    /// An address.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` for a hardware address over 8 bytes.
    public init(
        protocolNumber: UInt16 = LinkLayerSocketAddress.allProtocols, interfaceIndex: Int32, hardwareType: UInt16 = 0,
        packetType: PacketType = .host, hardwareAddress: [UInt8] = []
    ) throws(SocketError) {
        guard hardwareAddress.count <= 8 else {
            throw SocketError.invalid("make link-layer address", nil, "hardware address of \(hardwareAddress.count) bytes; the limit is 8")
        }
        self.protocolNumber = protocolNumber
        self.interfaceIndex = interfaceIndex
        self.hardwareType = hardwareType
        self.packetType = packetType
        self.hardwareAddress = hardwareAddress
    }

    /// The address for binding to an interface by name, for `protocolNumber` frames.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` when there is no such interface.
    public init(interface name: String, protocolNumber: UInt16 = LinkLayerSocketAddress.allProtocols) throws(SocketError) {
        guard !name.isEmpty, name.utf8.count < 16, let index = Syscall.interfaceIndex(name: name) else {
            throw SocketError.invalid("make link-layer address", name, "no interface named \"\(name)\"")
        }
        try self.init(protocolNumber: protocolNumber, interfaceIndex: Int32(bitPattern: index))
    }

    /// Decodes `sockaddr_ll` bytes (family included); `nil` when they are not `AF_PACKET`
    /// or too short.
    public init?(bytes: [UInt8]) {
        guard bytes.count >= Self.headerLength,
              Int32(UInt16(bytes[0]) | UInt16(bytes[1]) << 8) == AF_PACKET else { return nil }
        let length = min(Int(bytes[11]), 8, bytes.count - Self.headerLength)
        protocolNumber = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        interfaceIndex = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }
        hardwareType = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt16.self) }
        packetType = PacketType(rawValue: bytes[10])
        hardwareAddress = Array(bytes[Self.headerLength..<(Self.headerLength + length)])
    }

    /// The whole `sockaddr_ll` (20 bytes).
    public var bytes: [UInt8] {
        var address = sockaddr_ll()
        address.sll_family = UInt16(AF_PACKET)
        address.sll_protocol = protocolNumber.bigEndian
        address.sll_ifindex = interfaceIndex
        address.sll_hatype = hardwareType
        address.sll_pkttype = packetType.rawValue
        address.sll_halen = UInt8(hardwareAddress.count)
        withUnsafeMutableBytes(of: &address.sll_addr) { $0.copyBytes(from: hardwareAddress.prefix(8)) }
        return withUnsafeBytes(of: &address) { Array($0) }
    }

    /// The interface's name, when it exists.
    public var interfaceName: String? {
        interfaceIndex > 0 ? Syscall.interfaceName(index: UInt32(interfaceIndex)) : nil
    }

    public var description: String {
        let interface = interfaceName.map { "\($0)(\(interfaceIndex))" } ?? String(interfaceIndex)
        let hardware = hardwareAddress.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
        return "packet[\(interface), protocol 0x\(String(protocolNumber, radix: 16)), \(packetType)\(hardware.isEmpty ? "" : ", " + hardware)]"
    }
}

/// An `AF_NETLINK` address, `struct sockaddr_nl`: a port id and multicast groups.
/// Port id 0 is the kernel.
public struct NetlinkSocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// The port id (`nl_pid`): 0 for the kernel; for a user socket, usually its process id.
    /// Binding with 0 lets the kernel choose.
    public var portID: UInt32
    /// The multicast groups bit mask (`nl_groups`).
    public var groups: UInt32

    public init(portID: UInt32 = 0, groups: UInt32 = 0) {
        self.portID = portID
        self.groups = groups
    }

    /// The kernel's address.
    public static let kernel = NetlinkSocketAddress()

    /// Decodes `sockaddr_nl` bytes (family included); `nil` when they are not `AF_NETLINK`
    /// or too short.
    public init?(bytes: [UInt8]) {
        guard bytes.count >= MemoryLayout<sockaddr_nl>.size,
              Int32(UInt16(bytes[0]) | UInt16(bytes[1]) << 8) == AF_NETLINK else { return nil }
        let address = bytes.withUnsafeBytes { $0.loadUnaligned(as: sockaddr_nl.self) }
        portID = address.nl_pid
        groups = address.nl_groups
    }

    /// The whole `sockaddr_nl` (12 bytes).
    public var bytes: [UInt8] {
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        address.nl_pid = portID
        address.nl_groups = groups
        return withUnsafeBytes(of: &address) { Array($0) }
    }

    public var description: String { "netlink[port \(portID), groups 0x\(String(groups, radix: 16))]" }
}

extension SocketAddress {
    /// An `AF_PACKET` socket address.
    public static func linkLayer(_ address: LinkLayerSocketAddress) -> SocketAddress {
        // 20 bytes with the AF_PACKET family: always a valid raw address.
        (try? RawSocketAddress(bytes: address.bytes)).map { .other($0) } ?? .other(RawSocketAddress(unspecifiedOfLength: 20))
    }

    /// An `AF_NETLINK` socket address.
    public static func netlink(_ address: NetlinkSocketAddress) -> SocketAddress {
        (try? RawSocketAddress(bytes: address.bytes)).map { .other($0) } ?? .other(RawSocketAddress(unspecifiedOfLength: 12))
    }

    /// The `AF_PACKET` address inside, else `nil`.
    public var linkLayer: LinkLayerSocketAddress? {
        guard case .other(let raw) = self, raw.family == .packet else { return nil }
        return LinkLayerSocketAddress(bytes: raw.bytes)
    }

    /// The `AF_NETLINK` address inside, else `nil`.
    public var netlink: NetlinkSocketAddress? {
        guard case .other(let raw) = self, raw.family == .netlink else { return nil }
        return NetlinkSocketAddress(bytes: raw.bytes)
    }
}

extension SocketProtocol {
    /// The protocol argument of `socket(AF_PACKET, ...)` for an EtherType: the number in
    /// network byte order, as the kernel expects (`htons(ETH_P_ALL)`).
    public static func linkLayer(_ etherType: UInt16) -> SocketProtocol {
        SocketProtocol(rawValue: Int32(etherType.bigEndian))
    }

    /// `NETLINK_ROUTE`: routes, links, addresses and neighbours (`rtnetlink(7)`).
    public static let netlinkRoute = SocketProtocol(rawValue: Int32(NETLINK_ROUTE))
}
