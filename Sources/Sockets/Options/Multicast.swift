import Glibc
import SocketSyscalls
import SystemPackage

// Multicast group membership. Joining tells the kernel (and, through IGMP/MLD, the network)
// that this socket wants a group's datagrams; a socket must also be bound to the group's port
// to receive them. Memberships end when the socket closes.

extension Socket {
    // MARK: IPv4, any source

    /// Joins an IPv4 multicast group on the interface that has the address `interface`
    /// (``IPv4Address/any``: the interface the routing table picks for the group):
    /// `setsockopt(IP_ADD_MEMBERSHIP)` with a `struct ip_mreqn`.
    ///
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` if `group` is not in 224.0.0.0/4;
    ///   `EADDRINUSE` if this socket already joined it there; `ENODEV` if no interface has that
    ///   address.
    public func joinMulticastGroup(_ group: IPv4Address, interface: IPv4Address = .any) throws(SocketError) {
        try changeMembership(IP_ADD_MEMBERSHIP, "IP_ADD_MEMBERSHIP", group, address: interface, index: 0)
    }

    /// Joins an IPv4 multicast group on the interface with this index:
    /// `setsockopt(IP_ADD_MEMBERSHIP)` with a `struct ip_mreqn`.
    public func joinMulticastGroup(_ group: IPv4Address, interfaceIndex: UInt32) throws(SocketError) {
        try changeMembership(IP_ADD_MEMBERSHIP, "IP_ADD_MEMBERSHIP", group, address: .any, index: interfaceIndex)
    }

    /// Leaves an IPv4 multicast group joined with ``joinMulticastGroup(_:interface:)``:
    /// `setsockopt(IP_DROP_MEMBERSHIP)`. `EADDRNOTAVAIL` if it was not joined there.
    public func leaveMulticastGroup(_ group: IPv4Address, interface: IPv4Address = .any) throws(SocketError) {
        try changeMembership(IP_DROP_MEMBERSHIP, "IP_DROP_MEMBERSHIP", group, address: interface, index: 0)
    }

    /// Leaves an IPv4 multicast group joined by interface index: `setsockopt(IP_DROP_MEMBERSHIP)`.
    public func leaveMulticastGroup(_ group: IPv4Address, interfaceIndex: UInt32) throws(SocketError) {
        try changeMembership(IP_DROP_MEMBERSHIP, "IP_DROP_MEMBERSHIP", group, address: .any, index: interfaceIndex)
    }

    // MARK: IPv4, source-specific

    /// Joins an IPv4 group for datagrams from one source only (source-specific multicast,
    /// RFC 4607; usually a group in 232.0.0.0/8): `setsockopt(IP_ADD_SOURCE_MEMBERSHIP)` with a
    /// `struct ip_mreq_source`. Call it once per source wanted.
    public func joinMulticastGroup(_ group: IPv4Address, source: IPv4Address, interface: IPv4Address = .any) throws(SocketError) {
        try changeSourceMembership(IP_ADD_SOURCE_MEMBERSHIP, "IP_ADD_SOURCE_MEMBERSHIP", group, source: source, interface: interface)
    }

    /// Stops receiving a group from one source: `setsockopt(IP_DROP_SOURCE_MEMBERSHIP)`. When
    /// the last source goes, so does the membership.
    public func leaveMulticastGroup(_ group: IPv4Address, source: IPv4Address, interface: IPv4Address = .any) throws(SocketError) {
        try changeSourceMembership(IP_DROP_SOURCE_MEMBERSHIP, "IP_DROP_SOURCE_MEMBERSHIP", group, source: source, interface: interface)
    }

    /// Ignores one source of a group joined with ``joinMulticastGroup(_:interface:)``:
    /// `setsockopt(IP_BLOCK_SOURCE)`.
    public func blockMulticastSource(_ source: IPv4Address, group: IPv4Address, interface: IPv4Address = .any) throws(SocketError) {
        try changeSourceMembership(IP_BLOCK_SOURCE, "IP_BLOCK_SOURCE", group, source: source, interface: interface)
    }

    /// Receives a blocked source again: `setsockopt(IP_UNBLOCK_SOURCE)`.
    public func unblockMulticastSource(_ source: IPv4Address, group: IPv4Address, interface: IPv4Address = .any) throws(SocketError) {
        try changeSourceMembership(IP_UNBLOCK_SOURCE, "IP_UNBLOCK_SOURCE", group, source: source, interface: interface)
    }

    // MARK: IPv6

    /// Joins an IPv6 multicast group on the interface with this index (0: the interface the
    /// routing table picks): `setsockopt(IPV6_JOIN_GROUP)` with a `struct ipv6_mreq`.
    ///
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` if `group` is not in ff00::/8;
    ///   `ENODEV` for an unknown interface; `EADDRINUSE` if already joined there.
    public func joinMulticastGroup(_ group: IPv6Address, interfaceIndex: UInt32 = 0) throws(SocketError) {
        try changeMembership(IPV6_JOIN_GROUP, "IPV6_JOIN_GROUP", group, interfaceIndex: interfaceIndex)
    }

    /// Leaves an IPv6 multicast group: `setsockopt(IPV6_LEAVE_GROUP)`.
    public func leaveMulticastGroup(_ group: IPv6Address, interfaceIndex: UInt32 = 0) throws(SocketError) {
        try changeMembership(IPV6_LEAVE_GROUP, "IPV6_LEAVE_GROUP", group, interfaceIndex: interfaceIndex)
    }

    // MARK: Implementation

    private func changeMembership(_ name: Int32, _ cName: String, _ group: IPv4Address, address: IPv4Address, index: UInt32) throws(SocketError) {
        let operation = "setsockopt(\(cName))"
        let target = index == 0 ? "\(group) on \(address)" : "\(group) on interface \(index)"
        guard group.isMulticast else {
            throw SocketError.invalid(operation, target, "\(group) is not a multicast address (224.0.0.0/4)")
        }
        guard let rawIndex = Int32(exactly: index) else {
            throw SocketError.invalid(operation, target, "interface index \(index) is over \(Int32.max)")
        }
        var request = ip_mreqn(
            imr_multiaddr: in_addr(s_addr: group.value.bigEndian),
            imr_address: in_addr(s_addr: address.value.bigEndian),
            imr_ifindex: rawIndex)
        try optionCall(operation, address: target) { fd throws(Errno) in
            try Syscall.setsockopt(fd, level: Int32(IPPROTO_IP), name: name, &request, socklen_t(MemoryLayout<ip_mreqn>.size))
        }
    }

    private func changeSourceMembership(_ name: Int32, _ cName: String, _ group: IPv4Address, source: IPv4Address, interface: IPv4Address) throws(SocketError) {
        let operation = "setsockopt(\(cName))"
        let target = "\(group) from \(source) on \(interface)"
        guard group.isMulticast else {
            throw SocketError.invalid(operation, target, "\(group) is not a multicast address (224.0.0.0/4)")
        }
        guard !source.isMulticast, !source.isUnspecified, source != .broadcast else {
            throw SocketError.invalid(operation, target, "source \(source) is not a unicast address")
        }
        var request = ip_mreq_source(
            imr_multiaddr: in_addr(s_addr: group.value.bigEndian),
            imr_interface: in_addr(s_addr: interface.value.bigEndian),
            imr_sourceaddr: in_addr(s_addr: source.value.bigEndian))
        try optionCall(operation, address: target) { fd throws(Errno) in
            try Syscall.setsockopt(fd, level: Int32(IPPROTO_IP), name: name, &request, socklen_t(MemoryLayout<ip_mreq_source>.size))
        }
    }

    private func changeMembership(_ name: Int32, _ cName: String, _ group: IPv6Address, interfaceIndex: UInt32) throws(SocketError) {
        let operation = "setsockopt(\(cName))"
        let target = interfaceIndex == 0 ? "\(group)" : "\(group) on interface \(interfaceIndex)"
        guard group.isMulticast else {
            throw SocketError.invalid(operation, target, "\(group) is not a multicast address (ff00::/8)")
        }
        var request = ipv6_mreq(ipv6mr_multiaddr: in6_addr(group), ipv6mr_interface: interfaceIndex)
        try optionCall(operation, address: target) { fd throws(Errno) in
            try Syscall.setsockopt(fd, level: Int32(IPPROTO_IPV6), name: name, &request, socklen_t(MemoryLayout<ipv6_mreq>.size))
        }
    }
}
