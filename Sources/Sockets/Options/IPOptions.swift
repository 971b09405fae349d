import Glibc
import SocketSyscalls
import SystemPackage

private let ipLevel = Int32(IPPROTO_IP)
private let ipv6Level = Int32(IPPROTO_IPV6)

// MARK: - IPv4 (IPPROTO_IP)

extension SocketOption where Value == Int {
    /// The time-to-live of outgoing unicast packets, 1...255; -1 goes back to the default
    /// (`net.ipv4.ip_default_ttl`): `IP_TTL`.
    public static var timeToLive: Self { Self(ipLevel, IP_TTL, "IP_TTL", .int(oneOf: [-1...(-1), 1...255], "TTL")) }
    /// The type-of-service byte (DSCP and ECN) of outgoing packets, 0...255: `IP_TOS`. On TCP
    /// sockets the kernel keeps the two ECN bits for itself.
    public static var typeOfService: Self { Self(ipLevel, IP_TOS, "IP_TOS", .int(0...255, "TOS")) }
    /// The time-to-live of outgoing multicast packets, 0...255 (default 1: the local network);
    /// -1 goes back to the default: `IP_MULTICAST_TTL`.
    public static var multicastTimeToLive: Self { Self(ipLevel, IP_MULTICAST_TTL, "IP_MULTICAST_TTL", .int(-1...255, "multicast TTL")) }
}

extension SocketOption where Value == Bool {
    /// The program writes the IP header itself (raw sockets only): `IP_HDRINCL`.
    public static var headerIncluded: Self { Self(ipLevel, IP_HDRINCL, "IP_HDRINCL", .bool) }
    /// Multicast sent from this socket is also delivered to listeners on this host (default
    /// on): `IP_MULTICAST_LOOP`.
    public static var multicastLoop: Self { Self(ipLevel, IP_MULTICAST_LOOP, "IP_MULTICAST_LOOP", .bool) }
    /// A socket bound to the wildcard address receives multicast for every group joined by
    /// any socket on the host (the default, on); off, only for the groups it joined itself:
    /// `IP_MULTICAST_ALL`.
    public static var multicastAll: Self { Self(ipLevel, IP_MULTICAST_ALL, "IP_MULTICAST_ALL", .bool) }
    /// Receives an `IP_PKTINFO` control message (arrival interface, local and destination
    /// address) with each datagram: `IP_PKTINFO`.
    public static var receivePacketInfo: Self { Self(ipLevel, IP_PKTINFO, "IP_PKTINFO", .bool) }
    /// Receives each packet's TOS byte as an `IP_TOS` control message: `IP_RECVTOS`.
    public static var receiveTypeOfService: Self { Self(ipLevel, IP_RECVTOS, "IP_RECVTOS", .bool) }
    /// Receives each packet's TTL as an `IP_TTL` control message: `IP_RECVTTL`.
    public static var receiveTimeToLive: Self { Self(ipLevel, IP_RECVTTL, "IP_RECVTTL", .bool) }
    /// Queues ICMP errors (with the offending packet) on the error queue, read with
    /// `MSG_ERRQUEUE`: `IP_RECVERR`.
    public static var receiveErrors: Self { Self(ipLevel, IP_RECVERR, "IP_RECVERR", .bool) }
    /// Allows binding to an address that is not (yet) on any interface: `IP_FREEBIND`.
    public static var freeBind: Self { Self(ipLevel, IP_FREEBIND, "IP_FREEBIND", .bool) }
    /// Allows binding to and receiving for foreign addresses, for transparent proxies; needs
    /// `CAP_NET_ADMIN` or `CAP_NET_RAW`: `IP_TRANSPARENT`.
    public static var transparent: Self { Self(ipLevel, IP_TRANSPARENT, "IP_TRANSPARENT", .bool) }
    /// A `bind` with port 0 reserves no port; `connect` picks it, so that many outgoing
    /// connections can share a source address: `IP_BIND_ADDRESS_NO_PORT`.
    public static var bindAddressNoPort: Self { Self(ipLevel, IP_BIND_ADDRESS_NO_PORT, "IP_BIND_ADDRESS_NO_PORT", .bool) }
    /// Receives each datagram's original destination address (before any redirection by
    /// TPROXY) as an `IP_ORIGDSTADDR` control message: `IP_RECVORIGDSTADDR`.
    public static var receiveOriginalDestinationAddress: Self { Self(ipLevel, IP_RECVORIGDSTADDR, "IP_RECVORIGDSTADDR", .bool) }
}

extension SocketOption where Value == IPv4Address {
    /// The local address whose interface sends this socket's multicast; ``IPv4Address/any``
    /// lets the routing table choose: `IP_MULTICAST_IF`. To choose by interface index, use
    /// ``Socket/setMulticastInterface(index:)``.
    public static var multicastInterface: Self { Self(ipLevel, IP_MULTICAST_IF, "IP_MULTICAST_IF", .inAddr) }
}

extension SocketOption where Value == PathMTUDiscovery {
    /// Path MTU discovery and the Don't Fragment bit for IPv4: `IP_MTU_DISCOVER`.
    public static var pathMTUDiscovery: Self { Self(ipLevel, IP_MTU_DISCOVER, "IP_MTU_DISCOVER", .rawInt) }
    /// Path MTU discovery for IPv6 (`IPV6_PMTUDISC_*`, the same values): `IPV6_MTU_DISCOVER`.
    public static var ipv6PathMTUDiscovery: Self { Self(ipv6Level, IPV6_MTU_DISCOVER, "IPV6_MTU_DISCOVER", .rawInt) }
}

extension ReadOnlySocketOption where Value == Int {
    /// The path MTU the kernel knows for a connected IPv4 socket (`ENOTCONN` otherwise), at
    /// most 65535: `IP_MTU`.
    public static var pathMTU: Self { Self(ipLevel, IP_MTU, "IP_MTU", .int(0...Int(Int32.max))) }
    /// The path MTU the kernel knows for a connected IPv6 socket (`ENOTCONN` otherwise):
    /// `IPV6_MTU`. (Setting `IPV6_MTU` limits the fragment size instead; do that with
    /// ``Socket/setOption(level:name:value:)``.)
    public static var ipv6PathMTU: Self { Self(ipv6Level, IPV6_MTU, "IPV6_MTU", .int(0...Int(Int32.max))) }
}

extension Socket {
    /// Sends this socket's IPv4 multicast through the interface with this index (0: let the
    /// routing table choose): `setsockopt(IP_MULTICAST_IF)` with a `struct ip_mreqn`.
    /// ``SocketOption/multicastInterface`` reads it back as the interface's address, or
    /// ``IPv4Address/any`` when chosen by index.
    public func setMulticastInterface(index: UInt32) throws(SocketError) {
        guard let rawIndex = Int32(exactly: index) else {
            throw SocketError.invalid("setsockopt(IP_MULTICAST_IF)", nil, "interface index \(index) is over \(Int32.max)")
        }
        var request = ip_mreqn(imr_multiaddr: in_addr(s_addr: 0), imr_address: in_addr(s_addr: 0), imr_ifindex: rawIndex)
        try optionCall("setsockopt(IP_MULTICAST_IF)") { fd throws(Errno) in
            try Syscall.setsockopt(fd, level: ipLevel, name: IP_MULTICAST_IF, &request, socklen_t(MemoryLayout<ip_mreqn>.size))
        }
    }
}

// MARK: - IPv6 (IPPROTO_IPV6)

extension SocketOption where Value == Bool {
    /// The socket handles IPv6 only; off, it also accepts IPv4 as IPv4-mapped addresses
    /// (`::ffff:a.b.c.d`). Set before `bind`; the default comes from `net.ipv6.bindv6only`:
    /// `IPV6_V6ONLY`.
    public static var ipv6Only: Self { Self(ipv6Level, IPV6_V6ONLY, "IPV6_V6ONLY", .bool) }
    /// IPv6 multicast sent from this socket is also delivered on this host (default on):
    /// `IPV6_MULTICAST_LOOP`.
    public static var ipv6MulticastLoop: Self { Self(ipv6Level, IPV6_MULTICAST_LOOP, "IPV6_MULTICAST_LOOP", .bool) }
    /// Receives each packet's traffic class as an `IPV6_TCLASS` control message:
    /// `IPV6_RECVTCLASS`.
    public static var ipv6ReceiveTrafficClass: Self { Self(ipv6Level, IPV6_RECVTCLASS, "IPV6_RECVTCLASS", .bool) }
    /// Receives each packet's hop limit as an `IPV6_HOPLIMIT` control message:
    /// `IPV6_RECVHOPLIMIT`.
    public static var ipv6ReceiveHopLimit: Self { Self(ipv6Level, IPV6_RECVHOPLIMIT, "IPV6_RECVHOPLIMIT", .bool) }
    /// Receives an `IPV6_PKTINFO` control message (destination address, arrival interface)
    /// with each datagram: `IPV6_RECVPKTINFO`.
    public static var ipv6ReceivePacketInfo: Self { Self(ipv6Level, IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO", .bool) }
    /// Receives each datagram's original destination address as an `IPV6_ORIGDSTADDR`
    /// control message (``ControlMessage/originalDestination(_:)``): `IPV6_RECVORIGDSTADDR`.
    public static var ipv6ReceiveOriginalDestinationAddress: Self {
        Self(ipv6Level, IPV6_RECVORIGDSTADDR, "IPV6_RECVORIGDSTADDR", .bool)
    }
    /// Queues ICMPv6 errors on the error queue (`MSG_ERRQUEUE`): `IPV6_RECVERR`.
    public static var ipv6ReceiveErrors: Self { Self(ipv6Level, IPV6_RECVERR, "IPV6_RECVERR", .bool) }
    /// Never fragment outgoing datagrams; a send larger than the path MTU fails with
    /// `EMSGSIZE`: `IPV6_DONTFRAG`.
    public static var ipv6DontFragment: Self { Self(ipv6Level, IPV6_DONTFRAG, "IPV6_DONTFRAG", .bool) }
    /// Receives an `IPV6_PATHMTU` control message when the path MTU changes:
    /// `IPV6_RECVPATHMTU`.
    public static var ipv6ReceivePathMTU: Self { Self(ipv6Level, IPV6_RECVPATHMTU, "IPV6_RECVPATHMTU", .bool) }
    /// Allows binding to an IPv6 address not (yet) on any interface: `IPV6_FREEBIND`.
    public static var ipv6FreeBind: Self { Self(ipv6Level, IPV6_FREEBIND, "IPV6_FREEBIND", .bool) }
    /// Transparent proxying for IPv6; needs `CAP_NET_ADMIN` or `CAP_NET_RAW`:
    /// `IPV6_TRANSPARENT`.
    public static var ipv6Transparent: Self { Self(ipv6Level, IPV6_TRANSPARENT, "IPV6_TRANSPARENT", .bool) }
    /// The program writes the IPv6 header itself (raw IPv6 sockets only): `IPV6_HDRINCL`.
    public static var ipv6HeaderIncluded: Self { Self(ipv6Level, IPV6_HDRINCL, "IPV6_HDRINCL", .bool) }
    /// Like ``multicastAll`` for IPv6 groups: `IPV6_MULTICAST_ALL`.
    public static var ipv6MulticastAll: Self { Self(ipv6Level, IPV6_MULTICAST_ALL, "IPV6_MULTICAST_ALL", .bool) }
}

extension SocketOption where Value == Int {
    /// The hop limit of outgoing unicast packets, 0...255; -1 goes back to the route's
    /// default (and reads back as that default): `IPV6_UNICAST_HOPS`.
    public static var ipv6UnicastHops: Self { Self(ipv6Level, IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS", .int(-1...255, "hop limit")) }
    /// The hop limit of outgoing multicast packets, 0...255 (default 1); -1 goes back to the
    /// default: `IPV6_MULTICAST_HOPS`.
    public static var ipv6MulticastHops: Self { Self(ipv6Level, IPV6_MULTICAST_HOPS, "IPV6_MULTICAST_HOPS", .int(-1...255, "hop limit")) }
    /// The traffic class (DSCP and ECN) of outgoing packets, 0...255; -1 goes back to 0:
    /// `IPV6_TCLASS`. On TCP sockets the kernel keeps the two ECN bits for itself.
    public static var ipv6TrafficClass: Self { Self(ipv6Level, IPV6_TCLASS, "IPV6_TCLASS", .int(-1...255, "traffic class")) }
}

extension SocketOption where Value == UInt32 {
    /// The index of the interface that sends this socket's IPv6 multicast (0: let the routing
    /// table choose): `IPV6_MULTICAST_IF`.
    public static var ipv6MulticastInterface: Self { Self(ipv6Level, IPV6_MULTICAST_IF, "IPV6_MULTICAST_IF", .interfaceIndex) }
}

extension SocketOption where Value == Int? {
    /// For raw IPv6 sockets: the byte offset in each packet of a checksum the kernel computes
    /// on send and checks on receive (even; `nil` turns it off). ICMPv6 sockets always
    /// checksum and refuse it: `IPV6_CHECKSUM`.
    public static var ipv6Checksum: Self { Self(ipv6Level, IPV6_CHECKSUM, "IPV6_CHECKSUM", .intOrOff(0...Int(Int32.max), "checksum offset", evenOnly: true)) }
}
