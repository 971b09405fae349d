import Glibc
import CSocketShims

private let tcpLevel = Int32(IPPROTO_TCP)
private let intRange = 0...Int(Int32.max)

extension SocketOption where Value == Bool {
    /// Sends small segments at once instead of waiting to coalesce them (turns off Nagle's
    /// algorithm): `TCP_NODELAY`.
    public static var tcpNoDelay: Self { Self(tcpLevel, TCP_NODELAY, "TCP_NODELAY", .bool) }
    /// Holds back partial segments until uncorked (or 200 ms pass), to send headers and body in
    /// full segments: `TCP_CORK`.
    public static var tcpCork: Self { Self(tcpLevel, TCP_CORK, "TCP_CORK", .bool) }
    /// Acknowledges at once rather than delaying ACKs. The kernel may leave quick-ack mode on
    /// its own, so it is not a permanent setting: `TCP_QUICKACK`.
    public static var tcpQuickAck: Self { Self(tcpLevel, TCP_QUICKACK, "TCP_QUICKACK", .bool) }
    /// Sends data in the SYN of the next `connect` when a Fast Open cookie is known
    /// (`connect` returns at once; the first write goes in the SYN). Needs client Fast Open
    /// enabled in `net.ipv4.tcp_fastopen`: `TCP_FASTOPEN_CONNECT`.
    public static var tcpFastOpenConnect: Self { Self(tcpLevel, TCP_FASTOPEN_CONNECT, "TCP_FASTOPEN_CONNECT", .bool) }
    /// Uses linear (not exponential) retransmission timeouts while the stream is "thin" (few
    /// packets in flight): `TCP_THIN_LINEAR_TIMEOUTS`.
    public static var tcpThinLinearTimeouts: Self { Self(tcpLevel, TCP_THIN_LINEAR_TIMEOUTS, "TCP_THIN_LINEAR_TIMEOUTS", .bool) }
    /// Adds a `TCP_CM_INQ` control message to each `recvmsg` saying how many bytes are left
    /// to read (``ControlMessage/tcpUnreadBytes(_:)``): `TCP_INQ`.
    public static var tcpReportUnreadBytes: Self { Self(tcpLevel, TCP_INQ, "TCP_INQ", .bool) }
}

extension SocketOption where Value == Int {
    /// Unanswered keepalive probes before the connection is dropped, 1...127:
    /// `TCP_KEEPCNT`.
    public static var tcpKeepCount: Self { Self(tcpLevel, TCP_KEEPCNT, "TCP_KEEPCNT", .int(1...127, "probe count")) }
    /// The maximum segment size: `TCP_MAXSEG`. Before connecting it sets the MSS to announce
    /// (0 or 88...32767) and reads back what was set (536 if nothing was); once connected it
    /// reads the MSS in use, which is smaller by the TCP options (12 bytes for timestamps).
    public static var tcpMaxSegment: Self { Self(tcpLevel, TCP_MAXSEG, "TCP_MAXSEG", .int(oneOf: [0...0, 88...32767], "segment size")) }
    /// The length of the queue of Fast Open connections not yet accepted, on a listener;
    /// 0 turns server Fast Open off: `TCP_FASTOPEN`.
    public static var tcpFastOpen: Self { Self(tcpLevel, TCP_FASTOPEN, "TCP_FASTOPEN", .int(intRange, "queue length")) }
    /// How many bytes may sit unsent in the send buffer before the socket stops polling as
    /// writable, 0...4294967295; 0 (what a new socket reads) uses `net.ipv4.tcp_notsent_lowat`,
    /// whose default, 4294967295, means no limit: `TCP_NOTSENT_LOWAT`.
    public static var tcpNotSentLowWatermark: Self {
        Self(tcpLevel, TCP_NOTSENT_LOWAT, "TCP_NOTSENT_LOWAT", .unsigned(0...Int(UInt32.max), "low watermark"))
    }
    /// How many SYNs to send before giving up on a connect, 1...127: `TCP_SYNCNT`.
    public static var tcpSynCount: Self { Self(tcpLevel, TCP_SYNCNT, "TCP_SYNCNT", .int(1...127, "SYN count")) }
    /// The largest receive window to advertise, in bytes (0: no clamp; the kernel raises
    /// small values to half the minimum receive buffer): `TCP_WINDOW_CLAMP`.
    public static var tcpWindowClamp: Self { Self(tcpLevel, TCP_WINDOW_CLAMP, "TCP_WINDOW_CLAMP", .int(intRange, "window clamp")) }
}

extension SocketOption where Value == Duration {
    /// Idle time before the first keepalive probe, whole seconds 1...32767: `TCP_KEEPIDLE`.
    public static var tcpKeepIdle: Self { Self(tcpLevel, TCP_KEEPIDLE, "TCP_KEEPIDLE", .duration(.seconds, 1...32767)) }
    /// Time between keepalive probes, whole seconds 1...32767: `TCP_KEEPINTVL`.
    public static var tcpKeepInterval: Self { Self(tcpLevel, TCP_KEEPINTVL, "TCP_KEEPINTVL", .duration(.seconds, 1...32767)) }
    /// How long sent data may stay unacknowledged before the connection is dropped with
    /// `ETIMEDOUT`, in whole milliseconds; zero uses the system's retransmission limits:
    /// `TCP_USER_TIMEOUT`.
    public static var tcpUserTimeout: Self { Self(tcpLevel, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT", .duration(.milliseconds, 0...Int64(Int32.max))) }
    /// On a listener, wake `accept` only when data arrives, waiting up to this many whole
    /// seconds (zero turns it off): `TCP_DEFER_ACCEPT`. The kernel counts SYN-ACK
    /// retransmissions, so it reads back rounded up to the end of one (5 s reads as 7 s).
    public static var tcpDeferAccept: Self { Self(tcpLevel, TCP_DEFER_ACCEPT, "TCP_DEFER_ACCEPT", .duration(.seconds, intRange64)) }
}

private let intRange64 = 0...Int64(Int32.max)

extension SocketOption where Value == Duration? {
    /// How long an orphaned connection stays in FIN_WAIT2: whole seconds, capped by the
    /// kernel at 120; zero uses `net.ipv4.tcp_fin_timeout` (and reads back as that value);
    /// `nil` (-1) skips FIN_WAIT2 and resets the connection: `TCP_LINGER2`.
    public static var tcpFinWait2Timeout: Self { Self(tcpLevel, TCP_LINGER2, "TCP_LINGER2", .secondsOrOff(intRange64)) }
}

extension SocketOption where Value == String {
    /// The congestion control algorithm, such as `cubic` or `bbr` (at most 15 bytes); the
    /// choices are in `net.ipv4.tcp_available_congestion_control`, and an unknown name fails
    /// with `ENOENT`: `TCP_CONGESTION`.
    public static var tcpCongestion: Self { Self(tcpLevel, TCP_CONGESTION, "TCP_CONGESTION", .name(maximumBytes: 15, "algorithm name")) }
}

extension ReadOnlySocketOption where Value == Bool {
    /// Whether the socket runs multipath TCP: true on an ``SocketProtocol/mptcp`` socket that
    /// has not fallen back to plain TCP, false on a TCP socket and on an MPTCP one whose peer
    /// did not answer in MPTCP: `TCP_IS_MPTCP` (Linux 5.16; older kernels fail with
    /// `ENOPROTOOPT`).
    public static var tcpIsMultipath: Self { Self(tcpLevel, tcpIsMPTCP, "TCP_IS_MPTCP", .bool) }
}

/// `TCP_IS_MPTCP` from <linux/tcp.h>, newer than the C headers this builds against.
private let tcpIsMPTCP: Int32 = 43

extension ReadOnlySocketOption where Value == TCPInfo {
    /// The connection's state and statistics (`struct tcp_info`): `TCP_INFO`.
    public static var tcpInfo: Self { Self(tcpLevel, TCP_INFO, "TCP_INFO", .tcpInfo) }
}

// MARK: - Keepalive

extension Socket {
    /// Turns TCP keepalive on with the given timing, or off with `nil`: `SO_KEEPALIVE`, then
    /// `TCP_KEEPIDLE`, `TCP_KEEPINTVL` and `TCP_KEEPCNT` for the fields that are set.
    ///
    /// ```swift
    /// try socket.setKeepalive(TCPKeepalive(idle: .seconds(30), interval: .seconds(5), count: 3))
    /// ```
    /// Every value is checked before any system call.
    public func setKeepalive(_ keepalive: TCPKeepalive?) throws(SocketError) {
        guard let keepalive else { return try set(.keepAlive, false) }
        if let idle = keepalive.idle { try validate(.tcpKeepIdle, idle) }
        if let interval = keepalive.interval { try validate(.tcpKeepInterval, interval) }
        if let count = keepalive.count { try validate(.tcpKeepCount, count) }
        if let idle = keepalive.idle { try set(.tcpKeepIdle, idle) }
        if let interval = keepalive.interval { try set(.tcpKeepInterval, interval) }
        if let count = keepalive.count { try set(.tcpKeepCount, count) }
        try set(.keepAlive, true)
    }

    /// The keepalive settings in effect, or `nil` when keepalive is off (`SO_KEEPALIVE`,
    /// `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`).
    public func keepalive() throws(SocketError) -> TCPKeepalive? {
        guard try get(.keepAlive) else { return nil }
        return TCPKeepalive(idle: try get(.tcpKeepIdle), interval: try get(.tcpKeepInterval), count: try get(.tcpKeepCount))
    }
}
