import Foundation
import Glibc
import Sockets
import Synchronization
import SystemPackage
import Testing

// MARK: - Independent sources: iproute2 and /sys/class/net

/// A file under /sys/class/net/NAME/, trimmed.
private func sysfs(_ name: String, _ attribute: String) -> String? {
    guard let text = try? String(contentsOfFile: "/sys/class/net/\(name)/\(attribute)", encoding: .utf8) else { return nil }
    return text.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// One line of `ip -o link`.
private struct IPLink {
    var index: UInt32
    var name: String
    var flags: Set<String>
    var mtu: Int
    var linkType: String
    var hardwareAddress: String
}

private func ipLinks(_ namespace: String? = nil) throws -> [IPLink] {
    let prefix = namespace.map { ["ip", "-n", $0] } ?? ["ip"]
    return try runCommand(prefix + ["-o", "link", "show"]).split(separator: "\n").compactMap { line -> IPLink? in
        // 4: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400 ... \    link/ether 02:fc:00:00:00:01 brd ...
        let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count > 4, let index = UInt32(fields[0].dropLast()) else { return nil }
        let name = String(fields[1].dropLast().split(separator: "@", maxSplits: 1)[0])
        let flags = Set(fields[2].dropFirst().dropLast().split(separator: ",").map(String.init))
        let mtu = fields.firstIndex(of: "mtu").flatMap { Int(fields[$0 + 1]) } ?? -1
        let link = fields.firstIndex { $0.hasPrefix("link/") }
        let linkType = link.map { String(fields[$0].dropFirst(5)) } ?? ""
        let address = link.flatMap { $0 + 1 < fields.count && fields[$0 + 1] != "brd" ? fields[$0 + 1] : nil } ?? ""
        return IPLink(index: index, name: name, flags: flags, mtu: mtu, linkType: linkType, hardwareAddress: address)
    }
}

/// The addresses `ip -o addr` lists, as `NAME inet ADDRESS/PREFIX [brd BROADCAST] [peer PEER]`.
private func ipAddresses(_ namespace: String? = nil) throws -> Set<String> {
    let prefix = namespace.map { ["ip", "-n", $0] } ?? ["ip"]
    return Set(try runCommand(prefix + ["-o", "addr", "show"]).split(separator: "\n").compactMap { line -> String? in
        // 4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\  valid_lft ...
        // 2: tun7    inet 10.78.0.1 peer 10.78.0.2/32 scope global tun7\ ...
        let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count > 3, fields[2] == "inet" || fields[2] == "inet6" else { return nil }
        var text = "\(fields[1]) \(fields[2])"
        if let peer = fields.firstIndex(of: "peer") {
            let prefixLength = fields[peer + 1].split(separator: "/").last ?? ""
            text += " \(fields[3])/\(prefixLength) peer \(fields[peer + 1].split(separator: "/")[0])"
        } else {
            text += " \(fields[3])"
        }
        if let brd = fields.firstIndex(of: "brd") { text += " brd \(fields[brd + 1])" }
        return text
    })
}

/// The same form built from this library's list.
private func describe(_ interfaces: [NetworkInterface]) -> Set<String> {
    Set(interfaces.flatMap { interface in
        interface.addresses.compactMap { address -> String? in
            guard let ip = address.ipAddress, let prefixLength = address.prefixLength else { return nil }
            var text = "\(interface.name) \(ip.domain == .inet ? "inet" : "inet6") \(ip)/\(prefixLength)"
            if let destination = address.destination { text += " peer \(destination)" }
            if let broadcast = address.broadcast { text += " brd \(broadcast)" }
            return text
        }
    })
}

/// The flag names `ip link` shows for these flags: all but RUNNING, which it hides.
private func ipLinkFlagNames(_ flags: InterfaceFlags) -> Set<String> {
    Set(flags.subtracting(.running).description.split(separator: "|").map(String.init))
}

// MARK: - Tests

@Suite(.noDescriptorLeaks())
struct InterfaceTests {
    @Test func loopbackInterface() throws {
        let lo = try NetworkInterface.named("lo")
        #expect(lo.name == "lo")
        #expect(lo.index == UInt32(try #require(sysfs("lo", "ifindex"))))
        #expect(lo.index == (try NetworkInterface.index(named: "lo")))
        #expect(lo.flags.isSuperset(of: [.loopback, .up, .running]))
        #expect(!lo.flags.contains(.broadcast))
        #expect(lo.hardwareAddress == HardwareAddress(type: .loopback, bytes: [0, 0, 0, 0, 0, 0]))
        #expect(try lo.mtu() == Int(try #require(sysfs("lo", "mtu"))))

        let v4 = try #require(lo.addresses.first { $0.ipAddress == .v4(.loopback) })
        #expect(v4.address == .ipv4(.loopback, port: 0))
        #expect(v4.netmask == .v4(IPv4Address(255, 0, 0, 0)))
        #expect(v4.prefixLength == 8)
        #expect(v4.broadcast == nil)
        #expect(v4.destination == nil)
        #expect(v4.interfaceName == "lo")
        #expect(v4.interfaceIndex == lo.index)

        let v6 = try #require(lo.addresses.first { $0.ipAddress == .v6(.loopback) })
        #expect(v6.prefixLength == 128)
        #expect(v6.netmask == .v6(IPv6Address(high: .max, low: .max)))
        #expect(lo.ipAddresses.contains(.v4(.loopback)))
        #expect(try NetworkInterface.withIndex(lo.index) == lo)
    }

    @Test func listMatchesSysfsAndIPLink() throws {
        let interfaces = try NetworkInterface.list()
        let links = try ipLinks()
        let sysNames = Set(try FileManager.default.contentsOfDirectory(atPath: "/sys/class/net"))
        #expect(Set(interfaces.map(\.name)) == sysNames)
        #expect(Set(links.map(\.name)) == sysNames)
        #expect(interfaces.map(\.index) == interfaces.map(\.index).sorted())
        for interface in interfaces {
            let link = try #require(links.first { $0.name == interface.name })
            #expect(interface.index == link.index, "\(interface.name)")
            #expect(interface.index == UInt32(sysfs(interface.name, "ifindex") ?? ""), "\(interface.name)")
            #expect(ipLinkFlagNames(interface.flags) == link.flags.subtracting(["NO-CARRIER", "M-DOWN"]), "\(interface.name)")
            if interface.flags.contains(.up) {
                #expect(link.flags.contains("NO-CARRIER") != interface.flags.contains(.running), "\(interface.name)")
            }
            #expect(try interface.mtu() == link.mtu, "\(interface.name)")
            #expect(try NetworkInterface.flags(named: interface.name) == InterfaceFlags(rawValue: interface.flags.rawValue & 0xFFFF))
            if let hardware = interface.hardwareAddress {
                #expect(hardware.type.rawValue == UInt16(sysfs(interface.name, "type") ?? ""), "\(interface.name)")
                #expect(hardware.bytes.count == Int(sysfs(interface.name, "addr_len") ?? ""), "\(interface.name)")
                if !hardware.bytes.isEmpty {
                    #expect(hardware.description == sysfs(interface.name, "address"), "\(interface.name)")
                    #expect(hardware.description == link.hardwareAddress, "\(interface.name)")
                }
            }
            #expect(try NetworkInterface.hardwareAddress(named: interface.name) == interface.hardwareAddress)
        }
    }

    @Test func addressesMatchIPAddr() throws {
        #expect(describe(try NetworkInterface.list()) == (try ipAddresses()))
    }

    @Test func flatListHoldsEveryRecord() throws {
        let records = try NetworkInterface.addresses()
        let interfaces = try NetworkInterface.list()
        // One AF_PACKET (link) record per interface, and every IP record in some interface.
        let linkRecords = records.filter { $0.ipAddress == nil }
        #expect(linkRecords.map(\.interfaceIndex).sorted() == interfaces.map(\.index))
        for record in linkRecords where record.address != nil {
            #expect(record.address?.domain == .packet)
            #expect(record.hardwareAddress != nil)
        }
        let ipRecords = records.filter { $0.ipAddress != nil }
        #expect(ipRecords.count == interfaces.reduce(0) { $0 + $1.addresses.count })
    }

    @Test func linkLocalAddressesCarryTheirScope() throws {
        for interface in try NetworkInterface.list() {
            for address in interface.addresses {
                guard case .ipv6(let socketAddress) = address.address else { continue }
                #expect(socketAddress.scopeID == (socketAddress.address.isLinkLocal ? interface.index : 0), "\(address)")
            }
        }
    }

    @Test func namesAndIndicesRoundTrip() throws {
        let pairs = try NetworkInterface.namesAndIndices()
        #expect(!pairs.isEmpty)
        #expect(Set(pairs.map(\.name)) == Set(try NetworkInterface.list().map(\.name)))
        for (index, name) in pairs {
            #expect(try NetworkInterface.index(named: name) == index)
            #expect(try NetworkInterface.name(index: index) == name)
            #expect(UInt32(sysfs(name, "ifindex") ?? "") == index)
        }
    }

    @Test func unknownInterfaceIsAClearError() throws {
        let name = "nosuch\(getpid() % 100_000)"
        for (operation, attempt) in [
            ("if_nametoindex", { _ = try NetworkInterface.index(named: name) }),
            ("find interface", { _ = try NetworkInterface.named(name) }),
            ("ioctl(SIOCGIFMTU)", { _ = try NetworkInterface.mtu(named: name) }),
            ("ioctl(SIOCGIFFLAGS)", { _ = try NetworkInterface.flags(named: name) }),
        ] as [(String, () throws -> Void)] {
            let error = #expect(throws: SocketError.self) { try attempt() }
            #expect(error?.errno == Errno(rawValue: ENODEV), "\(operation)")
            #expect(error?.description.hasPrefix("\(operation)(\(name)): ") == true, "\(String(describing: error))")
        }
        let highest = try NetworkInterface.namesAndIndices().map(\.index).max() ?? 0
        let byIndex = #expect(throws: SocketError.self) { try NetworkInterface.name(index: highest + 1000) }
        #expect(byIndex?.errno == .noSuchAddressOrDevice)
        #expect(byIndex?.description.contains("index \(highest + 1000)") == true)
        #expect(throws: SocketError.self) { try NetworkInterface.withIndex(highest + 1000) }
    }

    @Test(arguments: ["", "sixteen-bytes-xx", "a\u{0}b"])
    func invalidNamesAreRejectedBeforeAnyCall(name: String) throws {
        for attempt in [
            { _ = try NetworkInterface.index(named: name) },
            { _ = try NetworkInterface.named(name) },
            { _ = try NetworkInterface.mtu(named: name) },
            { _ = try NetworkInterface.flags(named: name) },
        ] as [() throws -> Void] {
            let error = #expect(throws: SocketError.self) { try attempt() }
            if case .invalidArgument = error?.reason {} else { Issue.record("not rejected as invalid: \(String(describing: error))") }
        }
    }

    @Test func prefixLengthsAndDescriptions() throws {
        func prefix(_ mask: String) throws -> Int? {
            InterfaceAddress(interfaceName: "x", interfaceIndex: 1, flags: [], address: nil, netmask: try IPAddress(mask)).prefixLength
        }
        #expect(try prefix("255.255.255.0") == 24)
        #expect(try prefix("255.255.255.255") == 32)
        #expect(try prefix("0.0.0.0") == 0)
        #expect(try prefix("255.255.128.0") == 17)
        #expect(try prefix("255.0.255.0") == nil)
        #expect(try prefix("ffff:ffff:ffff:ffff::") == 64)
        #expect(try prefix("ffff:ffff:ffff:ffff:8000::") == 65)
        #expect(try prefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == 128)
        #expect(try prefix("fe00::") == 7)
        #expect(try prefix("::") == 0)
        #expect(try prefix("ffff::ffff") == nil)
        #expect(HardwareAddress(type: .ethernet, bytes: [0x02, 0xfc, 0, 0, 0, 0x1a]).description == "02:fc:00:00:00:1a")
        #expect(InterfaceFlags([.up, .loopback, .running, .lowerUp]).description == "UP|LOOPBACK|RUNNING|LOWER_UP")
        #expect(InterfaceFlags(rawValue: 0x8_0001).description == "UP|0x80000")
    }

    /// A namespace with a veth pair (set MTU and MAC, a labelled address), a TUN device with a
    /// point-to-point address, and loopback left down, seen from a thread inside it.
    @Test(.requires(.networkNamespaces))
    func interfacesInsideANetworkNamespace() throws {
        let namespace = try NetworkNamespace(prefix: "sockif")
        defer { namespace.delete() }
        try namespace.ip(lines: """
            link add va type veth peer name vb
            link set va address 02:00:00:aa:bb:cc mtu 1280 up
            link set vb up
            addr add 10.77.0.1/24 brd + dev va
            addr add 10.77.1.1/24 brd + dev va label va:1
            addr add fd77::1/64 dev va nodad
            tuntap add mode tun name tun7
            addr add 10.78.0.1 peer 10.78.0.2/32 dev tun7
            link set tun7 up
            """)
        struct Seen: Sendable {
            var interfaces: [NetworkInterface]
            var vaMTU: Int
            var tunFlags: InterfaceFlags
            var vaIndex: UInt32
        }
        let seen = try namespace.onThread {
            Seen(
                interfaces: try NetworkInterface.list(), vaMTU: try NetworkInterface.mtu(named: "va"),
                tunFlags: try NetworkInterface.flags(named: "tun7"), vaIndex: try NetworkInterface.index(named: "va"))
        }
        #expect(Set(seen.interfaces.map(\.name)) == ["lo", "va", "vb", "tun7"])
        #expect(describe(seen.interfaces) == (try ipAddresses(namespace.name)))

        let lo = try #require(seen.interfaces.first { $0.name == "lo" })
        #expect(lo.index == 1)
        #expect(!lo.flags.contains(.up))
        #expect(lo.addresses.isEmpty)

        let va = try #require(seen.interfaces.first { $0.name == "va" })
        #expect(va.index == seen.vaIndex)
        #expect(seen.vaMTU == 1280)
        #expect(va.hardwareAddress == HardwareAddress(type: .ethernet, bytes: [0x02, 0, 0, 0xaa, 0xbb, 0xcc]))
        #expect(va.flags.isSuperset(of: [.up, .broadcast, .multicast]))
        let primary = try #require(va.addresses.first { $0.ipAddress == .v4(IPv4Address(10, 77, 0, 1)) })
        #expect(primary.broadcast == .v4(IPv4Address(10, 77, 0, 255)))
        #expect(primary.prefixLength == 24)
        #expect(primary.interfaceName == "va")
        // The labelled address is listed under its device, with its label.
        let labelled = try #require(va.addresses.first { $0.ipAddress == .v4(IPv4Address(10, 77, 1, 1)) })
        #expect(labelled.interfaceName == "va:1")
        #expect(labelled.interfaceIndex == va.index)
        #expect(va.ipAddresses.contains(.v6(try IPv6Address("fd77::1"))))

        let tun = try #require(seen.interfaces.first { $0.name == "tun7" })
        #expect(tun.flags.isSuperset(of: [.up, .pointToPoint, .noARP]))
        // No program holds the TUN device open: no carrier.
        #expect(!tun.flags.contains(.running))
        #expect(seen.tunFlags == InterfaceFlags(rawValue: tun.flags.rawValue & 0xFFFF))
        // A TUN device has no link-layer address, so getifaddrs gives none.
        #expect(tun.hardwareAddress == nil)
        let peer = try #require(tun.addresses.first)
        #expect(peer.ipAddress == .v4(IPv4Address(10, 78, 0, 1)))
        #expect(peer.destination == .v4(IPv4Address(10, 78, 0, 2)))
        #expect(peer.broadcast == nil)
        #expect(peer.prefixLength == 32)
    }
}
