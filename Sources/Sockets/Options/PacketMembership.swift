import Glibc
import CSocketShims
import SocketSyscalls
import SystemPackage

/// What an `AF_PACKET` socket asks an interface to receive beyond its own frames
/// (`struct packet_mreq`, `PACKET_MR_*`). The kernel counts memberships, so the interface
/// returns to normal when the last socket holding one drops it or closes.
public enum PacketMembership: Hashable, Sendable, CustomStringConvertible {
    /// `PACKET_MR_PROMISC`: every frame on the wire, whoever it is for.
    case promiscuous
    /// `PACKET_MR_ALLMULTI`: every link-layer multicast frame.
    case allMulticast
    /// `PACKET_MR_MULTICAST`: one link-layer multicast address (at most 8 bytes).
    case multicast([UInt8])
    /// `PACKET_MR_UNICAST`: one extra unicast address (at most 8 bytes).
    case unicast([UInt8])

    public var description: String {
        switch self {
        case .promiscuous: return "PACKET_MR_PROMISC"
        case .allMulticast: return "PACKET_MR_ALLMULTI"
        case .multicast(let address): return "PACKET_MR_MULTICAST(\(address.count) bytes)"
        case .unicast(let address): return "PACKET_MR_UNICAST(\(address.count) bytes)"
        }
    }

    /// The request for `interfaceIndex`.
    func request(interfaceIndex: Int32) throws(SocketError) -> packet_mreq {
        var request = packet_mreq()
        request.mr_ifindex = interfaceIndex
        let address: [UInt8]
        switch self {
        case .promiscuous:
            request.mr_type = UInt16(PACKET_MR_PROMISC)
            address = []
        case .allMulticast:
            request.mr_type = UInt16(PACKET_MR_ALLMULTI)
            address = []
        case .multicast(let bytes):
            request.mr_type = UInt16(PACKET_MR_MULTICAST)
            address = bytes
        case .unicast(let bytes):
            request.mr_type = UInt16(PACKET_MR_UNICAST)
            address = bytes
        }
        guard address.count <= 8 else {
            throw SocketError.invalid("setsockopt(PACKET_ADD_MEMBERSHIP)", description, "a hardware address holds at most 8 bytes")
        }
        request.mr_alen = UInt16(address.count)
        withUnsafeMutableBytes(of: &request.mr_address) { $0.copyBytes(from: address) }
        return request
    }
}

extension Socket {
    /// Adds a membership to an `AF_PACKET` socket: `setsockopt(SOL_PACKET,
    /// PACKET_ADD_MEMBERSHIP)`. It lasts until dropped or until the socket closes.
    public func addPacketMembership(_ membership: PacketMembership, interfaceIndex: Int32) throws(SocketError) {
        var request = try membership.request(interfaceIndex: interfaceIndex)
        try call("setsockopt(PACKET_ADD_MEMBERSHIP)", address: membership.description) { fd throws(Errno) in
            try Syscall.setsockopt(fd, level: SOL_PACKET, name: PACKET_ADD_MEMBERSHIP, &request, socklen_t(MemoryLayout<packet_mreq>.size))
        }
    }

    /// Drops a membership added with ``addPacketMembership(_:interfaceIndex:)``:
    /// `setsockopt(SOL_PACKET, PACKET_DROP_MEMBERSHIP)`.
    public func dropPacketMembership(_ membership: PacketMembership, interfaceIndex: Int32) throws(SocketError) {
        var request = try membership.request(interfaceIndex: interfaceIndex)
        try call("setsockopt(PACKET_DROP_MEMBERSHIP)", address: membership.description) { fd throws(Errno) in
            try Syscall.setsockopt(fd, level: SOL_PACKET, name: PACKET_DROP_MEMBERSHIP, &request, socklen_t(MemoryLayout<packet_mreq>.size))
        }
    }
}
