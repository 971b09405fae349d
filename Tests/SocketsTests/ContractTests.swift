import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Synchronization
import Testing

/// Promises of the README and the man pages that an outside acceptance run found broken:
/// signals and a connect's timeout, non-UTF-8 Unix paths, one question for every timeout,
/// and leaving the process's `SIGPIPE` disposition alone.
@Suite(.noDescriptorLeaks())
struct ContractTests {
    // MARK: A signal must not remove a connect's timeout

    /// Installs a handler for SIGUSR2 that does nothing, without `SA_RESTART`, as a program
    /// with its own signal handling would.
    static let signalHandlerInstalled: Bool = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        return sigaction(SIGUSR2, &action, nil) == 0
    }()

    @Test func signalsDoNotStretchAConnectsSendTimeout() throws {
        try #require(Self.signalHandlerInstalled)
        // Backlog 0 with one connection queued drops further SYNs: a black hole on loopback.
        let (listener, address) = try CoreTest.tcpListener(backlog: 0)
        let queued = try Socket(.inet, .stream)
        try queued.connect(to: address)
        let client = try Socket(.inet, .stream)
        try client.set(.sendTimeout, .seconds(1))
        let connectingThread = Mutex<pthread_t?>(nil)
        let connector = BackgroundThread { () throws -> (String, Duration) in
            connectingThread.withLock { $0 = pthread_self() }
            let started = ContinuousClock.now
            do {
                try client.connect(to: address)
                return ("connected", started.duration(to: .now))
            } catch let error as SocketError {
                return (error.isTimeout ? "timed out" : "other: \(error)", started.duration(to: .now))
            }
        }
        // A signal every 300 ms while the connect waits.
        var signals = 0
        while !connector.isFinished && signals < 20 {
            CoreTest.sleep(milliseconds: 300)
            if let thread = connectingThread.withLock({ $0 }), !connector.isFinished {
                pthread_kill(thread, SIGUSR2)
                signals += 1
            }
        }
        let (outcome, elapsed) = try connector.join()
        #expect(outcome == "timed out")
        #expect(signals >= 3, "the connect was interrupted \(signals) times")
        // The bound is SO_SNDTIMEO's second; before, each signal restarted the wait without one.
        #expect(elapsed >= .milliseconds(900) && elapsed < .milliseconds(2_500), "\(elapsed)")
        let restored = try #require(try client.get(.sendTimeout))
        #expect(restored >= .seconds(1) && restored < .milliseconds(1_100), "the caller's SO_SNDTIMEO is put back: \(restored)")
        for socket in [client, queued, listener] { try socket.close() }
    }

    // MARK: Unix paths are bytes

    @Test func bindWithPermissionsUsesThePathsBytes() throws {
        let bytes = Array("/tmp/sockets-".utf8) + [0xFF, 0xFE] + Array("-\(getpid())-\(UInt32.random(in: 0...UInt32.max))".utf8)
        let address = try UnixSocketAddress(pathBytes: bytes)
        let socket = try Socket(.unix, .stream)
        // 0666: the umask (022 by default) removes bits, which are then added back by name.
        try socket.bind(to: address, permissions: [.ownerReadWrite, .groupReadWrite, .otherReadWrite])
        defer { try? Syscall.removeSocketFile(bytes) }
        let mode = try Syscall.linkMode(bytes)
        #expect(mode & S_IFMT == S_IFSOCK)
        #expect(mode & 0o777 == 0o666, "mode 0o\(String(mode & 0o777, radix: 8))")
        #expect(try socket.localAddress() == .unix(address), "the kernel has the same bytes")
        let client = try Socket(.unix, .stream)
        try socket.listen()
        try client.connect(to: .unix(address))
        try client.close()
        try socket.close()
    }

    // MARK: One question for every timeout

    @Test func everyKindOfTimeoutAnswersIsTimeout() throws {
        // SO_RCVTIMEO on a blocking socket: the kernel says EAGAIN.
        let receiver = try Socket(.inet, .datagram)
        try receiver.bind(to: .ipv4(.loopback, port: 0))
        try receiver.set(.receiveTimeout, .milliseconds(50))
        let expired = #expect(throws: SocketError.self) { try receiver.receive(maxLength: 10) }
        #expect(expired?.isTimeout == true)
        #expect(expired?.isWouldBlock == true, "still EAGAIN, as the kernel said")
        #expect(expired?.description == "recv: Resource temporarily unavailable (EAGAIN: SO_RCVTIMEO ran out)")

        // "Would block" is not a timeout: a non-blocking socket, or MSG_DONTWAIT.
        let dontWait = #expect(throws: SocketError.self) { try receiver.receive(maxLength: 10, flags: .dontWait) }
        #expect(dontWait?.isWouldBlock == true)
        #expect(dontWait?.isTimeout == false)
        try receiver.setNonBlocking(true)
        let nonBlocking = #expect(throws: SocketError.self) { try receiver.receive(maxLength: 10) }
        #expect(nonBlocking?.isTimeout == false)

        // This library's own timeout, and the kernel's ETIMEDOUT.
        let (listener, address) = try CoreTest.tcpListener(backlog: 0)
        let queued = try Socket(.inet, .stream)
        try queued.connect(to: address)
        let ownTimeout = #expect(throws: SocketError.self) {
            try Socket(.inet, .stream).connect(to: address, timeout: .milliseconds(100))
        }
        #expect(ownTimeout?.reason == .timedOut)
        #expect(ownTimeout?.isTimeout == true)
        let kernelTimeout = try Socket(.inet, .stream)
        try kernelTimeout.set(.tcpUserTimeout, .milliseconds(300))
        let gaveUp = #expect(throws: SocketError.self) { try kernelTimeout.connect(to: address) }
        #expect(gaveUp?.errno == .timedOut)
        #expect(gaveUp?.isTimeout == true)

        // Refused is not a timeout.
        let closedPort = try Socket(.inet, .stream)
        try closedPort.bind(to: .ipv4(.loopback, port: 0))
        let refused = #expect(throws: SocketError.self) { try Socket(.inet, .stream).connect(to: try closedPort.localAddress()) }
        #expect(refused?.isTimeout == false)
        for socket in [receiver, listener, queued, kernelTimeout, closedPort] { try socket.close() }
    }

    // MARK: Small API friction

    @Test func localPortNeedsNoOptional() throws {
        let socket = try Socket(.inet6, .datagram)
        #expect(try socket.localPort() == 0, "not bound yet")
        try socket.bind(to: .ipv6(.loopback, port: 0))
        let port = try socket.localPort()
        #expect(port != 0)
        #expect(try socket.localAddress().port == port)
        let unix = try Socket(.unix, .datagram)
        let notIP = #expect(throws: SocketError.self) { try unix.localPort() }
        #expect(notIP?.description.contains("not an IPv4 or IPv6 socket") == true)
        try socket.close()
        try unix.close()
    }

    @Test func selectWithEmptyListsIsAPlainWait() throws {
        // This must compile: empty literals pick the form for sockets.
        let started = ContinuousClock.now
        let result = try Socket.select(forReading: [], timeout: .milliseconds(20))
        #expect(result.isEmpty)
        #expect(started.duration(to: .now) >= .milliseconds(20))
    }

    @Test func zeroCopyCallsLeaveTheSIGPIPEDispositionAlone() throws {
        guard FreshProcess.isChild else { return try FreshProcess.run("ContractTests/zeroCopyCallsLeaveTheSIGPIPEDispositionAlone") }
        // A fresh process, so the default disposition (SIG_DFL) is safe to set: it may have
        // inherited SIG_IGN from the test runner, which would hide a change.
        var byDefault = sigaction()
        byDefault.__sigaction_handler.sa_handler = nil
        #expect(sigaction(SIGPIPE, &byDefault, nil) == 0)

        let (client, server) = try CoreTest.tcpPair()
        try server.close()
        // The peer is gone: the first send may still succeed, a later one fails with EPIPE.
        let path = CoreTest.unixPath("sigpipe")
        let file = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        unlink(path)
        defer { Glibc.close(file) }
        #expect(ftruncate(file, 1 << 20) == 0)
        var failure: SocketError?
        for _ in 0..<50 where failure == nil {
            do { _ = try client.sendFile(from: file) } catch { failure = error }
        }
        #expect(failure?.errno == .brokenPipe || failure?.errno == .connectionReset, "\(String(describing: failure))")

        var after = sigaction()
        sigaction(SIGPIPE, nil, &after)
        #expect(after.__sigaction_handler.sa_handler == nil, "still SIG_DFL, and the process is alive")
        var pending = sigset_t()
        sigpending(&pending)
        #expect(sigismember(&pending, SIGPIPE) == 0, "no SIGPIPE left pending")
        try client.close()
    }
}
