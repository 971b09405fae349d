/// A TCP connection state (`TCP_ESTABLISHED`, `TCP_LISTEN`, ... in `<netinet/tcp.h>`).
public struct TCPState: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The kernel's number for the state.
    public let rawValue: UInt8
    /// A state from its number.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `TCP_ESTABLISHED`: connected; data flows both ways.
    public static let established = TCPState(rawValue: 1)
    /// `TCP_SYN_SENT`: connecting; the SYN is out, waiting for SYN-ACK.
    public static let synSent = TCPState(rawValue: 2)
    /// `TCP_SYN_RECV`: a SYN arrived and a SYN-ACK went out.
    public static let synReceived = TCPState(rawValue: 3)
    /// `TCP_FIN_WAIT1`: this side closed; its FIN is not yet acknowledged.
    public static let finWait1 = TCPState(rawValue: 4)
    /// `TCP_FIN_WAIT2`: this side's FIN was acknowledged; waiting for the peer's FIN.
    public static let finWait2 = TCPState(rawValue: 5)
    /// `TCP_TIME_WAIT`: both sides closed; waiting out stray segments.
    public static let timeWait = TCPState(rawValue: 6)
    /// `TCP_CLOSE`: not connected (a new or fully closed socket).
    public static let closed = TCPState(rawValue: 7)
    /// `TCP_CLOSE_WAIT`: the peer closed (end-of-file read); this side has not.
    public static let closeWait = TCPState(rawValue: 8)
    /// `TCP_LAST_ACK`: both closed, the peer first; waiting for the last ACK.
    public static let lastAck = TCPState(rawValue: 9)
    /// `TCP_LISTEN`: a listening socket.
    public static let listen = TCPState(rawValue: 10)
    /// `TCP_CLOSING`: both sides closed at the same time.
    public static let closing = TCPState(rawValue: 11)

    public var description: String {
        let names = ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"]
        let index = Int(rawValue) - 1
        return names.indices.contains(index) ? names[index] : "TCP state \(rawValue)"
    }
}

/// A snapshot of a TCP connection's state and statistics: `getsockopt(TCP_INFO)`, read with
/// `socket.get(.tcpInfo)`.
///
/// The fields up to ``totalRetransmissions`` are those of glibc's `struct tcp_info`, which
/// every supported kernel fills in. Later kernels append more; those fields are optional and
/// `nil` when the running kernel did not supply them. ``rawBytes`` holds everything the kernel
/// returned, for fields newer than this library.
///
/// Times are `Duration`s: the kernel reports round-trip times and timeouts in microseconds and
/// the "last ..." times in milliseconds.
public struct TCPInfo: Hashable, Sendable {
    /// The connection state: ``TCPState/established``, ``TCPState/listen``, ...
    public var state: TCPState
    /// The congestion-avoidance state (`TCP_CA_Open` 0, `Disorder` 1, `CWR` 2, `Recovery` 3, `Loss` 4).
    public var congestionState: UInt8
    /// Retransmissions of the current unacknowledged segment (`tcpi_retransmits`).
    public var retransmits: Int
    /// Unanswered zero-window or keepalive probes (`tcpi_probes`).
    public var probes: Int
    /// Exponential backoff of the retransmission timer (`tcpi_backoff`).
    public var backoff: Int
    /// The TCP options negotiated (`tcpi_options`).
    public var options: Options
    /// The peer's window scale, applied to the windows it advertises (`tcpi_snd_wscale`).
    public var sendWindowScale: Int
    /// Our window scale, applied to the windows we advertise (`tcpi_rcv_wscale`).
    public var receiveWindowScale: Int
    /// The retransmission timeout (`tcpi_rto`).
    public var retransmissionTimeout: Duration
    /// The delayed-ACK timeout (`tcpi_ato`).
    public var delayedAckTimeout: Duration
    /// The sending MSS (`tcpi_snd_mss`).
    public var sendMSS: Int
    /// The MSS estimated for the peer's segments (`tcpi_rcv_mss`).
    public var receiveMSS: Int
    /// Segments sent but not yet acknowledged (`tcpi_unacked`); on a listener, the accept
    /// queue length.
    public var unacknowledged: Int
    /// Segments selectively acknowledged (`tcpi_sacked`); on a listener, the backlog limit.
    public var selectivelyAcknowledged: Int
    /// Segments considered lost (`tcpi_lost`).
    public var lost: Int
    /// Segments retransmitted and not yet acknowledged (`tcpi_retrans`).
    public var retransmitted: Int
    /// Time since the last data was sent (`tcpi_last_data_sent`).
    public var sinceLastDataSent: Duration
    /// Time since the last data was received (`tcpi_last_data_recv`).
    public var sinceLastDataReceived: Duration
    /// Time since the last ACK was received (`tcpi_last_ack_recv`).
    public var sinceLastAckReceived: Duration
    /// The path MTU (`tcpi_pmtu`).
    public var pathMTU: Int
    /// The receive slow-start threshold (`tcpi_rcv_ssthresh`).
    public var receiveSlowStartThreshold: Int
    /// The smoothed round-trip time (`tcpi_rtt`).
    public var roundTripTime: Duration
    /// The round-trip time's mean deviation (`tcpi_rttvar`).
    public var roundTripTimeVariance: Duration
    /// The send slow-start threshold, in segments (`tcpi_snd_ssthresh`).
    public var sendSlowStartThreshold: Int
    /// The congestion window, in segments (`tcpi_snd_cwnd`).
    public var congestionWindow: Int
    /// The MSS advertised to the peer (`tcpi_advmss`).
    public var advertisedMSS: Int
    /// The reordering degree seen (`tcpi_reordering`).
    public var reordering: Int
    /// The receiver's round-trip time estimate (`tcpi_rcv_rtt`).
    public var receiveRoundTripTime: Duration
    /// The receive-space estimate used for buffer auto-tuning (`tcpi_rcv_space`).
    public var receiveSpace: Int
    /// All retransmissions on the connection (`tcpi_total_retrans`).
    public var totalRetransmissions: Int

    /// The pacing rate in bytes per second (`tcpi_pacing_rate`, Linux 3.15).
    public var pacingRate: UInt64?
    /// The bytes acknowledged by the peer (`tcpi_bytes_acked`, Linux 4.1).
    public var bytesAcknowledged: UInt64?
    /// The bytes received, in order (`tcpi_bytes_received`, Linux 4.1).
    public var bytesReceived: UInt64?
    /// Segments sent, including retransmissions (`tcpi_segs_out`, Linux 4.2).
    public var segmentsSent: Int?
    /// Segments received (`tcpi_segs_in`, Linux 4.2).
    public var segmentsReceived: Int?
    /// Bytes written but not yet sent (`tcpi_notsent_bytes`, Linux 4.6).
    public var notSentBytes: Int?
    /// The minimum round-trip time seen (`tcpi_min_rtt`, Linux 4.6).
    public var minimumRoundTripTime: Duration?
    /// The delivery rate in bytes per second (`tcpi_delivery_rate`, Linux 4.9).
    public var deliveryRate: UInt64?
    /// Data bytes sent, including retransmissions (`tcpi_bytes_sent`, Linux 4.19).
    public var bytesSent: UInt64?
    /// Data bytes retransmitted (`tcpi_bytes_retrans`, Linux 4.19).
    public var bytesRetransmitted: UInt64?
    /// The peer's advertised receive window after scaling, in bytes (`tcpi_snd_wnd`, Linux 5.19).
    public var sendWindow: Int?

    /// Everything the kernel returned, including fields newer than this library.
    public var rawBytes: [UInt8]

    /// TCP options negotiated on the connection (`TCPI_OPT_*`).
    public struct Options: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// `TCPI_OPT_TIMESTAMPS`.
        public static let timestamps = Options(rawValue: 1)
        /// `TCPI_OPT_SACK`.
        public static let selectiveAcknowledgements = Options(rawValue: 2)
        /// `TCPI_OPT_WSCALE`.
        public static let windowScaling = Options(rawValue: 4)
        /// `TCPI_OPT_ECN`: ECN was negotiated.
        public static let ecn = Options(rawValue: 8)
        /// `TCPI_OPT_ECN_SEEN`: at least one ECT packet arrived.
        public static let ecnSeen = Options(rawValue: 16)
        /// `TCPI_OPT_SYN_DATA`: the SYN-ACK acknowledged data in the SYN (Fast Open).
        public static let synData = Options(rawValue: 32)
    }

    /// The size of glibc's `struct tcp_info`: the fields every kernel fills in.
    static let baseSize = 104

    /// Decodes the bytes `getsockopt(TCP_INFO)` returned (the kernel's `struct tcp_info`,
    /// in native byte order).
    init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.baseSize else { return nil }
        func u8(_ offset: Int) -> UInt8 { bytes[offset] }
        func u32(_ offset: Int) -> Int { Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
        func microseconds(_ offset: Int) -> Duration { .microseconds(u32(offset)) }
        func milliseconds(_ offset: Int) -> Duration { .milliseconds(u32(offset)) }
        func optionalU32(_ offset: Int) -> Int? { bytes.count >= offset + 4 ? u32(offset) : nil }
        func optionalU64(_ offset: Int) -> UInt64? {
            bytes.count >= offset + 8 ? bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self) : nil
        }

        state = TCPState(rawValue: u8(0))
        congestionState = u8(1)
        retransmits = Int(u8(2))
        probes = Int(u8(3))
        backoff = Int(u8(4))
        options = Options(rawValue: u8(5))
        // Two 4-bit fields in one byte; GCC on little-endian targets fills from the low bits.
        sendWindowScale = Int(u8(6) & 0x0F)
        receiveWindowScale = Int(u8(6) >> 4)
        retransmissionTimeout = microseconds(8)
        delayedAckTimeout = microseconds(12)
        sendMSS = u32(16)
        receiveMSS = u32(20)
        unacknowledged = u32(24)
        selectivelyAcknowledged = u32(28)
        lost = u32(32)
        retransmitted = u32(36)
        sinceLastDataSent = milliseconds(44)
        sinceLastDataReceived = milliseconds(52)
        sinceLastAckReceived = milliseconds(56)
        pathMTU = u32(60)
        receiveSlowStartThreshold = u32(64)
        roundTripTime = microseconds(68)
        roundTripTimeVariance = microseconds(72)
        sendSlowStartThreshold = u32(76)
        congestionWindow = u32(80)
        advertisedMSS = u32(84)
        reordering = u32(88)
        receiveRoundTripTime = microseconds(92)
        receiveSpace = u32(96)
        totalRetransmissions = u32(100)

        pacingRate = optionalU64(104)
        bytesAcknowledged = optionalU64(120)
        bytesReceived = optionalU64(128)
        segmentsSent = optionalU32(136)
        segmentsReceived = optionalU32(140)
        notSentBytes = optionalU32(144)
        minimumRoundTripTime = optionalU32(148).map { .microseconds($0) }
        deliveryRate = optionalU64(160)
        bytesSent = optionalU64(200)
        bytesRetransmitted = optionalU64(208)
        sendWindow = optionalU32(228)
        rawBytes = Array(bytes)
    }
}

extension OptionCodec where Value == TCPInfo {
    static var tcpInfo: OptionCodec<TCPInfo> {
        OptionCodec(
            // Room for the fields later kernels append.
            capacity: 512,
            encode: { _, _ throws(InvalidOptionValue) in throw InvalidOptionValue("TCP_INFO is read-only") },
            decode: { buffer throws(InvalidOptionValue) in
                guard let info = TCPInfo(bytes: buffer) else {
                    throw InvalidOptionValue("the kernel returned \(buffer.count) bytes of tcp_info; expected at least \(TCPInfo.baseSize)")
                }
                return info
            })
    }
}
