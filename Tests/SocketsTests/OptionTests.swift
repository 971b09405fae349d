import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Testing

// MARK: - Helpers

/// Sets `value` (which must differ from the current value, so that the test proves a change)
/// and reads back `expected` (default: `value`).
private func roundTrip<Value: Equatable & Sendable>(
    _ socket: Socket, _ option: SocketOption<Value>, _ value: Value, reads expected: Value? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let wanted = expected ?? value
    let before = try socket.get(option)
    #expect(before != wanted, "\(option) already reads \(wanted); pick a value that proves a change", sourceLocation: sourceLocation)
    try socket.set(option, value)
    let after = try socket.get(option)
    #expect(after == wanted, "\(option): set \(value), read \(after), expected \(wanted)", sourceLocation: sourceLocation)
}

/// Flips a flag away from its default, reads it, flips it back and reads it again.
private func flip(_ socket: Socket, _ option: SocketOption<Bool>, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let original = try socket.get(option)
    try socket.set(option, !original)
    #expect(try socket.get(option) == !original, "\(option) did not change", sourceLocation: sourceLocation)
    try socket.set(option, original)
    #expect(try socket.get(option) == original, "\(option) did not change back", sourceLocation: sourceLocation)
}

/// Expects `body` to fail with `invalidArgument` whose text names the C option.
private func expectInvalid(
    _ cName: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(SocketError) -> Void
) {
    do {
        try body()
        Issue.record("expected an invalid-argument error for \(cName)", sourceLocation: sourceLocation)
    } catch {
        guard case .invalidArgument = error.reason else {
            Issue.record("expected invalidArgument for \(cName), got \(error)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.description.contains(cName), "\(error)", sourceLocation: sourceLocation)
    }
}

/// Expects `body` to fail with the errno `code`.
private func expectErrno(
    _ code: Int32, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(SocketError) -> Void
) {
    do {
        try body()
        Issue.record("expected errno \(code)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.reason == .system(Errno(rawValue: code)), "\(error)", sourceLocation: sourceLocation)
    }
}

/// Runs `change`, which the kernel allows only to a process with one of `capabilities`: with
/// one, as it is; without, expects it to be refused with `denial` by `setsockopt` of `cName`,
/// and the error to say so.
private func privileged(
    _ cName: String, anyOf capabilities: [Capability], denial: Int32 = EPERM,
    sourceLocation: SourceLocation = #_sourceLocation, _ change: () throws -> Void
) throws {
    if capabilities.contains(where: \.isEffective) { return try change() }
    do {
        try change()
        Issue.record("\(cName) was allowed without \(capabilities.map(\.name).joined(separator: " or "))", sourceLocation: sourceLocation)
    } catch let error as SocketError {
        #expect(error.reason == .system(Errno(rawValue: denial)), "\(error)", sourceLocation: sourceLocation)
        #expect(error.description.hasPrefix("setsockopt(\(cName)): "), "\(error)", sourceLocation: sourceLocation)
    }
}

/// Reads a small text file (from /proc) without Foundation.
private func readTextFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { _ = Glibc.close(fd) }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    for _ in 0..<256 {
        let count = read(fd, &chunk, chunk.count)
        if count <= 0 { break }
        result += chunk[..<count]
    }
    return String(decoding: result, as: UTF8.self)
}

private func socketPair(_ domain: SocketDomain) throws -> (listener: Socket, client: Socket, server: Socket) {
    let listener = try Socket(domain, .stream)
    try listener.bind(to: domain == .inet ? .ipv4(.loopback, port: 0) : .ipv6(.loopback, port: 0))
    try listener.listen()
    let client = try Socket(domain, .stream)
    try client.connect(to: try listener.localAddress())
    let (server, _) = try listener.accept()
    return (listener, client, server)
}

// MARK: - SOL_SOCKET

@Suite(.noDescriptorLeaks())
struct SocketLevelOptionTests {
    @Test(arguments: [SocketDomain.inet, .inet6])
    func flagsRoundTrip(domain: SocketDomain) throws {
        let tcp = try Socket(domain, .stream)
        defer { try? tcp.close() }
        for option: SocketOption<Bool> in [
            .reuseAddress, .reusePort, .keepAlive, .outOfBandInline, .timestamp, .timestampNanoseconds,
            .zeroCopy, .dontRoute,
        ] {
            try flip(tcp, option)
        }
        try privileged("SO_DEBUG", anyOf: [.netAdmin], denial: EACCES) { try flip(tcp, .debug) }
        // Credentials travel only over Unix (and netlink) sockets.
        expectErrno(EOPNOTSUPP) { () throws(SocketError) in _ = try tcp.get(.passCredentials) }
        let udp = try Socket(domain, .datagram)
        defer { try? udp.close() }
        #expect(try udp.get(.broadcast) == false)
        try flip(udp, .broadcast)
        try flip(udp, .zeroCopy)
    }

    @Test func passCredentialsOnUnixSocket() throws {
        let (first, second) = try Socket.pair()
        defer { try? first.close(); try? second.close() }
        try roundTrip(first, .passCredentials, true)
    }

    @Test(arguments: [SocketDomain.inet, .inet6])
    func buffersAreDoubled(domain: SocketDomain) throws {
        // Linux doubles SO_RCVBUF/SO_SNDBUF to leave room for its bookkeeping.
        let socket = try Socket(domain, .stream)
        defer { try? socket.close() }
        try roundTrip(socket, .receiveBufferSize, 100_000, reads: 200_000)
        try roundTrip(socket, .sendBufferSize, 100_000, reads: 200_000)
    }

    @Test func bufferSizesAreCappedUnlessForced() throws {
        let receiveMax = try #require(readTextFile("/proc/sys/net/core/rmem_max").flatMap { Int($0.filter(\.isNumber)) })
        let sendMax = try #require(readTextFile("/proc/sys/net/core/wmem_max").flatMap { Int($0.filter(\.isNumber)) })
        let wanted = max(receiveMax, sendMax) * 2
        let socket = try Socket(.inet, .datagram)
        defer { try? socket.close() }
        try socket.set(.receiveBufferSize, wanted)
        #expect(try socket.get(.receiveBufferSize) == receiveMax * 2)
        try socket.set(.sendBufferSize, wanted)
        #expect(try socket.get(.sendBufferSize) == sendMax * 2)
        // The FORCE variants (with CAP_NET_ADMIN) pass the cap; read back via SO_RCVBUF.
        try privileged("SO_RCVBUFFORCE", anyOf: [.netAdmin]) {
            try socket.set(.forcedReceiveBufferSize, wanted)
            #expect(try socket.get(.receiveBufferSize) == wanted * 2)
        }
        try privileged("SO_SNDBUFFORCE", anyOf: [.netAdmin]) {
            try socket.set(.forcedSendBufferSize, wanted)
            #expect(try socket.get(.sendBufferSize) == wanted * 2)
        }
        // ... and are write-only in the kernel too.
        expectErrno(ENOPROTOOPT) { () throws(SocketError) in
            _ = try socket.getOption(level: SOL_SOCKET, name: SO_RCVBUFFORCE, maxLength: 4)
        }
    }

    @Test(arguments: [SocketDomain.inet, .inet6])
    func numbersRoundTrip(domain: SocketDomain) throws {
        let socket = try Socket(domain, .stream)
        defer { try? socket.close() }
        try roundTrip(socket, .receiveLowWatermark, 100)
        try roundTrip(socket, .priority, 5)
        #expect(try socket.get(.incomingCPU) == nil)  // no packet has arrived yet
        try roundTrip(socket, .incomingCPU, 1)
        try roundTrip(socket, .busyPoll, .microseconds(50))
        // Priorities above 6 and marks need CAP_NET_RAW or CAP_NET_ADMIN.
        try privileged("SO_PRIORITY", anyOf: [.netRaw, .netAdmin]) { try roundTrip(socket, .priority, 7) }
        try privileged("SO_MARK", anyOf: [.netRaw, .netAdmin]) { try roundTrip(socket, .mark, 0xBEEF) }
    }

    @Test func timestampingFlags() throws {
        let udp = try Socket(.inet, .datagram)
        defer { try? udp.close() }
        #expect(try udp.get(.timestamping) == [])
        try roundTrip(udp, .timestamping, [.receiveSoftware, .transmitSoftware, .software, .optionID, .optionTimestampOnly])
        try roundTrip(udp, .timestamping, [])
        expectInvalid("SO_TIMESTAMPING") { () throws(SocketError) in try udp.set(.timestamping, TimestampingFlags(rawValue: 1 << 15)) }
        // An id per send needs a connected TCP socket.
        let tcp = try Socket(.inet6, .stream)
        defer { try? tcp.close() }
        expectErrno(EINVAL) { () throws(SocketError) in try tcp.set(.timestamping, [.software, .optionID]) }
        try roundTrip(tcp, .timestamping, [.receiveSoftware, .software])
    }

    @Test func sendLowWatermarkIsFixedOnLinux() throws {
        let socket = try Socket(.inet, .stream)
        defer { try? socket.close() }
        #expect(try socket.get(.sendLowWatermark) == 1)
        expectErrno(ENOPROTOOPT) { () throws(SocketError) in
            try socket.setOption(level: SOL_SOCKET, name: SO_SNDLOWAT, value: 100)
        }
    }

    @Test(arguments: [SocketDomain.inet, .inet6])
    func lingerRoundTrip(domain: SocketDomain) throws {
        let socket = try Socket(domain, .stream)
        defer { try? socket.close() }
        try roundTrip(socket, .linger, .seconds(5))
        try roundTrip(socket, .linger, .zero)
        try roundTrip(socket, .linger, nil)
    }

    @Test(arguments: [SocketDomain.inet, .inet6])
    func timeoutsRoundTrip(domain: SocketDomain) throws {
        let socket = try Socket(domain, .datagram)
        defer { try? socket.close() }
        try roundTrip(socket, .receiveTimeout, .milliseconds(1500))
        try roundTrip(socket, .sendTimeout, .seconds(3))
        // The kernel keeps these in clock ticks and rounds up, so a tiny timeout reads back
        // as one tick (4 ms at HZ=250), never as "none".
        try socket.set(.receiveTimeout, .nanoseconds(1))
        let tick = try #require(try socket.get(.receiveTimeout))
        #expect(tick > .zero && tick <= .milliseconds(10), "one tick: \(tick)")
        try socket.set(.sendTimeout, .seconds(2) + .microseconds(7))
        #expect(try socket.get(.sendTimeout) == .seconds(2) + tick)
        try roundTrip(socket, .receiveTimeout, nil)
        try roundTrip(socket, .sendTimeout, nil)
    }

    @Test func receiveTimeoutExpiresAsWouldBlock() throws {
        let socket = try Socket(.inet, .datagram)
        defer { try? socket.close() }
        try socket.bind(to: .ipv4(.loopback, port: 0))
        try socket.set(.receiveTimeout, .milliseconds(20))
        do {
            _ = try socket.receive(maxLength: 10)
            Issue.record("receive returned with nothing sent")
        } catch {
            #expect(error.isWouldBlock, "\(error)")
        }
    }

    @Test func peekOffsetOnUnixSocket() throws {
        let (first, second) = try Socket.pair()
        defer { try? first.close(); try? second.close() }
        #expect(try second.get(.peekOffset) == nil)
        try roundTrip(second, .peekOffset, 0)
        try first.sendAll("abcdef")
        // Each peek advances the offset, so consecutive peeks walk through the data.
        #expect(try second.receive(maxLength: 2, flags: .peek) == Array("ab".utf8))
        #expect(try second.receive(maxLength: 2, flags: .peek) == Array("cd".utf8))
        #expect(try second.get(.peekOffset) == 4)
        try roundTrip(second, .peekOffset, nil)
        #expect(try second.receive(maxLength: 6) == Array("abcdef".utf8))
    }

    @Test func bindToDevice() throws {
        let loopbackIndex = try #require(Syscall.interfaceIndex(name: "lo"))
        // Anyone may bind an unbound socket to a device; changing the binding needs CAP_NET_RAW.
        let byName = try Socket(.inet, .datagram)
        defer { try? byName.close() }
        #expect(try byName.get(.bindToDevice) == "")
        try roundTrip(byName, .bindToDevice, "lo")
        #expect(try byName.get(.bindToInterfaceIndex) == loopbackIndex)
        let byIndex = try Socket(.inet, .datagram)
        defer { try? byIndex.close() }
        try roundTrip(byIndex, .bindToInterfaceIndex, loopbackIndex)
        #expect(try byIndex.get(.bindToDevice) == "lo")
        try privileged("SO_BINDTODEVICE", anyOf: [.netRaw]) { try roundTrip(byName, .bindToDevice, "") }
        try privileged("SO_BINDTOIFINDEX", anyOf: [.netRaw]) { try roundTrip(byIndex, .bindToInterfaceIndex, 0) }

        let socket = try Socket(.inet, .datagram)
        defer { try? socket.close() }
        expectErrno(ENODEV) { () throws(SocketError) in try socket.set(.bindToDevice, "nosuchdev0") }
        expectInvalid("SO_BINDTODEVICE") { () throws(SocketError) in try socket.set(.bindToDevice, "sixteen-bytes-xx") }
        expectInvalid("SO_BINDTODEVICE") { () throws(SocketError) in try socket.set(.bindToDevice, "l\0o") }
        expectInvalid("SO_BINDTOIFINDEX") { () throws(SocketError) in try socket.set(.bindToInterfaceIndex, UInt32.max) }
    }
}

// MARK: - Read-only and introspection

@Suite(.noDescriptorLeaks())
struct ReadOnlyOptionTests {
    @Test func introspection() throws {
        let cases: [(SocketDomain, SocketType, SocketProtocol, SocketProtocol)] = [
            (.inet, .stream, .default, .tcp), (.inet6, .stream, .default, .tcp),
            (.inet, .datagram, .default, .udp), (.inet6, .datagram, .udpLite, .udpLite),
            (.netlink, .raw, .default, .default), (.unix, .stream, .default, .default),
            (.unix, .datagram, .default, .default), (.unix, .sequencedPacket, .default, .default),
        ] + (Privilege.rawSockets.isHeld ? [(.inet, .raw, .icmp, .icmp)] : [])
        for (domain, type, requested, reported) in cases {
            let socket = try Socket(domain, type, requested)
            defer { try? socket.close() }
            #expect(try socket.type() == type)
            #expect(try socket.domain() == domain)
            #expect(try socket.protocol() == reported, "\(domain) \(type)")
            #expect(try socket.isListening() == false)
            #expect(try socket.get(.socketType) == type)
        }
    }

    @Test func listeningAfterListen() throws {
        for domain in [SocketDomain.inet, .inet6] {
            let socket = try Socket(domain, .stream)
            defer { try? socket.close() }
            try socket.bind(to: domain == .inet ? .ipv4(.loopback, port: 0) : .ipv6(.loopback, port: 0))
            #expect(try socket.isListening() == false)
            try socket.listen()
            #expect(try socket.isListening())
            #expect(try socket.get(.listening))
        }
    }

    @Test func peerCredentialsOfSocketPair() throws {
        let (first, second) = try Socket.pair()
        defer { try? first.close(); try? second.close() }
        let credentials = try first.get(.peerCredentials)
        #expect(credentials == PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid()))
        #expect(try second.get(.peerCredentials).pid == getpid())
    }

    @Test func cookieIsStableAndUnique() throws {
        let first = try Socket(.inet, .stream)
        let second = try Socket(.unix, .datagram)
        defer { try? first.close(); try? second.close() }
        let cookie = try first.get(.cookie)
        #expect(cookie != 0)
        #expect(try first.get(.cookie) == cookie)
        #expect(try second.get(.cookie) != cookie)
        #expect(try second.get(.cookie) != 0)
    }

    @Test func pendingErrorIsReadOnceThenCleared() throws {
        // A free UDP port: bind, note it, close. Sending there draws ICMP port unreachable,
        // which loopback delivers before send returns.
        let probe = try Socket(.inet, .datagram)
        try probe.bind(to: .ipv4(.loopback, port: 0))
        let closedPort = try probe.localAddress()
        try probe.close()
        let socket = try Socket(.inet, .datagram)
        defer { try? socket.close() }
        #expect(try socket.get(.pendingError) == nil)
        try socket.connect(to: closedPort)
        _ = try socket.send(Array("x".utf8))
        #expect(try socket.get(.pendingError) == .connectionRefused)
        #expect(try socket.get(.pendingError) == nil)
    }
}

// MARK: - TCP

@Suite(.noDescriptorLeaks())
struct TCPOptionTests {
    @Test(arguments: [SocketDomain.inet, .inet6])
    func flagsRoundTrip(domain: SocketDomain) throws {
        let socket = try Socket(domain, .stream)
        defer { try? socket.close() }
        for option: SocketOption<Bool> in [.tcpNoDelay, .tcpCork, .tcpThinLinearTimeouts, .tcpReportUnreadBytes, .tcpFastOpenConnect] {
            #expect(try socket.get(option) == false, "\(option)")
            try flip(socket, option)
        }
        // Quick-ack mode is on until the socket enters "ping-pong" (delayed ACK) mode.
        #expect(try socket.get(.tcpQuickAck) == true)
        try flip(socket, .tcpQuickAck)
    }

    @Test(arguments: [SocketDomain.inet, .inet6])
    func valuesRoundTrip(domain: SocketDomain) throws {
        let socket = try Socket(domain, .stream)
        defer { try? socket.close() }
        try roundTrip(socket, .tcpKeepIdle, .seconds(30))
        try roundTrip(socket, .tcpKeepInterval, .seconds(5))
        try roundTrip(socket, .tcpKeepCount, 3)
        try roundTrip(socket, .tcpUserTimeout, .milliseconds(2500))
        try roundTrip(socket, .tcpSynCount, 2)
        try roundTrip(socket, .tcpWindowClamp, 40_000)
        #expect(try socket.get(.tcpNotSentLowWatermark) == 0)  // 0: use net.ipv4.tcp_notsent_lowat
        try roundTrip(socket, .tcpNotSentLowWatermark, 16_384)
        // The kernel counts SYN-ACK retransmissions (1 + 2 + 4 s), so 5 s reads back as 7 s.
        try roundTrip(socket, .tcpDeferAccept, .seconds(5), reads: .seconds(7))
        try roundTrip(socket, .tcpDeferAccept, .zero)
        // FIN_WAIT2 lifetime: 0 reads back as net.ipv4.tcp_fin_timeout; the kernel caps at 120 s.
        let finTimeout = try #require(readTextFile("/proc/sys/net/ipv4/tcp_fin_timeout").flatMap { Int64($0.filter(\.isNumber)) })
        try roundTrip(socket, .tcpFinWait2Timeout, .seconds(30))
        try roundTrip(socket, .tcpFinWait2Timeout, .seconds(500), reads: .seconds(120))
        try roundTrip(socket, .tcpFinWait2Timeout, nil)
        try roundTrip(socket, .tcpFinWait2Timeout, .zero, reads: .seconds(finTimeout))
        try socket.bind(to: domain == .inet ? .ipv4(.loopback, port: 0) : .ipv6(.loopback, port: 0))
        try socket.listen()
        try roundTrip(socket, .tcpFastOpen, 16)
    }

    @Test(arguments: [SocketDomain.inet, .inet6])
    func congestionControl(domain: SocketDomain) throws {
        let socket = try Socket(domain, .stream)
        defer { try? socket.close() }
        let current = try socket.get(.tcpCongestion)
        let available = try #require(readTextFile("/proc/sys/net/ipv4/tcp_available_congestion_control"))
            .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        #expect(available.contains(current))
        let other = try #require(available.first { $0 != current })
        try roundTrip(socket, .tcpCongestion, other)
        expectErrno(ENOENT) { () throws(SocketError) in try socket.set(.tcpCongestion, "nosuchalgo") }
        expectInvalid("TCP_CONGESTION") { () throws(SocketError) in try socket.set(.tcpCongestion, "a-name-of-16-xyz") }
    }

    @Test(arguments: [SocketDomain.inet, .inet6])
    func maximumSegmentSize(domain: SocketDomain) throws {
        let listener = try Socket(domain, .stream)
        defer { try? listener.close() }
        try listener.bind(to: domain == .inet ? .ipv4(.loopback, port: 0) : .ipv6(.loopback, port: 0))
        try listener.listen()
        let client = try Socket(domain, .stream)
        defer { try? client.close() }
        // Unconnected: reads what was set, or the 536-byte default.
        #expect(try client.get(.tcpMaxSegment) == 536)
        try roundTrip(client, .tcpMaxSegment, 1000)
        try client.connect(to: try listener.localAddress())
        let (server, _) = try listener.accept()
        defer { try? server.close() }
        // Connected: the MSS in use, which the 12 bytes of timestamp option reduce.
        let info = try client.get(.tcpInfo)
        let inUse = try client.get(.tcpMaxSegment)
        #expect(inUse <= 1000 && inUse >= 900, "MSS in use: \(inUse)")
        #expect(inUse == info.sendMSS)
        #expect(try server.get(.tcpMaxSegment) <= 1000)
    }

    @Test func keepaliveConvenience() throws {
        let socket = try Socket(.inet, .stream)
        defer { try? socket.close() }
        #expect(try socket.keepalive() == nil)
        let wanted = TCPKeepalive(idle: .seconds(30), interval: .seconds(5), count: 3)
        try socket.setKeepalive(wanted)
        #expect(try socket.keepalive() == wanted)
        #expect(try socket.get(.keepAlive))
        // A partial setting changes only what it names.
        try socket.setKeepalive(TCPKeepalive(count: 7))
        #expect(try socket.keepalive() == TCPKeepalive(idle: .seconds(30), interval: .seconds(5), count: 7))
        try socket.setKeepalive(nil)
        #expect(try socket.keepalive() == nil)
        // Everything is checked before any call: a bad count leaves keepalive off and idle as it was.
        expectInvalid("TCP_KEEPCNT") { () throws(SocketError) in
            try socket.setKeepalive(TCPKeepalive(idle: .seconds(99), count: 0))
        }
        #expect(try socket.get(.keepAlive) == false)
        #expect(try socket.get(.tcpKeepIdle) == .seconds(30))
    }

    @Test func tcpInfoOfListenerAndConnection() throws {
        let (listener, client, server) = try socketPair(.inet)
        defer { try? listener.close(); try? client.close(); try? server.close() }
        #expect(try listener.get(.tcpInfo).state == .listen)
        try client.sendAll("hello")
        #expect(try server.receive(maxLength: 5) == Array("hello".utf8))
        try server.sendAll("world")
        #expect(try client.receive(maxLength: 5) == Array("world".utf8))
        let info = try client.get(.tcpInfo)
        #expect(info.state == .established)
        #expect(info.roundTripTime > .zero)
        #expect(info.sendMSS > 0)
        #expect(info.congestionWindow > 0)
        #expect(info.options.contains(.timestamps))  // on by default over loopback
        #expect(info.totalRetransmissions == 0)
        #expect(try #require(info.bytesAcknowledged) >= 5)
        #expect(try #require(info.bytesReceived) == 5)
        #expect(try #require(info.bytesSent) == 5)
        #expect(try #require(info.segmentsSent) >= 2)
        #expect(info.rawBytes.count >= 104)
        // After the client closes, the server sees end-of-file and sits in CLOSE_WAIT.
        try client.close()
        #expect(try server.receive(maxLength: 1) == [])
        #expect(try server.get(.tcpInfo).state == .closeWait)
        #expect(try server.get(.tcpInfo).state.description == "CLOSE_WAIT")
    }

    @Test func tcpInfoOnIPv6() throws {
        let (listener, client, server) = try socketPair(.inet6)
        defer { try? listener.close(); try? client.close(); try? server.close() }
        #expect(try server.get(.tcpInfo).state == .established)
        #expect(try client.get(.tcpInfo).pathMTU == 65536)
    }

    @Test func tcpOptionsOnNonTCPSocketFail() throws {
        let socket = try Socket(.inet, .datagram)
        defer { try? socket.close() }
        // What Linux 6.x answers: reading is EOPNOTSUPP, writing ENOPROTOOPT.
        expectErrno(EOPNOTSUPP) { () throws(SocketError) in _ = try socket.get(.tcpInfo) }
        expectErrno(ENOPROTOOPT) { () throws(SocketError) in try socket.set(.tcpNoDelay, true) }
    }
}

// MARK: - IPv4 and IPv6

@Suite(.noDescriptorLeaks())
struct IPOptionTests {
    @Test func ipv4RoundTrips() throws {
        let udp = try Socket(.inet, .datagram)
        defer { try? udp.close() }
        try roundTrip(udp, .timeToLive, 42)
        try roundTrip(udp, .timeToLive, -1, reads: 64)  // back to net.ipv4.ip_default_ttl
        try roundTrip(udp, .typeOfService, 0x2E)
        try roundTrip(udp, .multicastTimeToLive, 7)
        try roundTrip(udp, .multicastLoop, false)
        try roundTrip(udp, .multicastInterface, .loopback)
        try udp.setMulticastInterface(index: try #require(Syscall.interfaceIndex(name: "lo")))
        #expect(try udp.get(.multicastInterface) == .any)  // chosen by index: no address
        try roundTrip(udp, .multicastAll, false)
        for option: SocketOption<Bool> in [
            .receivePacketInfo, .receiveTypeOfService, .receiveTimeToLive, .receiveErrors, .freeBind,
            .bindAddressNoPort, .receiveOriginalDestinationAddress,
        ] {
            try roundTrip(udp, option, true)
        }
        try privileged("IP_TRANSPARENT", anyOf: [.netRaw, .netAdmin]) { try roundTrip(udp, .transparent, true) }
        try roundTrip(udp, .pathMTUDiscovery, .do)
        try roundTrip(udp, .pathMTUDiscovery, .probe)
        try roundTrip(udp, .pathMTUDiscovery, .dont)
        expectErrno(EINVAL) { () throws(SocketError) in try udp.set(.pathMTUDiscovery, PathMTUDiscovery(rawValue: 42)) }

        // On TCP the kernel keeps the two ECN bits of the TOS byte for itself.
        let tcp = try Socket(.inet, .stream)
        defer { try? tcp.close() }
        try roundTrip(tcp, .typeOfService, 0x2B, reads: 0x28)
        try roundTrip(tcp, .timeToLive, 3)
        try roundTrip(tcp, .bindAddressNoPort, true)
    }

    @Test(.requires(.rawSockets)) func headerIncludedOnRawSocket() throws {
        let raw = try Socket(.inet, .raw, .udp)
        defer { try? raw.close() }
        try roundTrip(raw, .headerIncluded, true)
        // IPPROTO_RAW sockets always include the header.
        let rawIP = try Socket(.inet, .raw, .rawIP)
        defer { try? rawIP.close() }
        #expect(try rawIP.get(.headerIncluded))
        let udp = try Socket(.inet, .datagram)
        defer { try? udp.close() }
        expectErrno(ENOPROTOOPT) { () throws(SocketError) in try udp.set(.headerIncluded, true) }
    }

    @Test func pathMTUNeedsAConnection() throws {
        let socket = try Socket(.inet, .datagram)
        defer { try? socket.close() }
        expectErrno(ENOTCONN) { () throws(SocketError) in _ = try socket.get(.pathMTU) }
        try socket.connect(to: .ipv4(.loopback, port: 9))
        #expect(try socket.get(.pathMTU) == 65535)  // loopback's 65536, capped at IPv4's largest packet

        let socket6 = try Socket(.inet6, .datagram)
        defer { try? socket6.close() }
        expectErrno(ENOTCONN) { () throws(SocketError) in _ = try socket6.get(.ipv6PathMTU) }
        try socket6.connect(to: .ipv6(.loopback, port: 9))
        #expect(try socket6.get(.ipv6PathMTU) == 65536)
    }

    @Test func ipv6RoundTrips() throws {
        let udp = try Socket(.inet6, .datagram)
        defer { try? udp.close() }
        try roundTrip(udp, .ipv6Only, true)
        try roundTrip(udp, .ipv6UnicastHops, 42)
        try roundTrip(udp, .ipv6UnicastHops, -1, reads: 64)  // back to the route's default
        try roundTrip(udp, .ipv6MulticastHops, 5)
        try roundTrip(udp, .ipv6MulticastLoop, false)
        try roundTrip(udp, .ipv6MulticastInterface, try #require(Syscall.interfaceIndex(name: "lo")))
        try roundTrip(udp, .ipv6TrafficClass, 0x2E)
        try roundTrip(udp, .ipv6MulticastAll, false)
        for option: SocketOption<Bool> in [
            .ipv6ReceiveTrafficClass, .ipv6ReceiveHopLimit, .ipv6ReceivePacketInfo, .ipv6ReceiveErrors,
            .ipv6DontFragment, .ipv6ReceivePathMTU, .ipv6FreeBind,
        ] {
            try roundTrip(udp, option, true)
        }
        try privileged("IPV6_TRANSPARENT", anyOf: [.netRaw, .netAdmin]) { try roundTrip(udp, .ipv6Transparent, true) }
        try roundTrip(udp, .ipv6PathMTUDiscovery, .do)
        try roundTrip(udp, .ipv6PathMTUDiscovery, .interface)
        expectErrno(ENODEV) { () throws(SocketError) in try udp.set(.ipv6MulticastInterface, 999_999) }

        let tcp = try Socket(.inet6, .stream)
        defer { try? tcp.close() }
        try roundTrip(tcp, .ipv6TrafficClass, 0x2B, reads: 0x28)
        try roundTrip(tcp, .ipv6Only, true)
    }

    @Test func ipv6OnlyControlsIPv4MappedConnections() throws {
        for v6only in [false, true] {
            let listener = try Socket(.inet6, .stream)
            defer { try? listener.close() }
            try listener.set(.ipv6Only, v6only)
            try listener.bind(to: .ipv6(.any, port: 0))
            try listener.listen()
            let port = try #require(try listener.localAddress().port)
            let client = try Socket(.inet, .stream)
            defer { try? client.close() }
            if v6only {
                expectErrno(ECONNREFUSED) { () throws(SocketError) in try client.connect(to: .ipv4(.loopback, port: port)) }
            } else {
                try client.connect(to: .ipv4(.loopback, port: port))
                let (server, peer) = try listener.accept()
                defer { try? server.close() }
                #expect(peer.ipAddress == .v6(IPv6Address(ipv4Mapped: .loopback)))
            }
        }
    }

    @Test(.requires(.rawSockets)) func ipv6ChecksumOnRawSocket() throws {
        let raw = try Socket(.inet6, .raw, .udp)
        defer { try? raw.close() }
        try roundTrip(raw, .ipv6HeaderIncluded, true)
        try roundTrip(raw, .ipv6HeaderIncluded, false)
        try roundTrip(raw, .ipv6Checksum, 6)
        try roundTrip(raw, .ipv6Checksum, nil)
        expectInvalid("IPV6_CHECKSUM") { () throws(SocketError) in try raw.set(.ipv6Checksum, 3) }
        // ICMPv6 always checksums at offset 2 and refuses the option.
        let icmp = try Socket(.inet6, .raw, .icmpv6)
        defer { try? icmp.close() }
        expectErrno(EINVAL) { () throws(SocketError) in try icmp.set(.ipv6Checksum, 4) }
    }
}

// MARK: - Raw access and invalid input

@Suite(.noDescriptorLeaks())
struct RawOptionTests {
    @Test func rawIntAndBytesRoundTrip() throws {
        let socket = try Socket(.inet, .stream)
        defer { try? socket.close() }
        #expect(try socket.getOption(level: SOL_SOCKET, name: SO_KEEPALIVE) == 0)
        try socket.setOption(level: SOL_SOCKET, name: SO_KEEPALIVE, value: 1)
        #expect(try socket.get(.keepAlive))
        #expect(try socket.getOption(level: SOL_SOCKET, name: SO_KEEPALIVE) == 1)
        #expect(try socket.getOption(level: SOL_SOCKET, name: SO_KEEPALIVE, maxLength: 4) == [1, 0, 0, 0])
        // The kernel never writes more than asked for.
        #expect(try socket.getOption(level: SOL_SOCKET, name: SO_KEEPALIVE, maxLength: 16).count == 4)
        #expect(try socket.getOption(level: SOL_SOCKET, name: SO_KEEPALIVE, maxLength: 0) == [])

        // struct linger { int l_onoff; int l_linger; } = {1, 9}, native byte order.
        var linger: [UInt8] = []
        withUnsafeBytes(of: Int32(1)) { linger += $0 }
        withUnsafeBytes(of: Int32(9)) { linger += $0 }
        try socket.setOption(level: SOL_SOCKET, name: SO_LINGER, bytes: linger)
        #expect(try socket.get(.linger) == .seconds(9))
        #expect(try socket.getOption(level: SOL_SOCKET, name: SO_LINGER, maxLength: 64) == linger)

        // Options defined by the caller, with the typed API.
        let keepAlive = SocketOption<Bool>(level: SOL_SOCKET, name: SO_KEEPALIVE, cName: "SO_KEEPALIVE")
        try roundTrip(socket, keepAlive, false)
        let ttl = SocketOption<Int>(level: Int32(IPPROTO_IP), name: IP_TTL, cName: "IP_TTL")
        try roundTrip(socket, ttl, 17)
        #expect(try socket.get(.timeToLive) == 17)
    }

    @Test func rawErrors() throws {
        let socket = try Socket(.inet, .stream)
        defer { try? socket.close() }
        expectInvalid("getsockopt") { () throws(SocketError) in _ = try socket.getOption(level: SOL_SOCKET, name: SO_TYPE, maxLength: -1) }
        expectInvalid("getsockopt") { () throws(SocketError) in
            _ = try socket.getOption(level: SOL_SOCKET, name: SO_TYPE, maxLength: Socket.maximumOptionLength + 1)
        }
        expectInvalid("setsockopt") { () throws(SocketError) in
            try socket.setOption(level: SOL_SOCKET, name: SO_TYPE, bytes: [UInt8](repeating: 0, count: Socket.maximumOptionLength + 1))
        }
        expectErrno(ENOPROTOOPT) { () throws(SocketError) in try socket.setOption(level: SOL_SOCKET, name: 9999, value: 1) }
        expectErrno(ENOPROTOOPT) { () throws(SocketError) in _ = try socket.getOption(level: SOL_SOCKET, name: 9999) }
        // A short value is the kernel's EINVAL.
        expectErrno(EINVAL) { () throws(SocketError) in try socket.setOption(level: SOL_SOCKET, name: SO_LINGER, bytes: [1]) }
        // TCP_ULP (31) with no upper-layer protocol attached returns no bytes: not an int.
        #expect(try socket.getOption(level: Int32(IPPROTO_TCP), name: 31, maxLength: 16) == [])
        expectInvalid("getsockopt") { () throws(SocketError) in
            _ = try socket.getOption(level: Int32(IPPROTO_TCP), name: 31)
        }
    }

    @Test func invalidValuesAreRejectedBeforeAnyCall() throws {
        let socket = try Socket(.inet, .stream)
        // Every value below is checked before the descriptor is touched, so a closed socket
        // still reports the bad value rather than "closed".
        try socket.close()
        expectInvalid("IP_TTL") { () throws(SocketError) in try socket.set(.timeToLive, 256) }
        expectInvalid("IP_TTL") { () throws(SocketError) in try socket.set(.timeToLive, 0) }
        expectInvalid("IP_TOS") { () throws(SocketError) in try socket.set(.typeOfService, 300) }
        expectInvalid("IP_MULTICAST_TTL") { () throws(SocketError) in try socket.set(.multicastTimeToLive, 256) }
        expectInvalid("IPV6_UNICAST_HOPS") { () throws(SocketError) in try socket.set(.ipv6UnicastHops, -2) }
        expectInvalid("SO_RCVBUF") { () throws(SocketError) in try socket.set(.receiveBufferSize, -1) }
        expectInvalid("SO_SNDBUF") { () throws(SocketError) in try socket.set(.sendBufferSize, Int(Int32.max) + 1) }
        expectInvalid("SO_RCVBUFFORCE") { () throws(SocketError) in try socket.set(.forcedReceiveBufferSize, -5) }
        expectInvalid("SO_RCVTIMEO") { () throws(SocketError) in try socket.set(.receiveTimeout, .zero) }
        expectInvalid("SO_SNDTIMEO") { () throws(SocketError) in try socket.set(.sendTimeout, .seconds(-1)) }
        expectInvalid("SO_LINGER") { () throws(SocketError) in try socket.set(.linger, .milliseconds(1500)) }
        expectInvalid("SO_LINGER") { () throws(SocketError) in try socket.set(.linger, .seconds(-3)) }
        expectInvalid("SO_BINDTODEVICE") { () throws(SocketError) in try socket.set(.bindToDevice, "an-interface-name-too-long") }
        expectInvalid("SO_PEEK_OFF") { () throws(SocketError) in try socket.set(.peekOffset, -7) }
        expectInvalid("SO_BUSY_POLL") { () throws(SocketError) in try socket.set(.busyPoll, .nanoseconds(1500)) }
        expectInvalid("TCP_KEEPCNT") { () throws(SocketError) in try socket.set(.tcpKeepCount, 128) }
        expectInvalid("TCP_KEEPIDLE") { () throws(SocketError) in try socket.set(.tcpKeepIdle, .milliseconds(1500)) }
        expectInvalid("TCP_KEEPINTVL") { () throws(SocketError) in try socket.set(.tcpKeepInterval, .zero) }
        expectInvalid("TCP_USER_TIMEOUT") { () throws(SocketError) in try socket.set(.tcpUserTimeout, .microseconds(1500)) }
        expectInvalid("TCP_MAXSEG") { () throws(SocketError) in try socket.set(.tcpMaxSegment, 50) }
        expectInvalid("TCP_SYNCNT") { () throws(SocketError) in try socket.set(.tcpSynCount, 0) }
        expectInvalid("TCP_NOTSENT_LOWAT") { () throws(SocketError) in try socket.set(.tcpNotSentLowWatermark, -1) }
        expectInvalid("TCP_LINGER2") { () throws(SocketError) in try socket.set(.tcpFinWait2Timeout, .seconds(-2)) }
        expectInvalid("TCP_CONGESTION") { () throws(SocketError) in try socket.set(.tcpCongestion, String(repeating: "c", count: 16)) }
        expectInvalid("IPV6_CHECKSUM") { () throws(SocketError) in try socket.set(.ipv6Checksum, 5) }
        expectInvalid("IPV6_MULTICAST_IF") { () throws(SocketError) in try socket.set(.ipv6MulticastInterface, UInt32(Int32.max) + 1) }
        expectInvalid("IP_ADD_MEMBERSHIP") { () throws(SocketError) in try socket.joinMulticastGroup(IPv4Address(10, 0, 0, 1)) }
        expectInvalid("IP_ADD_SOURCE_MEMBERSHIP") { () throws(SocketError) in
            try socket.joinMulticastGroup(IPv4Address(232, 1, 1, 1), source: IPv4Address(239, 1, 1, 1))
        }
        expectInvalid("IP_BLOCK_SOURCE") { () throws(SocketError) in try socket.blockMulticastSource(.loopback, group: .loopback) }
        expectInvalid("IPV6_JOIN_GROUP") { () throws(SocketError) in try socket.joinMulticastGroup(IPv6Address.loopback) }
        expectInvalid("IPV6_LEAVE_GROUP") { () throws(SocketError) in try socket.leaveMulticastGroup(IPv6Address.loopback, interfaceIndex: 1) }
        expectInvalid("TCP_KEEPIDLE") { () throws(SocketError) in try socket.setKeepalive(TCPKeepalive(idle: .seconds(40_000))) }

        // A valid value on the closed socket reports the closed socket, naming the option.
        do {
            try socket.set(.timeToLive, 64)
            Issue.record("set on a closed socket succeeded")
        } catch {
            #expect(error.reason == .closed)
            #expect(error.description == "setsockopt(IP_TTL): socket is closed")
        }
    }

    @Test func errorMessagesNameTheOption() throws {
        let socket = try Socket(.inet, .datagram)
        defer { try? socket.close() }
        do {
            try socket.set(.timeToLive, 300)
            Issue.record("TTL 300 accepted")
        } catch {
            #expect(error.description == "setsockopt(IP_TTL): TTL 300 is not -1 or 1...255")
        }
        do {
            _ = try socket.get(.pathMTU)
            Issue.record("IP_MTU on an unconnected socket succeeded")
        } catch {
            #expect(error.description == "getsockopt(IP_MTU): Transport endpoint is not connected (ENOTCONN)")
        }
    }
}

// MARK: - Multicast membership

/// The loopback interface here lacks the MULTICAST flag, so multicast tests run on a veth
/// interface inside a namespace of their own (`NetworkNamespace` from SocketsTestSupport).
/// Sockets are created with this thread moved into the namespace, then used from anywhere: a
/// socket stays in the namespace it was created in.
extension NetworkNamespace {
    /// A new namespace with the veth pair mcA–mcB, both up, and `address` on mcA (an IPv6
    /// one with `nodad`: usable at once, without waiting for duplicate address detection).
    static func withVeth(address: String) throws -> NetworkNamespace {
        let namespace = try NetworkNamespace(prefix: "sockopt")
        do {
            try namespace.ip("link", "add", "mcA", "type", "veth", "peer", "name", "mcB")
            if address.contains(":") {
                try namespace.ip("-6", "addr", "add", address, "dev", "mcA", "nodad")
            } else {
                try namespace.ip("addr", "add", address, "dev", "mcA")
            }
            try namespace.ip("link", "set", "mcA", "up")
            try namespace.ip("link", "set", "mcB", "up")
            return namespace
        } catch {
            namespace.delete()
            throw error
        }
    }

    /// The number of sockets that joined `group` on `device`, from the kernel's IGMP table
    /// (`/proc/net/igmp` of this namespace); `nil` when not joined.
    func igmpUsers(of group: IPv4Address, on device: String) throws -> Int? {
        guard let table = try enter({ readTextFile("/proc/thread-self/net/igmp") }) else {
            throw CommandFailure("cannot read the IGMP table")
        }
        // The group is printed as the hex of its network-order bytes read as a little-endian int.
        let bytes = group.bytes
        let hex = String(UInt32(bytes[3]) << 24 | UInt32(bytes[2]) << 16 | UInt32(bytes[1]) << 8 | UInt32(bytes[0]), radix: 16, uppercase: true)
        let wanted = String(repeating: "0", count: 8 - hex.count) + hex
        var inDevice = false
        for line in table.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if !line.hasPrefix("\t"), fields.count > 1 {
                inDevice = fields[1] == device
            } else if inDevice, fields.count > 1, fields[0] == wanted {
                return Int(fields[1])
            }
        }
        return nil
    }
}

/// Receives one datagram (the socket has a receive timeout, so a lost datagram fails the test
/// instead of hanging it) and returns its text and sender.
private func receiveText(_ socket: Socket) throws -> (String, SocketAddress?) {
    let datagram = try socket.receiveDatagram(maxLength: 100)
    let bytes = datagram.bytes
    let sender = datagram.sender
    return (String(decoding: bytes, as: UTF8.self), sender)
}

private func openReceivers(_ count: Int, _ domain: SocketDomain, in namespace: NetworkNamespace) throws -> (sockets: [Socket], port: UInt16) {
    let sockets = try namespace.enter { try (0..<count).map { _ in try Socket(domain, .datagram) } }
    var port: UInt16 = 0
    do {
        for socket in sockets {
            try socket.set(.reuseAddress, true)
            try socket.set(.receiveTimeout, .seconds(5))
            if domain == .inet {
                try socket.set(.multicastAll, false)
                try socket.bind(to: .ipv4(.any, port: port))
            } else {
                try socket.set(.ipv6Only, true)
                try socket.set(.ipv6MulticastAll, false)
                try socket.bind(to: .ipv6(.any, port: port))
            }
            port = try #require(try socket.localAddress().port)
        }
    } catch {
        for socket in sockets { try? socket.close() }
        throw error
    }
    return (sockets, port)
}

@Suite(.noDescriptorLeaks())
struct MulticastTests {
    @Test(.requires(.networkNamespaces)) func ipv4MembershipOverVeth() throws {
        let namespace = try NetworkNamespace.withVeth(address: "10.77.0.1/30")
        defer { namespace.delete() }
        let local = IPv4Address(10, 77, 0, 1)
        let index = try #require(try namespace.enter { Syscall.interfaceIndex(name: "mcA") })
        let group1 = IPv4Address(239, 77, 1, 1)
        let group2 = IPv4Address(239, 77, 1, 2)

        let sender = try namespace.enter { try Socket(.inet, .datagram) }
        defer { try? sender.close() }
        try roundTrip(sender, .multicastInterface, local)
        try sender.set(.multicastTimeToLive, 1)
        #expect(try sender.get(.multicastLoop))

        let (receivers, port) = try openReceivers(2, .inet, in: namespace)
        defer { for socket in receivers { try? socket.close() } }
        let (first, second) = (receivers[0], receivers[1])

        // Join by interface address and by interface index; both receive one datagram.
        try first.joinMulticastGroup(group1, interface: local)
        try second.joinMulticastGroup(group1, interfaceIndex: index)
        #expect(try namespace.igmpUsers(of: group1, on: "mcA") == 2)
        _ = try sender.send(Array("one".utf8), to: .ipv4(group1, port: port))
        for socket in receivers {
            let (text, from) = try receiveText(socket)
            #expect(text == "one")
            #expect(from?.ipAddress == .v4(local))
        }

        // Leaving: the second socket now gets only group 2, whose datagram is sent after
        // group 1's, so receiving "marker" first proves group 1's was not delivered.
        try second.joinMulticastGroup(group2, interface: local)
        try second.leaveMulticastGroup(group1, interfaceIndex: index)
        #expect(try namespace.igmpUsers(of: group1, on: "mcA") == 1)
        _ = try sender.send(Array("two".utf8), to: .ipv4(group1, port: port))
        _ = try sender.send(Array("marker".utf8), to: .ipv4(group2, port: port))
        #expect(try receiveText(first).0 == "two")
        #expect(try receiveText(second).0 == "marker")

        // IP_MULTICAST_ALL: with it on, a wildcard-bound socket gets every group the host
        // joined, including group 1 (joined by the first socket).
        try second.set(.multicastAll, true)
        _ = try sender.send(Array("three".utf8), to: .ipv4(group1, port: port))
        #expect(try receiveText(first).0 == "three")
        #expect(try receiveText(second).0 == "three")
        try second.set(.multicastAll, false)

        // IP_MULTICAST_LOOP off: this host's listeners do not get the datagram.
        try sender.set(.multicastLoop, false)
        _ = try sender.send(Array("not looped".utf8), to: .ipv4(group1, port: port))
        try sender.set(.multicastLoop, true)
        _ = try sender.send(Array("four".utf8), to: .ipv4(group1, port: port))
        #expect(try receiveText(first).0 == "four")

        // Blocking a source, then unblocking it.
        try first.joinMulticastGroup(group2, interface: local)
        try first.blockMulticastSource(local, group: group1, interface: local)
        _ = try sender.send(Array("blocked".utf8), to: .ipv4(group1, port: port))
        _ = try sender.send(Array("marker2".utf8), to: .ipv4(group2, port: port))
        #expect(try receiveText(first).0 == "marker2")
        #expect(try receiveText(second).0 == "marker2")
        try first.unblockMulticastSource(local, group: group1, interface: local)
        _ = try sender.send(Array("five".utf8), to: .ipv4(group1, port: port))
        #expect(try receiveText(first).0 == "five")

        // Errors from the kernel, named with the group.
        expectErrno(EADDRINUSE) { () throws(SocketError) in try first.joinMulticastGroup(group1, interface: local) }
        expectErrno(EADDRNOTAVAIL) { () throws(SocketError) in try second.leaveMulticastGroup(group1, interfaceIndex: index) }
        expectErrno(ENODEV) { () throws(SocketError) in try first.joinMulticastGroup(group2, interface: IPv4Address(10, 99, 99, 99)) }
        do {
            try first.joinMulticastGroup(group1, interface: local)
        } catch {
            #expect(error.description.hasPrefix("setsockopt(IP_ADD_MEMBERSHIP)(239.77.1.1 on 10.77.0.1): "))
        }
        try first.leaveMulticastGroup(group1, interface: local)
        #expect(try namespace.igmpUsers(of: group1, on: "mcA") == nil)
    }

    @Test(.requires(.networkNamespaces)) func ipv4SourceSpecificMembership() throws {
        let namespace = try NetworkNamespace.withVeth(address: "10.77.0.1/30")
        defer { namespace.delete() }
        let local = IPv4Address(10, 77, 0, 1)
        let otherSource = IPv4Address(10, 77, 0, 2)
        let ssmGroup = IPv4Address(232, 77, 1, 1)
        let markerGroup = IPv4Address(239, 77, 1, 4)

        let sender = try namespace.enter { try Socket(.inet, .datagram) }
        defer { try? sender.close() }
        try sender.set(.multicastInterface, local)

        let (receivers, port) = try openReceivers(2, .inet, in: namespace)
        defer { for socket in receivers { try? socket.close() } }
        let (wantsUs, wantsOther) = (receivers[0], receivers[1])
        try wantsUs.joinMulticastGroup(ssmGroup, source: local, interface: local)
        try wantsOther.joinMulticastGroup(ssmGroup, source: otherSource, interface: local)
        try wantsOther.joinMulticastGroup(markerGroup, interface: local)

        _ = try sender.send(Array("ssm".utf8), to: .ipv4(ssmGroup, port: port))
        _ = try sender.send(Array("marker".utf8), to: .ipv4(markerGroup, port: port))
        #expect(try receiveText(wantsUs).0 == "ssm")
        #expect(try receiveText(wantsOther).0 == "marker")

        // Dropping the only source ends the membership.
        try wantsUs.leaveMulticastGroup(ssmGroup, source: local, interface: local)
        try wantsUs.joinMulticastGroup(markerGroup, interface: local)
        _ = try sender.send(Array("gone".utf8), to: .ipv4(ssmGroup, port: port))
        _ = try sender.send(Array("marker2".utf8), to: .ipv4(markerGroup, port: port))
        #expect(try receiveText(wantsUs).0 == "marker2")
        #expect(try receiveText(wantsOther).0 == "marker2")
        // With no membership left, the kernel calls a second drop EINVAL.
        expectErrno(EINVAL) { () throws(SocketError) in
            try wantsUs.leaveMulticastGroup(ssmGroup, source: local, interface: local)
        }
    }

    @Test(.requires(.networkNamespaces)) func ipv6MembershipOverVeth() throws {
        let namespace = try NetworkNamespace.withVeth(address: "fd77::1/64")
        defer { namespace.delete() }
        let index = try #require(try namespace.enter { Syscall.interfaceIndex(name: "mcA") })
        let group1 = try IPv6Address("ff15::77")
        let group2 = try IPv6Address("ff15::78")

        let sender = try namespace.enter { try Socket(.inet6, .datagram) }
        defer { try? sender.close() }
        try roundTrip(sender, .ipv6MulticastInterface, index)
        try sender.set(.ipv6MulticastHops, 1)
        #expect(try sender.get(.ipv6MulticastLoop))

        let (receivers, port) = try openReceivers(2, .inet6, in: namespace)
        defer { for socket in receivers { try? socket.close() } }
        let (first, second) = (receivers[0], receivers[1])
        for socket in receivers { try socket.joinMulticastGroup(group1, interfaceIndex: index) }
        _ = try sender.send(Array("one".utf8), to: .ipv6(group1, port: port))
        for socket in receivers {
            let (text, from) = try receiveText(socket)
            #expect(text == "one")
            #expect(from?.ipAddress == .v6(try IPv6Address("fd77::1")))
        }

        try second.joinMulticastGroup(group2, interfaceIndex: index)
        try second.leaveMulticastGroup(group1, interfaceIndex: index)
        _ = try sender.send(Array("two".utf8), to: .ipv6(group1, port: port))
        _ = try sender.send(Array("marker".utf8), to: .ipv6(group2, port: port))
        #expect(try receiveText(first).0 == "two")
        #expect(try receiveText(second).0 == "marker")

        expectErrno(EADDRINUSE) { () throws(SocketError) in try first.joinMulticastGroup(group1, interfaceIndex: index) }
        expectErrno(EADDRNOTAVAIL) { () throws(SocketError) in try second.leaveMulticastGroup(group1, interfaceIndex: index) }
        expectErrno(ENODEV) { () throws(SocketError) in try first.joinMulticastGroup(group2, interfaceIndex: 999_999) }
        expectInvalid("IPV6_JOIN_GROUP") { () throws(SocketError) in try first.joinMulticastGroup(try IPv6Address("fd77::2"), interfaceIndex: index) }
        try first.leaveMulticastGroup(group1, interfaceIndex: index)
    }
}
