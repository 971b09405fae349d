import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Testing

@Suite(.noDescriptorLeaks())
struct ConnectionTests {
    /// `net.ipv4.ip_local_port_range`, where ephemeral ports come from.
    static func ephemeralRange() -> ClosedRange<UInt16> {
        let text = CoreTest.readSmallFile("/proc/sys/net/ipv4/ip_local_port_range") ?? ""
        let numbers = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { UInt16($0) }
        guard numbers.count == 2 else { return 1...65535 }
        return numbers[0]...numbers[1]
    }

    @Test(arguments: [SocketAddress.ipv4(.loopback, port: 0), .ipv6(.loopback, port: 0), .ipv4(.any, port: 0)])
    func bindPortZeroGivesAnEphemeralPort(address: SocketAddress) throws {
        for type in [SocketType.stream, .datagram] {
            let socket = try Socket(address.domain, type)
            try socket.bind(to: address)
            let bound = try socket.localAddress()
            #expect(bound.ipAddress == address.ipAddress)
            let port = try #require(bound.port)
            #expect(Self.ephemeralRange().contains(port), "\(bound)")
        }
    }

    @Test func addressInUseNamesTheAddress() throws {
        let (listener, address) = try CoreTest.tcpListener()
        let second = try Socket(.inet, .stream)
        let error = #expect(throws: SocketError.self) { try second.bind(to: address) }
        #expect(error?.errno == .addressInUse)
        #expect(error?.description == "bind(\(address)): Address already in use (EADDRINUSE)")
        #expect(error?.address == address.description)
        try listener.close()
    }

    @Test func bindToAnAddressNotOnThisHost() throws {
        let socket = try Socket(.inet, .datagram)
        let error = #expect(throws: SocketError.self) { try socket.bind(to: .ipv4(IPv4Address(192, 0, 2, 1), port: 0)) }
        #expect(error?.description == "bind(192.0.2.1:0): Cannot assign requested address (EADDRNOTAVAIL)")
        let family = #expect(throws: SocketError.self) { try socket.bind(to: .ipv6(.loopback, port: 0)) }
        #expect(family?.errno == .invalidArgument || family?.errno == .addressFamilyNotSupported)
    }

    @Test func listenBacklog() throws {
        let socket = try Socket(.inet, .stream)
        try socket.bind(to: .ipv4(.loopback, port: 0))
        #expect(try CoreTest.intOption(socket, level: SOL_SOCKET, name: SO_ACCEPTCONN) == 0)
        let negative = #expect(throws: SocketError.self) { try socket.listen(backlog: -1) }
        #expect(negative?.description == "listen: backlog -1 is outside 0...2147483647")
        #expect(throws: SocketError.self) { try socket.listen(backlog: Int(CInt.max) + 1) }
        #expect(try CoreTest.intOption(socket, level: SOL_SOCKET, name: SO_ACCEPTCONN) == 0, "rejected before listen(2)")
        try socket.listen(backlog: 0)
        #expect(try CoreTest.intOption(socket, level: SOL_SOCKET, name: SO_ACCEPTCONN) == 1)
        // Listening again changes only the backlog.
        try socket.listen(backlog: 5)

        let unbound = try Socket(.unix, .datagram)
        let error = #expect(throws: SocketError.self) { try unbound.listen() }
        #expect(error?.errno == .notSupportedOnSocket)
    }

    @Test(arguments: [SocketAddress.ipv4(.loopback, port: 0), .ipv6(.loopback, port: 0)])
    func blockingConnectAndAccept(bindAddress: SocketAddress) throws {
        let listener = try Socket(bindAddress.domain, .stream)
        try listener.bind(to: bindAddress)
        try listener.listen()
        try CoreTest.setTimeouts(listener)
        let address = try listener.localAddress()
        let client = try Socket(bindAddress.domain, .stream)
        try client.connect(to: address)
        let (server, peer) = try listener.accept()
        #expect(peer == (try client.localAddress()))
        #expect(try server.peerAddress() == peer)
        #expect(try server.localAddress() == address)
        #expect(try client.peerAddress() == address)
        #expect(try server.isCloseOnExec())
        #expect(try server.isNonBlocking() == false)
        #expect(peer.ipAddress?.isLoopback == true)
        try CoreTest.setTimeouts(server)
        #expect(try client.send([1, 2, 3]) == 3)
        #expect(try server.receive(maxLength: 3, flags: .waitAll) == [1, 2, 3])
    }

    @Test func ipv6ListenerAcceptsIPv4MappedClients() throws {
        let listener = try Socket(.inet6, .stream)
        try listener.bind(to: .ipv6(.any, port: 0))
        try listener.listen()
        try CoreTest.setTimeouts(listener)
        let port = try #require(try listener.localAddress().port)
        let client = try Socket(.inet, .stream)
        try client.connect(to: .ipv4(.loopback, port: port))
        let (_, peer) = try listener.accept()
        guard case .ipv6(let v6) = peer else { Issue.record("\(peer)"); return }
        #expect(v6.address.ipv4Mapped == .loopback)
        #expect(v6.port == (try client.localAddress()).port)
        #expect(peer.description == "[::ffff:127.0.0.1]:\(v6.port)")
    }

    @Test func acceptFlags() throws {
        let (listener, address) = try CoreTest.tcpListener()
        let first = try Socket(.inet, .stream)
        try first.connect(to: address)
        let second = try Socket(.inet, .stream)
        try second.connect(to: address)
        let (blocking, _) = try listener.accept()
        let (nonBlocking, _) = try listener.accept(nonBlocking: true)
        #expect(try blocking.isNonBlocking() == false)
        #expect(try nonBlocking.isNonBlocking())
        #expect(try blocking.isCloseOnExec() && nonBlocking.isCloseOnExec())
    }

    /// A port nobody listens on: bind one, read it, close it.
    static func closedPort() throws -> UInt16 {
        let socket = try Socket(.inet, .stream)
        try socket.bind(to: .ipv4(.loopback, port: 0))
        let port = try socket.localAddress().port ?? 0
        try socket.close()
        return port
    }

    @Test func connectRefused() throws {
        let port = try Self.closedPort()
        let client = try Socket(.inet, .stream)
        let error = #expect(throws: SocketError.self) { try client.connect(to: .ipv4(.loopback, port: port)) }
        #expect(error?.errno == .connectionRefused)
        #expect(error?.description == "connect(127.0.0.1:\(port)): Connection refused (ECONNREFUSED)")

        // The same through the non-blocking path of a connect with a timeout.
        let timed = try Socket(.inet, .stream)
        let timedError = #expect(throws: SocketError.self) {
            try timed.connect(to: .ipv4(.loopback, port: port), timeout: .seconds(5))
        }
        #expect(timedError?.description == "connect(127.0.0.1:\(port)): Connection refused (ECONNREFUSED)")
        #expect(try timed.isNonBlocking() == false, "blocking mode restored")
    }

    @Test func connectWithTimeoutSucceeds() throws {
        let (listener, address) = try CoreTest.tcpListener()
        let client = try Socket(.inet, .stream)
        try client.connect(to: address, timeout: .seconds(5))
        #expect(try client.peerAddress() == address)
        #expect(try client.isNonBlocking() == false)
        let nonBlocking = try Socket(.inet, .stream, nonBlocking: true)
        try nonBlocking.connect(to: address, timeout: .seconds(5))
        #expect(try nonBlocking.isNonBlocking(), "a non-blocking socket stays non-blocking")
        _ = try listener.accept()
        _ = try listener.accept()
    }

    @Test func connectTimeoutExpires() throws {
        // A listener with backlog 0 queues one connection; after that its SYNs are dropped,
        // so the next connect gets no answer at all: a local black hole.
        let (listener, address) = try CoreTest.tcpListener(backlog: 0)
        let queued = try Socket(.inet, .stream)
        try queued.connect(to: address)

        let client = try Socket(.inet, .stream)
        let start = ContinuousClock.now
        let error = #expect(throws: SocketError.self) { try client.connect(to: address, timeout: .milliseconds(300)) }
        let elapsed = ContinuousClock.now - start
        #expect(error?.reason == .timedOut)
        #expect(error?.description == "connect(\(address)): timed out (ETIMEDOUT)")
        #expect(error?.errno == .timedOut)
        #expect(elapsed >= .milliseconds(300), "it must not give up early: \(elapsed)")
        #expect(elapsed < .seconds(10), "it must return: \(elapsed)")
        #expect(try client.isNonBlocking() == false)

        // A timeout of zero gives up at once.
        let impatient = try Socket(.inet, .stream)
        let zero = #expect(throws: SocketError.self) { try impatient.connect(to: address, timeout: .zero) }
        #expect(zero?.reason == .timedOut)
        try listener.close()
    }

    @Test func blockingConnectHonoursSendTimeout() throws {
        // SO_SNDTIMEO bounds a blocking connect; the kernel then returns EINPROGRESS, which
        // must be reported as a time-out, not waited out.
        let (listener, address) = try CoreTest.tcpListener(backlog: 0)
        let queued = try Socket(.inet, .stream)
        try queued.connect(to: address)
        let client = try Socket(.inet, .stream)
        try CoreTest.setTimeouts(client, milliseconds: 200)
        let error = #expect(throws: SocketError.self) { try client.connect(to: address) }
        #expect(error?.reason == .timedOut, "\(String(describing: error))")
        try listener.close()
    }

    @Test func unixConnectToAFullBacklog() throws {
        let path = CoreTest.unixPath("backlog")
        defer { CoreTest.remove(path) }
        let listener = try Socket(.unix, .stream)
        try listener.bind(to: .unix(path: path))
        try listener.listen(backlog: 0)
        let queued = try Socket(.unix, .stream)
        try queued.connect(to: .unix(path: path))

        // Unix sockets refuse with EAGAIN when the backlog is full; that is not "in progress".
        let nonBlocking = try Socket(.unix, .stream, nonBlocking: true)
        let immediate = #expect(throws: SocketError.self) { try nonBlocking.tryConnect(to: .unix(path: path)) }
        #expect(immediate?.isWouldBlock == true)
        #expect(throws: SocketError.self) { try nonBlocking.peerAddress() }

        let timed = try Socket(.unix, .stream)
        let error = #expect(throws: SocketError.self) { try timed.connect(to: .unix(path: path), timeout: .milliseconds(200)) }
        #expect(error?.reason == .timedOut, "\(String(describing: error))")
        #expect(throws: SocketError.self) { try timed.peerAddress() }

        let blocking = try Socket(.unix, .stream)
        try CoreTest.setTimeouts(blocking, milliseconds: 200)
        let blockingError = #expect(throws: SocketError.self) { try blocking.connect(to: .unix(path: path)) }
        #expect(blockingError?.isWouldBlock == true, "\(String(describing: blockingError))")

        // Once the queue drains, a connect with a timeout gets through.
        _ = try listener.accept()
        let late = try Socket(.unix, .stream)
        try late.connect(to: .unix(path: path), timeout: .seconds(5))
        #expect(try late.peerAddress() == .unix(path: path))
    }

    @Test func connectToAMissingUnixPath() throws {
        let path = CoreTest.unixPath("missing")
        let client = try Socket(.unix, .stream)
        let error = #expect(throws: SocketError.self) { try client.connect(to: .unix(path: path)) }
        #expect(error?.description == "connect(\(path)): No such file or directory (ENOENT)")
    }

    @Test func finishConnectReportsTheError() throws {
        let port = try Self.closedPort()
        let client = try Socket(.inet, .stream, nonBlocking: true)
        if try client.tryConnect(to: .ipv4(.loopback, port: port)) == false {
            #expect(try CoreTest.poll(client, Int16(POLLOUT)) != 0)
        }
        let error = #expect(throws: SocketError.self) { try client.finishConnect() }
        #expect(error?.errno == .connectionRefused)
        #expect(try client.takeError() == nil, "reading SO_ERROR cleared it")
    }
}
