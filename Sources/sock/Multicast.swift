import Sockets

/// Multicast for `sock listen -u --multicast` and `sock connect -u --multicast-*`.
enum MulticastSupport {
    /// An interface named on the command line: by IPv4 address (IPv4 groups only), or by index.
    enum Interface: CustomStringConvertible {
        case address(IPv4Address)
        case index(UInt32, name: String)

        var description: String {
            switch self {
            case .address(let address): return "\(address)"
            case .index(let index, let name): return "\(name) (index \(index))"
            }
        }
    }

    /// Parses the groups given with `--multicast`: multicast addresses, all of one family.
    static func groups(_ texts: [String]) throws(ToolError) -> [IPAddress] {
        var groups: [IPAddress] = []
        for text in texts {
            var cleaned = text
            if cleaned.hasPrefix("["), cleaned.hasSuffix("]"), cleaned.count > 2 { cleaned = String(cleaned.dropFirst().dropLast()) }
            let group: IPAddress
            do {
                group = try IPAddress(cleaned)
            } catch {
                throw ToolError.usage("--multicast \(text): not an IPv4 or IPv6 address")
            }
            guard isMulticast(group) else {
                throw ToolError.usage("--multicast \(text): not a multicast address (224.0.0.0/4 or ff00::/8)")
            }
            if let first = groups.first, domain(of: first) != domain(of: group) {
                throw ToolError.usage("--multicast groups must all be IPv4 or all IPv6 (\(first) and \(group))")
            }
            groups.append(group)
        }
        return groups
    }

    static func isMulticast(_ address: IPAddress) -> Bool {
        switch address {
        case .v4(let address): return address.isMulticast
        case .v6(let address): return address.isMulticast
        }
    }

    static func domain(of address: IPAddress) -> SocketDomain {
        if case .v4 = address { return .inet }
        return .inet6
    }

    /// Finds the interface meant by `text`: an address one of the interfaces has (kept as the
    /// address for IPv4, which can join and send by address), an index, or a name.
    static func interface(_ text: String, option: String, family: SocketDomain) throws(ToolError) -> Interface {
        let interfaces: [NetworkInterface]
        do {
            interfaces = try NetworkInterface.list()
        } catch {
            throw ToolError(error)
        }
        if let address = try? IPAddress(text) {
            if case .v4(let v4) = address, family == .inet { return .address(v4) }
            guard let owner = interfaces.first(where: { $0.ipAddresses.contains(address) }) else {
                throw ToolError.usage("\(option) \(text): no interface has this address")
            }
            return .index(owner.index, name: owner.name)
        }
        if !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            guard let index = UInt32(text), let found = interfaces.first(where: { $0.index == index }) else {
                throw ToolError.usage("\(option) \(text): no interface has this index")
            }
            return .index(index, name: found.name)
        }
        guard let found = interfaces.first(where: { $0.name == text }) else {
            let names = interfaces.map(\.name).joined(separator: ", ")
            throw ToolError.usage("\(option) \(text): no such interface (there are: \(names))")
        }
        return .index(found.index, name: found.name)
    }

    /// Joins `group` on `interface` (`nil`: the interface the routing table picks).
    static func join(_ socket: Socket, _ group: IPAddress, on interface: Interface?) throws(ToolError) {
        do {
            switch (group, interface) {
            case (.v4(let group), nil):
                try socket.joinMulticastGroup(group, interface: .any)
            case (.v4(let group), .address(let address)?):
                try socket.joinMulticastGroup(group, interface: address)
            case (.v4(let group), .index(let index, _)?):
                try socket.joinMulticastGroup(group, interfaceIndex: index)
            case (.v6(let group), nil):
                try socket.joinMulticastGroup(group, interfaceIndex: 0)
            case (.v6(let group), .index(let index, _)?):
                try socket.joinMulticastGroup(group, interfaceIndex: index)
            case (.v6, .address?):
                throw ToolError.usage("an IPv6 group needs an interface name or index, not an IPv4 address")
            }
        } catch let error as ToolError {
            throw error
        } catch {
            throw ToolError(error)
        }
    }

    /// Makes a listener receive only the groups it joined, not every group some other socket
    /// on the host joined on its port (`IP_MULTICAST_ALL`, on by default in Linux).
    static func receiveOnlyJoinedGroups(_ socket: Socket, family: SocketDomain) throws(ToolError) {
        do {
            if family == .inet {
                try socket.set(.multicastAll, false)
            } else {
                try socket.set(.ipv6MulticastAll, false)
            }
        } catch {
            throw ToolError(error)
        }
    }

    /// Sets how a sending socket sends multicast: TTL (hop limit), loopback, interface.
    static func configureSender(
        _ socket: Socket, family: SocketDomain, timeToLive: Int?, loop: Bool?, interface: Interface?
    ) throws(SocketError) {
        if family == .inet {
            if let timeToLive { try socket.set(.multicastTimeToLive, timeToLive) }
            if let loop { try socket.set(.multicastLoop, loop) }
            switch interface {
            case .address(let address)?: try socket.set(.multicastInterface, address)
            case .index(let index, _)?: try socket.setMulticastInterface(index: index)
            case nil: break
            }
        } else {
            if let timeToLive { try socket.set(.ipv6MulticastHops, timeToLive) }
            if let loop { try socket.set(.ipv6MulticastLoop, loop) }
            if case .index(let index, _)? = interface { try socket.set(.ipv6MulticastInterface, index) }
        }
    }
}
