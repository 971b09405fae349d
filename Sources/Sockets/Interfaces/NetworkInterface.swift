import Glibc
import CSocketShims
import SocketSyscalls
import SystemPackage

/// The kind of a link-layer (hardware) address (`ARPHRD_*`): an open set, so any value the
/// kernel reports round-trips through ``rawValue``.
public struct HardwareType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `ARPHRD_ETHER`: Ethernet, and most virtual devices (veth, bridges, ...).
    public static let ethernet = HardwareType(rawValue: 1)
    /// `ARPHRD_LOOPBACK`: the loopback device.
    public static let loopback = HardwareType(rawValue: 772)
    /// `ARPHRD_IEEE80211`: 802.11 wireless.
    public static let ieee80211 = HardwareType(rawValue: 801)
    /// `ARPHRD_INFINIBAND`: InfiniBand (20-byte addresses).
    public static let infiniband = HardwareType(rawValue: 32)
    /// `ARPHRD_NONE`: no link-layer header (TUN devices, WireGuard). (Not `none`, which
    /// would read as `Optional.none`.)
    public static let noLinkLayer = HardwareType(rawValue: 0xFFFE)

    public var description: String {
        switch self {
        case .ethernet: return "ether"
        case .loopback: return "loopback"
        case .ieee80211: return "ieee802.11"
        case .infiniband: return "infiniband"
        case .noLinkLayer: return "none"
        default: return "ARPHRD \(rawValue)"
        }
    }
}

/// A link-layer address, such as an Ethernet MAC address: printed `02:fc:00:00:00:01`.
public struct HardwareAddress: Hashable, Sendable, CustomStringConvertible {
    /// The kind of link (`ARPHRD_*`).
    public let type: HardwareType
    /// The address bytes, exactly as many as the link uses (6 for Ethernet, none for TUN).
    public let bytes: [UInt8]

    public init(type: HardwareType, bytes: [UInt8]) {
        self.type = type
        self.bytes = bytes
    }

    /// Lower-case hexadecimal bytes joined by colons, as `ip link` prints them.
    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}

/// One record of `getifaddrs(3)`: an address of an interface with its netmask and broadcast
/// or destination address, or (for `AF_PACKET` records) the interface's link-layer address.
public struct InterfaceAddress: Hashable, Sendable, CustomStringConvertible {
    /// The interface's name as the record gives it: the device name, or for an IPv4 address
    /// with a label, the label (`eth0:1`).
    public let interfaceName: String
    /// The interface's index (`if_nametoindex`); 0 if the interface went away meanwhile.
    public let interfaceIndex: UInt32
    /// The interface's flags when the list was read.
    public let flags: InterfaceFlags
    /// The address (`ifa_addr`): an IPv4 or IPv6 address (link-local IPv6 ones carry their
    /// scope id), or for an `AF_PACKET` record a raw ``SocketAddress/other(_:)``; `nil` when
    /// the record has none.
    public let address: SocketAddress?
    /// The netmask (`ifa_netmask`) of an IP address.
    public let netmask: IPAddress?
    /// The broadcast address (`ifa_broadaddr`) of an IPv4 address on a broadcast link.
    public let broadcast: IPAddress?
    /// The address of the other end (`ifa_dstaddr`): on a point-to-point link, or for an
    /// address added with a peer (`ip addr add A peer B`) on a link without broadcast.
    ///
    /// `getifaddrs` keeps one field for both; on a broadcast link, a peer address set without
    /// a broadcast one shows up as ``broadcast``.
    public let destination: IPAddress?
    /// The link-layer address, for an `AF_PACKET` record.
    public let hardwareAddress: HardwareAddress?

    public init(
        interfaceName: String, interfaceIndex: UInt32, flags: InterfaceFlags, address: SocketAddress?,
        netmask: IPAddress? = nil, broadcast: IPAddress? = nil, destination: IPAddress? = nil, hardwareAddress: HardwareAddress? = nil
    ) {
        self.interfaceName = interfaceName
        self.interfaceIndex = interfaceIndex
        self.flags = flags
        self.address = address
        self.netmask = netmask
        self.broadcast = broadcast
        self.destination = destination
        self.hardwareAddress = hardwareAddress
    }

    /// The IP address, for an `AF_INET` or `AF_INET6` record.
    public var ipAddress: IPAddress? { address?.ipAddress }

    /// The number of leading one bits of the netmask (`24` for `255.255.255.0`); `nil` without
    /// a netmask or when its ones are not contiguous.
    public var prefixLength: Int? {
        switch netmask {
        case .v4(let mask):
            let ones = mask.value.leadingZeroBitCount == 0 ? (~mask.value).leadingZeroBitCount : 0
            return mask.value == (ones == 0 ? 0 : UInt32.max << (32 - ones)) ? ones : nil
        case .v6(let mask):
            let highOnes = (~mask.high).leadingZeroBitCount
            let lowOnes = (~mask.low).leadingZeroBitCount
            let ones = highOnes == 64 ? 64 + lowOnes : highOnes
            let expected = IPv6Address(
                high: ones == 0 ? 0 : UInt64.max << UInt64(64 - min(ones, 64)),
                low: ones <= 64 ? 0 : UInt64.max << UInt64(128 - ones))
            return mask == expected ? ones : nil
        case nil:
            return nil
        }
    }

    /// `eth0 inet 192.0.2.2/24 brd 192.0.2.255`, like `ip -o addr`.
    public var description: String {
        var text = interfaceName
        if let ip = ipAddress {
            text += (ip.domain == .inet ? " inet " : " inet6 ") + ip.description
            if let prefixLength { text += "/\(prefixLength)" } else if let netmask { text += " netmask \(netmask)" }
        } else if let hardwareAddress {
            text += " link/\(hardwareAddress.type) \(hardwareAddress)"
        } else if let address {
            text += " \(address)"
        }
        if let broadcast { text += " brd \(broadcast)" }
        if let destination { text += " peer \(destination)" }
        return text
    }
}

/// A network interface: its name, index, flags, link-layer address and IP addresses, read
/// with `getifaddrs(3)`.
///
/// ```swift
/// for interface in try NetworkInterface.list() where interface.flags.contains(.up) {
///     print(interface.name, interface.addresses.compactMap(\.ipAddress))
/// }
/// ```
public struct NetworkInterface: Hashable, Sendable, CustomStringConvertible {
    /// The device name, such as `lo` or `eth0`.
    public let name: String
    /// The index (`if_nametoindex`), which IPv6 scope ids and multicast options use.
    public let index: UInt32
    /// The flags when the list was read (`IFF_*`).
    public let flags: InterfaceFlags
    /// The link-layer address (from the `AF_PACKET` record); `nil` if there is none.
    public let hardwareAddress: HardwareAddress?
    /// The IPv4 and IPv6 addresses, in the order the kernel lists them.
    public let addresses: [InterfaceAddress]

    public init(name: String, index: UInt32, flags: InterfaceFlags, hardwareAddress: HardwareAddress?, addresses: [InterfaceAddress]) {
        self.name = name
        self.index = index
        self.flags = flags
        self.hardwareAddress = hardwareAddress
        self.addresses = addresses
    }

    /// The IP addresses alone.
    public var ipAddresses: [IPAddress] { addresses.compactMap(\.ipAddress) }

    public var description: String {
        "\(index): \(name) <\(flags)>" + (hardwareAddress.map { " \($0)" } ?? "")
            + addresses.compactMap { $0.ipAddress.map { " \($0)" } }.joined()
    }

    // MARK: Listing

    /// Every interface, each with its addresses, ordered by index: `getifaddrs(3)`.
    ///
    /// Records are grouped by interface index, so an IPv4 address with a label (`eth0:1`)
    /// is listed under its device.
    public static func list() throws(SocketError) -> [NetworkInterface] {
        let records = try addresses()
        var order: [UInt32] = []
        var groups: [UInt32: [InterfaceAddress]] = [:]
        var unindexed: [String: [InterfaceAddress]] = [:]
        for record in records {
            if record.interfaceIndex == 0 {
                // Gone between getifaddrs and the index lookup: keep it, grouped by name.
                unindexed[record.interfaceName, default: []].append(record)
                continue
            }
            if groups[record.interfaceIndex] == nil { order.append(record.interfaceIndex) }
            groups[record.interfaceIndex, default: []].append(record)
        }
        var result = order.sorted().map { index in interface(index: index, records: groups[index] ?? []) }
        for name in unindexed.keys.sorted() {
            result.append(interface(index: 0, records: unindexed[name] ?? []))
        }
        return result
    }

    /// Builds one interface from its records; the `AF_PACKET` record names the device.
    private static func interface(index: UInt32, records: [InterfaceAddress]) -> NetworkInterface {
        let link = records.first { $0.hardwareAddress != nil || $0.address?.domain == .packet }
        let name = link?.interfaceName
            ?? (index == 0 ? nil : Syscall.interfaceName(index: index))
            ?? records.first?.interfaceName ?? ""
        return NetworkInterface(
            name: name, index: index, flags: (link ?? records.first)?.flags ?? [],
            hardwareAddress: link?.hardwareAddress,
            addresses: records.filter { $0.ipAddress != nil })
    }

    /// The interface with this name.
    /// - Throws: `ENODEV` when there is none; an invalid name (empty,
    ///   over 15 bytes, or holding a NUL) before any call.
    public static func named(_ name: String) throws(SocketError) -> NetworkInterface {
        _ = try validName(name, operation: "find interface")
        guard let found = try list().first(where: { $0.name == name }) else {
            throw SocketError("find interface", address: name, errno: Errno(rawValue: ENODEV))
        }
        return found
    }

    /// The interface with this index.
    /// - Throws: `ENXIO` ("No such device or address") when there is none.
    public static func withIndex(_ index: UInt32) throws(SocketError) -> NetworkInterface {
        guard let found = try list().first(where: { $0.index == index }) else {
            throw SocketError("find interface", address: "index \(index)", errno: .noSuchAddressOrDevice)
        }
        return found
    }

    /// Every record of `getifaddrs(3)`, one per address (and one `AF_PACKET` record per
    /// interface with its link-layer address), in the kernel's order.
    public static func addresses() throws(SocketError) -> [InterfaceAddress] {
        let list: UnsafeMutablePointer<ifaddrs>?
        do {
            list = try Syscall.getifaddrs()
        } catch {
            throw SocketError("getifaddrs", errno: error)
        }
        defer { Syscall.freeifaddrs(list) }
        // One if_nameindex call gives every index; labels (eth0:1) take their device's.
        var indices: [String: UInt32] = [:]
        for entry in (try? Syscall.interfaceNameIndex()) ?? [] { indices[entry.name] = entry.index }
        func index(of name: String) -> UInt32 {
            if let index = indices[name] { return index }
            let device = String(name.prefix { $0 != ":" })
            let index = indices[device] ?? Syscall.interfaceIndex(name: name) ?? 0
            indices[name] = index
            return index
        }

        var result: [InterfaceAddress] = []
        var next = list
        while let entry = next {
            let record = entry.pointee
            next = record.ifa_next
            let name = record.ifa_name.map { String(cString: $0) } ?? ""
            let flags = InterfaceFlags(rawValue: record.ifa_flags)
            let address = decode(record.ifa_addr)
            let (broadcast, destination) = broadcastOrDestination(
                decode(record.ifa_ifu.ifu_broadaddr)?.ipAddress, of: address?.ipAddress, flags: flags)
            result.append(InterfaceAddress(
                interfaceName: name, interfaceIndex: index(of: name), flags: flags,
                address: address,
                netmask: decode(record.ifa_netmask)?.ipAddress,
                broadcast: broadcast,
                destination: destination,
                hardwareAddress: hardwareAddress(record.ifa_addr)))
        }
        return result
    }

    /// Sorts out `ifa_ifu`, which holds one address for two purposes.
    ///
    /// glibc fills it with the netlink `IFA_BROADCAST` when there is one, else with
    /// `IFA_ADDRESS`: the peer on a point-to-point link, but the address itself on any other,
    /// which is no broadcast address at all. IPv6 has no broadcast.
    private static func broadcastOrDestination(
        _ other: IPAddress?, of address: IPAddress?, flags: InterfaceFlags
    ) -> (broadcast: IPAddress?, destination: IPAddress?) {
        guard let other, other != address else { return (nil, nil) }
        if flags.contains(.pointToPoint) || other.domain == .inet6 || !flags.contains(.broadcast) {
            return (nil, other)
        }
        return (other, nil)
    }

    /// glibc stores a `sockaddr_ll` with room for 24 address bytes in `AF_PACKET` records.
    private static let packetAddressCapacity = 24
    private static let packetAddressOffset = MemoryLayout<sockaddr_ll>.offset(of: \.sll_addr) ?? 12

    /// Decodes a `sockaddr` from `getifaddrs`, whose length is implied by its family.
    private static func decode(_ pointer: UnsafeMutablePointer<sockaddr>?) -> SocketAddress? {
        guard let pointer else { return nil }
        let length: Int
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET: length = MemoryLayout<sockaddr_in>.size
        case AF_INET6: length = MemoryLayout<sockaddr_in6>.size
        case AF_PACKET:
            let addressLength = Int(UnsafeRawPointer(pointer).load(as: sockaddr_ll.self).sll_halen)
            length = packetAddressOffset + max(8, min(addressLength, packetAddressCapacity))
        default: return nil
        }
        return SocketAddress(sockaddr: UnsafeRawPointer(pointer), length: socklen_t(length))
    }

    /// The link-layer address of an `AF_PACKET` record's `sockaddr_ll`.
    private static func hardwareAddress(_ pointer: UnsafeMutablePointer<sockaddr>?) -> HardwareAddress? {
        guard let pointer, Int32(pointer.pointee.sa_family) == AF_PACKET else { return nil }
        let raw = UnsafeRawPointer(pointer)
        let link = raw.load(as: sockaddr_ll.self)
        let count = min(Int(link.sll_halen), packetAddressCapacity)
        let bytes = Array(UnsafeRawBufferPointer(start: raw + packetAddressOffset, count: count))
        return HardwareAddress(type: HardwareType(rawValue: link.sll_hatype), bytes: bytes)
    }

    // MARK: Names and indices

    /// The index of the interface with this name: `if_nametoindex(3)`.
    /// - Throws: `ENODEV` when there is none; an invalid name (empty,
    ///   over 15 bytes, or holding a NUL) before any call.
    public static func index(named name: String) throws(SocketError) -> UInt32 {
        _ = try validName(name, operation: "if_nametoindex")
        guard let index = Syscall.interfaceIndex(name: name) else {
            throw SocketError("if_nametoindex", address: name, errno: Errno(rawValue: ENODEV))
        }
        return index
    }

    /// The name of the interface with this index: `if_indextoname(3)`.
    /// - Throws: `ENXIO` ("No such device or address") when there is none.
    public static func name(index: UInt32) throws(SocketError) -> String {
        guard let name = Syscall.interfaceName(index: index) else {
            throw SocketError("if_indextoname", address: "index \(index)", errno: .noSuchAddressOrDevice)
        }
        return name
    }

    /// Every interface's index and name, ordered by index: `if_nameindex(3)`.
    public static func namesAndIndices() throws(SocketError) -> [(index: UInt32, name: String)] {
        do {
            return try Syscall.interfaceNameIndex().sorted { $0.index < $1.index }
        } catch {
            throw SocketError("if_nameindex", errno: error)
        }
    }

    /// The bytes of a valid interface name: 1 to 15 bytes (`IFNAMSIZ` is 16 with the NUL),
    /// no NUL inside.
    static func validName(_ name: String, operation: String) throws(SocketError) -> [UInt8] {
        let bytes = Array(name.utf8)
        let limit = Int(IF_NAMESIZE) - 1
        guard !bytes.isEmpty, bytes.count <= limit, !bytes.contains(0) else {
            throw SocketError.invalid(
                operation, "\"\(name)\"",
                bytes.contains(0) ? "interface name holds a NUL byte" : "interface names are 1 to \(limit) bytes, this is \(bytes.count)")
        }
        return bytes
    }
}
