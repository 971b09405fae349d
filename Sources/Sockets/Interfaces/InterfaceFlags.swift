import Glibc

/// The state and kind of a network interface (`IFF_*`), as `getifaddrs(3)` and
/// `ioctl(SIOCGIFFLAGS)` report them.
public struct InterfaceFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `IFF_UP`: administratively up (`ip link set ... up`).
    public static let up = InterfaceFlags(rawValue: 0x1)
    /// `IFF_BROADCAST`: has a valid broadcast address.
    public static let broadcast = InterfaceFlags(rawValue: 0x2)
    /// `IFF_DEBUG`: the driver's debugging is on.
    public static let debug = InterfaceFlags(rawValue: 0x4)
    /// `IFF_LOOPBACK`: a loopback interface.
    public static let loopback = InterfaceFlags(rawValue: 0x8)
    /// `IFF_POINTOPOINT`: a point-to-point link, with a destination address instead of a broadcast one.
    public static let pointToPoint = InterfaceFlags(rawValue: 0x10)
    /// `IFF_NOTRAILERS`: unused on Linux.
    public static let noTrailers = InterfaceFlags(rawValue: 0x20)
    /// `IFF_RUNNING`: operationally up (the link works).
    public static let running = InterfaceFlags(rawValue: 0x40)
    /// `IFF_NOARP`: no ARP (no link-layer address resolution).
    public static let noARP = InterfaceFlags(rawValue: 0x80)
    /// `IFF_PROMISC`: receives every packet on the link.
    public static let promiscuous = InterfaceFlags(rawValue: 0x100)
    /// `IFF_ALLMULTI`: receives every multicast packet.
    public static let allMulticast = InterfaceFlags(rawValue: 0x200)
    /// `IFF_MASTER`: the master of a bond.
    public static let master = InterfaceFlags(rawValue: 0x400)
    /// `IFF_SLAVE`: a member of a bond.
    public static let slave = InterfaceFlags(rawValue: 0x800)
    /// `IFF_MULTICAST`: supports multicast.
    public static let multicast = InterfaceFlags(rawValue: 0x1000)
    /// `IFF_PORTSEL`: can select its media type.
    public static let portSelect = InterfaceFlags(rawValue: 0x2000)
    /// `IFF_AUTOMEDIA`: selects its media type automatically.
    public static let automedia = InterfaceFlags(rawValue: 0x4000)
    /// `IFF_DYNAMIC`: its addresses are lost when it goes down.
    public static let dynamic = InterfaceFlags(rawValue: 0x8000)
    /// `IFF_LOWER_UP`: the physical layer is up (carrier). Not in `SIOCGIFFLAGS`, whose field
    /// has 16 bits.
    public static let lowerUp = InterfaceFlags(rawValue: 0x10000)
    /// `IFF_DORMANT`: the link is up but waits for something (such as 802.1X). Not in `SIOCGIFFLAGS`.
    public static let dormant = InterfaceFlags(rawValue: 0x20000)
    /// `IFF_ECHO`: echoes sent packets back. Not in `SIOCGIFFLAGS`.
    public static let echo = InterfaceFlags(rawValue: 0x40000)

    private static let names: [(InterfaceFlags, String)] = [
        (.up, "UP"), (.broadcast, "BROADCAST"), (.debug, "DEBUG"), (.loopback, "LOOPBACK"),
        (.pointToPoint, "POINTOPOINT"), (.noTrailers, "NOTRAILERS"), (.running, "RUNNING"), (.noARP, "NOARP"),
        (.promiscuous, "PROMISC"), (.allMulticast, "ALLMULTI"), (.master, "MASTER"), (.slave, "SLAVE"),
        (.multicast, "MULTICAST"), (.portSelect, "PORTSEL"), (.automedia, "AUTOMEDIA"), (.dynamic, "DYNAMIC"),
        (.lowerUp, "LOWER_UP"), (.dormant, "DORMANT"), (.echo, "ECHO"),
    ]

    /// The flags' names as `ip link` prints them, such as `UP|LOOPBACK|RUNNING`; unknown bits
    /// in hexadecimal.
    public var description: String {
        var parts = Self.names.filter { contains($0.0) }.map(\.1)
        let known = Self.names.reduce(UInt32(0)) { $0 | $1.0.rawValue }
        if rawValue & ~known != 0 { parts.append("0x" + String(rawValue & ~known, radix: 16)) }
        return parts.isEmpty ? "[]" : parts.joined(separator: "|")
    }
}
