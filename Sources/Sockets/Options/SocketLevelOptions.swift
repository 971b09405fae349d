import Glibc
public import SystemPackage

private let socketLevel = Int32(SOL_SOCKET)
private let intRange = 0...Int(Int32.max)

// MARK: - Flags

extension SocketOption where Value == Bool {
    /// Allows binding to a local address that is still in use by a connection in TIME_WAIT
    /// (and, for UDP, sharing an address): `SO_REUSEADDR`.
    public static var reuseAddress: Self { Self(socketLevel, SO_REUSEADDR, "SO_REUSEADDR", .bool) }
    /// Lets several sockets of the same user bind the same address and port, with the kernel
    /// spreading connections or datagrams across them: `SO_REUSEPORT`. Set it on every socket
    /// before `bind`.
    public static var reusePort: Self { Self(socketLevel, SO_REUSEPORT, "SO_REUSEPORT", .bool) }
    /// Sends keepalive probes on an idle connection: `SO_KEEPALIVE`. See also
    /// ``Socket/setKeepalive(_:)`` for the timing.
    public static var keepAlive: Self { Self(socketLevel, SO_KEEPALIVE, "SO_KEEPALIVE", .bool) }
    /// Allows sending to a broadcast address (UDP): `SO_BROADCAST`.
    public static var broadcast: Self { Self(socketLevel, SO_BROADCAST, "SO_BROADCAST", .bool) }
    /// Delivers TCP urgent data inline with the normal data instead of via `MSG_OOB`:
    /// `SO_OOBINLINE`.
    public static var outOfBandInline: Self { Self(socketLevel, SO_OOBINLINE, "SO_OOBINLINE", .bool) }
    /// Receives the sender's credentials (`SCM_CREDENTIALS`) with each message on a Unix
    /// socket: `SO_PASSCRED`. Other families refuse it with `EOPNOTSUPP`.
    public static var passCredentials: Self { Self(socketLevel, SO_PASSCRED, "SO_PASSCRED", .bool) }
    /// Receives each packet's arrival time as a `struct timeval` control message
    /// (`SCM_TIMESTAMP`): `SO_TIMESTAMP`.
    public static var timestamp: Self { Self(socketLevel, SO_TIMESTAMP, "SO_TIMESTAMP", .bool) }
    /// Receives each packet's arrival time as a `struct timespec` control message
    /// (`SCM_TIMESTAMPNS`): `SO_TIMESTAMPNS`.
    public static var timestampNanoseconds: Self { Self(socketLevel, SO_TIMESTAMPNS, "SO_TIMESTAMPNS", .bool) }
    /// Allows `MSG_ZEROCOPY` sends (TCP and UDP; completions arrive on the error queue):
    /// `SO_ZEROCOPY`.
    public static var zeroCopy: Self { Self(socketLevel, SO_ZEROCOPY, "SO_ZEROCOPY", .bool) }
    /// Bypasses the routing table and sends only to directly connected hosts, as
    /// `MSG_DONTROUTE` does per call: `SO_DONTROUTE`.
    public static var dontRoute: Self { Self(socketLevel, SO_DONTROUTE, "SO_DONTROUTE", .bool) }
    /// Enables the protocol's debugging (TCP keeps a trace); setting it needs `CAP_NET_ADMIN`:
    /// `SO_DEBUG`.
    public static var debug: Self { Self(socketLevel, SO_DEBUG, "SO_DEBUG", .bool) }
}

// MARK: - Sizes and numbers

extension SocketOption where Value == Int {
    /// The receive buffer size in bytes: `SO_RCVBUF`.
    ///
    /// Linux doubles the value set (to leave room for its bookkeeping) and caps it at
    /// `net.core.rmem_max` first, so `set(.receiveBufferSize, 100_000)` reads back 200000. To go
    /// past the cap, see ``WriteOnlySocketOption/forcedReceiveBufferSize``. Setting it turns
    /// off the kernel's automatic tuning for TCP.
    public static var receiveBufferSize: Self { Self(socketLevel, SO_RCVBUF, "SO_RCVBUF", .int(intRange, "buffer size")) }
    /// The send buffer size in bytes: `SO_SNDBUF`. Doubled and capped at `net.core.wmem_max`
    /// like ``receiveBufferSize``.
    public static var sendBufferSize: Self { Self(socketLevel, SO_SNDBUF, "SO_SNDBUF", .int(intRange, "buffer size")) }
    /// The fewest bytes a receive waits for before returning (and before the socket polls as
    /// readable): `SO_RCVLOWAT`. Linux honours it for TCP; the default is 1.
    public static var receiveLowWatermark: Self { Self(socketLevel, SO_RCVLOWAT, "SO_RCVLOWAT", .int(intRange, "low watermark")) }
    /// The socket's priority for queueing discipline and VLAN mapping: `SO_PRIORITY`. Values
    /// outside 0...6 need `CAP_NET_ADMIN`.
    public static var priority: Self { Self(socketLevel, SO_PRIORITY, "SO_PRIORITY", .int(intRange, "priority")) }
}

extension SocketOption where Value == Int? {
    /// The CPU that handled the socket's most recent incoming packet; `nil` before any packet.
    /// Setting it steers `SO_REUSEPORT` groups toward a CPU: `SO_INCOMING_CPU`.
    public static var incomingCPU: Self { Self(socketLevel, SO_INCOMING_CPU, "SO_INCOMING_CPU", .intOrOff(intRange, "CPU")) }
    /// The offset at which `MSG_PEEK` starts reading, advanced by each peek and by each
    /// receive; `nil` (-1) turns peeking with an offset off: `SO_PEEK_OFF`. Supported by Unix,
    /// UDP and (since Linux 6.8) TCP sockets.
    public static var peekOffset: Self { Self(socketLevel, SO_PEEK_OFF, "SO_PEEK_OFF", .intOrOff(intRange, "peek offset")) }
}

extension SocketOption where Value == UInt32 {
    /// The firewall mark put on outgoing packets, for policy routing and nftables; needs
    /// `CAP_NET_ADMIN` or `CAP_NET_RAW`: `SO_MARK`.
    public static var mark: Self { Self(socketLevel, SO_MARK, "SO_MARK", .uint32) }
    /// Restricts the socket to one interface, by index (0 removes the restriction):
    /// `SO_BINDTOIFINDEX`. See ``bindToDevice`` for the same by name.
    public static var bindToInterfaceIndex: Self { Self(socketLevel, SO_BINDTOIFINDEX, "SO_BINDTOIFINDEX", .interfaceIndex) }
}

extension SocketOption where Value == String {
    /// Restricts the socket to one interface, by name (at most 15 bytes, as `IFNAMSIZ` is 16);
    /// the empty string removes the restriction and is what an unbound socket reports:
    /// `SO_BINDTODEVICE`.
    public static var bindToDevice: Self { Self(socketLevel, SO_BINDTODEVICE, "SO_BINDTODEVICE", .name(maximumBytes: 15, "interface name")) }
}

// MARK: - Times

extension SocketOption where Value == Duration? {
    /// What `close` does with unsent data: `nil` (the default) returns at once and lets the
    /// kernel finish sending; a duration makes `close` wait up to that many whole seconds for
    /// the data to be acknowledged; `.zero` makes `close` reset the connection (RST) and drop
    /// unsent data: `SO_LINGER`.
    public static var linger: Self { Self(socketLevel, SO_LINGER, "SO_LINGER", .linger) }
    /// How long a blocking receive waits before failing with `EAGAIN`
    /// (``SocketError/isWouldBlock``); `nil` waits forever: `SO_RCVTIMEO`. Zero and negative
    /// durations are rejected (use `nil`). The kernel keeps it in clock ticks, so it reads back
    /// rounded up to a tick (4 ms at `HZ=250`).
    public static var receiveTimeout: Self { Self(socketLevel, SO_RCVTIMEO, "SO_RCVTIMEO", .timeval) }
    /// How long a blocking send waits before failing with `EAGAIN`; `nil` waits forever:
    /// `SO_SNDTIMEO`.
    public static var sendTimeout: Self { Self(socketLevel, SO_SNDTIMEO, "SO_SNDTIMEO", .timeval) }
}

extension SocketOption where Value == Duration {
    /// How long a blocking receive may busy-poll the device queue before sleeping, in whole
    /// microseconds (0 turns it off); raising it needs `CAP_NET_ADMIN`: `SO_BUSY_POLL`.
    public static var busyPoll: Self { Self(socketLevel, SO_BUSY_POLL, "SO_BUSY_POLL", .duration(.microseconds, 0...Int64(Int32.max))) }
}

extension SocketOption where Value == TimestampingFlags {
    /// Which packet timestamps the kernel records and how it reports them: `SO_TIMESTAMPING`.
    /// Receive timestamps arrive as `SCM_TIMESTAMPING` control messages; send timestamps on
    /// the error queue (`MSG_ERRQUEUE`).
    public static var timestamping: Self { Self(socketLevel, SO_TIMESTAMPING, "SO_TIMESTAMPING", .timestampingFlags) }
}

// MARK: - Write-only

extension WriteOnlySocketOption where Value == Int {
    /// Sets the receive buffer size ignoring `net.core.rmem_max`; needs `CAP_NET_ADMIN`:
    /// `SO_RCVBUFFORCE`. Linux doubles it like ``SocketOption/receiveBufferSize``, which is
    /// how to read it back.
    public static var forcedReceiveBufferSize: Self { Self(socketLevel, SO_RCVBUFFORCE, "SO_RCVBUFFORCE", .int(intRange, "buffer size")) }
    /// Sets the send buffer size ignoring `net.core.wmem_max`; needs `CAP_NET_ADMIN`:
    /// `SO_SNDBUFFORCE`. Read it back with ``SocketOption/sendBufferSize``.
    public static var forcedSendBufferSize: Self { Self(socketLevel, SO_SNDBUFFORCE, "SO_SNDBUFFORCE", .int(intRange, "buffer size")) }
}

// MARK: - Read-only

extension ReadOnlySocketOption where Value == Int {
    /// The send low watermark: `SO_SNDLOWAT`. Linux reports 1 and refuses to change it
    /// (`setsockopt` fails with `ENOPROTOOPT`), so it is read-only here.
    public static var sendLowWatermark: Self { Self(socketLevel, SO_SNDLOWAT, "SO_SNDLOWAT", .int(intRange)) }
}

extension ReadOnlySocketOption where Value == Bool {
    /// Whether the socket is listening for connections (`listen` was called): `SO_ACCEPTCONN`.
    public static var listening: Self { Self(socketLevel, SO_ACCEPTCONN, "SO_ACCEPTCONN", .bool) }
}

extension ReadOnlySocketOption where Value == SocketType {
    /// The socket's type, such as ``SocketType/stream``: `SO_TYPE`.
    public static var socketType: Self { Self(socketLevel, SO_TYPE, "SO_TYPE", .rawInt) }
}

extension ReadOnlySocketOption where Value == SocketDomain {
    /// The socket's address family, such as ``SocketDomain/inet6``: `SO_DOMAIN`.
    public static var socketDomain: Self { Self(socketLevel, SO_DOMAIN, "SO_DOMAIN", .rawInt) }
}

extension ReadOnlySocketOption where Value == SocketProtocol {
    /// The socket's protocol, such as ``SocketProtocol/tcp`` (0 for Unix sockets): `SO_PROTOCOL`.
    public static var socketProtocol: Self { Self(socketLevel, SO_PROTOCOL, "SO_PROTOCOL", .rawInt) }
}

extension ReadOnlySocketOption where Value == Errno? {
    /// The pending error, which reading clears; `nil` when there is none: `SO_ERROR`.
    /// ``Socket/takeError()`` does the same.
    public static var pendingError: Self { Self(socketLevel, SO_ERROR, "SO_ERROR", .pendingError) }
}

extension ReadOnlySocketOption where Value == PeerCredentials {
    /// The process id, user id and group id of the peer of a connected Unix socket (or of the
    /// other end of a `socketpair`), recorded when it connected: `SO_PEERCRED`.
    public static var peerCredentials: Self { Self(socketLevel, SO_PEERCRED, "SO_PEERCRED", .peerCredentials) }
}

extension ReadOnlySocketOption where Value == UInt64 {
    /// A number that identifies the socket for as long as the kernel runs, as shown by
    /// `ss -e` and used by BPF programs: `SO_COOKIE`.
    public static var cookie: Self { Self(socketLevel, SO_COOKIE, "SO_COOKIE", .uint64) }
}

// MARK: - Introspection

extension Socket {
    /// The socket's type: `getsockopt(SO_TYPE)`.
    public func type() throws(SocketError) -> SocketType {
        try get(.socketType)
    }

    /// The socket's address family: `getsockopt(SO_DOMAIN)`.
    public func domain() throws(SocketError) -> SocketDomain {
        try get(.socketDomain)
    }

    /// The socket's protocol: `getsockopt(SO_PROTOCOL)`.
    public func `protocol`() throws(SocketError) -> SocketProtocol {
        try get(.socketProtocol)
    }

    /// Whether the socket is listening: `getsockopt(SO_ACCEPTCONN)`.
    public func isListening() throws(SocketError) -> Bool {
        try get(.listening)
    }
}
