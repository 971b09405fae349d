import Glibc
import CSocketShims

// Options that belong with control messages and batching and that the option tables do not
// list yet: UDP segmentation offload, and the IPv6 original-destination report.

extension SocketOption where Value == Int {
    /// Generic segmentation offload for every send on this UDP socket: the kernel splits each
    /// send into datagrams of this many bytes (0 turns it off). For one send only, pass
    /// ``ControlMessage/segmentSize(_:)``. Fails with `ENOPROTOOPT` where the kernel lacks
    /// UDP GSO: `UDP_SEGMENT`.
    public static var udpSegmentSize: Self { Self(Int32(SOL_UDP), Int32(UDP_SEGMENT), "UDP_SEGMENT", .int(0...65535, "segment size")) }
}

extension SocketOption where Value == Bool {
    /// Generic receive offload for this UDP socket: the kernel may coalesce datagrams of equal
    /// size into one receive, reported with a ``ControlMessage/receivedSegmentSize(_:)``
    /// control message: `UDP_GRO`.
    public static var udpReceiveOffload: Self { Self(Int32(SOL_UDP), Int32(UDP_GRO), "UDP_GRO", .bool) }

    /// Receives each datagram's original destination address as an `IPV6_ORIGDSTADDR`
    /// control message (``ControlMessage/originalDestination(_:)``): `IPV6_RECVORIGDSTADDR`.
    public static var ipv6ReceiveOriginalDestinationAddress: Self {
        Self(Int32(SOL_IPV6), IPV6_RECVORIGDSTADDR, "IPV6_RECVORIGDSTADDR", .bool)
    }
}
