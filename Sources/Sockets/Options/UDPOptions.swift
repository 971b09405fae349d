import Glibc
import CSocketShims

// UDP segmentation and receive offload (`SOL_UDP`); their per-message forms are the control
// messages ``ControlMessage/segmentSize(_:)`` and ``ControlMessage/receivedSegmentSize(_:)``.

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
}
