import Foundation
import Glibc
import Sockets
import SocketSyscalls
import Synchronization
import SystemPackage
import Testing

// CHECKLIST rows that were named in the API but never asserted on a real socket: D12 (MSG_MORE,
// MSG_ZEROCOPY, MSG_FASTOPEN, MSG_CONFIRM), D13 and J4 (MSG_OOB and MSG_EOR as received
// flags), F3 (EPOLLEXCLUSIVE), H4 (NI_NOFQDN), G2.14 (TCP_INQ) and J8 (MPTCP, SCTP).

// MARK: - Fast Open's preconditions

/// TCP Fast Open needs the client bit (0x1) of `net.ipv4.tcp_fastopen` and, for the listener,
/// the server bit (0x2). A network namespace starts with only the client bit, and the test can
/// set the server bit in one of its own as root.
private enum FastOpenSupport {
    static let hostValue = fileText("/proc/sys/net/ipv4/tcp_fastopen").flatMap { Int($0) } ?? 0
    static var hostHasClientAndServer: Bool { hostValue & 0x3 == 0x3 }
    static var isTestable: Bool { Privilege.networkNamespaces.isHeld || hostHasClientAndServer }
    static var requirement: String {
        "net.ipv4.tcp_fastopen is \(hostValue), without the client and server bits (3) that Fast Open needs; the test "
            + "would set them in a network namespace of its own, which \(Privilege.networkNamespaces.requirement)"
    }
}

// MARK: - MPTCP's preconditions

/// Why MPTCP cannot be tested here, or `nil` when an MPTCP socket can be made.
private let multipathUnavailable: String? = {
    do throws(SocketError) {
        let probe = try Socket(.inet, .stream, .mptcp)
        try probe.close()
        return nil
    } catch {
        switch error.errno {
        case .protocolNotSupported?, .invalidArgument?:
            return "the kernel has no MPTCP: \(error)"
        case .protocolNotAvailable?:
            return "MPTCP is off in this network namespace (net.mptcp.enabled is 0): \(error)"
        default:
            // Anything else is a failure for the test itself to report.
            return nil
        }
    }
}()

// MARK: - A private /etc/hosts

/// How a child process gets a mount namespace of its own, where a bind mount can put another
/// file over /etc/hosts: as root `unshare --mount`; otherwise inside a user namespace, if the
/// kernel allows unprivileged ones.
private enum PrivateHostsFile {
    static let wrapper: [String] =
        Capability.sysAdmin.isEffective ? ["unshare", "--mount"] : ["unshare", "--user", "--map-root-user", "--mount"]

    /// Why it cannot be done here, or `nil`.
    static let unavailable: String? = {
        do {
            try runCommand(wrapper + ["true"])
            return nil
        } catch {
            return "a private /etc/hosts needs a mount namespace, and \(wrapper.joined(separator: " ")) failed "
                + "(\(error)): run as root or allow unprivileged user namespaces"
        }
    }()
}

// MARK: - Waiters for EPOLLEXCLUSIVE

/// A thread that waits on an epoll instance of its own for a listener to become readable,
/// counts each wake-up, and then waits to be ``release()``d before it waits again (so that
/// it accepts nothing: the test does).
private final class ListenerWaiter: Sendable {
    let epoll: Epoll
    let wakeUps = Atomic<Int>(0)
    private let released = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    /// `epoll_wait`, `epoll_pwait` and `epoll_pwait2` on x86-64.
    private static let epollWaitCalls = [232, 281, 441]

    init(listener: Socket, events: EpollEvents) throws {
        epoll = try Epoll()
        try epoll.add(listener, events: events)
        let thread = Thread { [self] in
            while (try? epoll.wait(maxEvents: 4)) != nil {
                wakeUps.add(1, ordering: .sequentiallyConsistent)
                released.wait()
            }
            finished.signal()
        }
        thread.start()
    }

    /// Whether the thread is asleep in `epoll_wait` on its instance; a thread woken but not yet
    /// run reads as running, so is not.
    var isWaiting: Bool {
        let fd = epoll.descriptor
        return Self.epollWaitCalls.contains { CoreTest.threadIsBlocked(inSyscall: $0, onDescriptor: fd) }
    }

    /// Lets the thread wait again after a wake-up.
    func release() { released.signal() }

    /// Ends the thread: closing the instance wakes it with an error.
    func stop() {
        try? epoll.close()
        released.signal()
        finished.wait()
    }
}

@Suite(.noDescriptorLeaks())
struct ChecklistRowTests {
    // MARK: D12: MSG_MORE

    @Test func moreCorksUDPSendsIntoOneDatagram() throws {
        let receiver = try Socket(.inet, .datagram)
        try receiver.bind(to: .ipv4(.loopback, port: 0))
        try CoreTest.setTimeouts(receiver)
        let sender = try Socket(.inet, .datagram)
        try sender.connect(to: try receiver.localAddress())

        #expect(try sender.send(Array("ab".utf8), flags: .more) == 2)
        #expect(try sender.send(Array("cd".utf8), flags: .more) == 2)
        // Nothing has left: the datagram is still being built.
        #expect(try receiver.tryReceiveDatagram(maxLength: 100, flags: .dontWait) == nil)
        #expect(try sender.send(Array("ef".utf8)) == 2)
        #expect(try receiver.receiveDatagram(maxLength: 100).bytes == Array("abcdef".utf8))

        // The control: without MSG_MORE each send is a datagram of its own.
        _ = try sender.send(Array("ab".utf8))
        _ = try sender.send(Array("cd".utf8))
        #expect(try receiver.receiveDatagram(maxLength: 100).bytes == Array("ab".utf8))
        #expect(try receiver.receiveDatagram(maxLength: 100).bytes == Array("cd".utf8))
    }

    @Test func moreHoldsTCPDataUntilTheLastSend() throws {
        let (client, server) = try CoreTest.tcpPair()
        try client.set(.tcpNoDelay, true)

        // The kernel sends corked data anyway once its probe timer runs out (200 ms): an
        // attempt this thread was not scheduled for that long proves nothing and is repeated.
        var checked = false
        for _ in 0..<5 where !checked {
            let started = ContinuousClock.now
            _ = try client.send(Array("ab".utf8), flags: .more)
            _ = try client.send(Array("cd".utf8), flags: .more)
            let held = try client.get(.tcpInfo).notSentBytes
            let readable = try CoreTest.poll(server, Int16(POLLIN), milliseconds: 0)
            let intact = started.duration(to: .now) < .milliseconds(100)
            _ = try client.send(Array("ef".utf8))
            guard intact else {
                _ = try server.receive(exactly: 6)
                continue
            }
            checked = true
            #expect(held == 4, "bytes held back by MSG_MORE")
            #expect(readable == 0, "the peer could read before the last send")
            // The receiver's one read after the last send gets all of it.
            #expect(try CoreTest.poll(server, Int16(POLLIN)) & Int16(POLLIN) != 0)
            #expect(try server.receive(maxLength: 100) == Array("abcdef".utf8))
        }
        #expect(checked, "five attempts stalled for 100 ms or more")

        // The control: with TCP_NODELAY and no MSG_MORE, the first bytes leave at once.
        _ = try client.send(Array("ab".utf8))
        #expect(try client.get(.tcpInfo).notSentBytes == 0)
        #expect(try server.receive(maxLength: 100) == Array("ab".utf8))
    }

    // MARK: D12, G1.22: MSG_ZEROCOPY

    @Test func zeroCopySendsReportTheirCompletionsOnTheErrorQueue() throws {
        let (client, server) = try CoreTest.tcpPair()
        let first = CoreTest.pattern(4000, seed: 1)
        let second = CoreTest.pattern(3000, seed: 2)

        // Without SO_ZEROCOPY the flag is ignored: an ordinary send that gets no number.
        try client.sendAll(first, flags: .zeroCopy)
        try client.set(.zeroCopy, true)
        #expect(try client.send(first, flags: .zeroCopy) == first.count)
        #expect(try client.send(second, flags: .zeroCopy) == second.count)
        #expect(CoreTest.same(try server.receive(exactly: 2 * first.count + second.count), first + first + second))

        // The completions: sends 0 and 1, in one or two records.
        var completed: [UInt32] = []
        let controlBuffer = try ControlMessageBuffer()
        while completed.count < 2 {
            let events = try CoreTest.poll(client, 0)
            try #require(events & Int16(POLLERR) != 0, "no completion on the error queue (poll gave \(events))")
            let (bytes, message) = try client.receiveMessage(maxLength: 16, controlBuffer: controlBuffer, flags: .errorQueue)
            #expect(bytes.isEmpty)
            #expect(message.flags.contains(.errorQueue))
            guard case .extendedError(let error)? = message.controlMessages.first, let completion = error.zeroCopyCompletion else {
                Issue.record("not a zero-copy completion: \(message.controlMessages)")
                return
            }
            #expect(error.errno.rawValue == 0)
            #expect(error.domain == .inet)
            // Loopback has to copy the pages for the receiver, and says so.
            #expect(completion.wasCopied)
            #expect(completion.count == Int(completion.last - completion.first) + 1)
            completed += (completion.first...completion.last).map { $0 }
        }
        #expect(completed == [0, 1])
        let empty = #expect(throws: SocketError.self) {
            _ = try client.receiveMessage(maxLength: 16, controlBuffer: controlBuffer, flags: [.errorQueue, .dontWait])
        }
        #expect(empty?.isWouldBlock == true)
    }

    @Test func zeroCopyCompletionRangesWrapAround() {
        let completion = ZeroCopyCompletion(first: UInt32.max - 1, last: 1, wasCopied: false)
        #expect(completion.count == 4)
        #expect(completion.contains(UInt32.max) && completion.contains(0) && completion.contains(1))
        #expect(!completion.contains(2) && !completion.contains(UInt32.max - 2))
        let error = ExtendedError(errno: Errno(rawValue: 0), origin: .zeroCopy, code: 1, info: 5, data: 7)
        #expect(error.zeroCopyCompletion == ZeroCopyCompletion(first: 5, last: 7, wasCopied: true))
        #expect(ExtendedError(errno: .connectionRefused, origin: .icmp, info: 5, data: 7).zeroCopyCompletion == nil)
    }

    // MARK: D12, G2.8: TCP Fast Open

    /// What one run of ``fastOpenExchange()`` saw, checked on the test's own task (the
    /// exchange may run on a thread inside a network namespace).
    private struct FastOpenObservations: Sendable {
        /// Connection 1, before any cookie: the bytes its SYN carried, whether TCP_INFO says the
        /// SYN's data was acknowledged, and what the server read.
        var firstCarried = -1
        var firstSYNData = true
        var firstReceived: [UInt8] = []
        /// Connection 2, with the cookie: the same, what the server could read right after
        /// `accept` without waiting, and the reply read back.
        var secondCarried = -1
        var secondReadableAtAccept: [UInt8] = []
        var secondSYNData = false
        var secondReply: [UInt8] = []
        /// Connection 3, with `TCP_FASTOPEN_CONNECT`: what the server read, and whether the
        /// SYN's data was acknowledged.
        var thirdReceived: [UInt8] = []
        var thirdSYNData = false
    }

    private static let fastOpenGreeting = Array("no cookie yet".utf8)
    private static let fastOpenRequest = Array("GET / in the SYN".utf8)

    @Test(.enabled(if: FastOpenSupport.isTestable, Comment(rawValue: FastOpenSupport.requirement)))
    func fastOpenSendsDataInTheSYN() throws {
        // As root, in a namespace of the test's own: the server bit is set there, and no
        // cookie is cached yet, so the first connection is known to go without one.
        let fresh = Privilege.networkNamespaces.isHeld
        let seen: FastOpenObservations
        if fresh {
            let namespace = try NetworkNamespace(prefix: "tfo")
            defer { namespace.delete() }
            try namespace.ip("link", "set", "lo", "up")
            try namespace.sysctl("net.ipv4.tcp_fastopen", "3")
            seen = try namespace.onThread { try Self.fastOpenExchange() }
        } else {
            seen = try Self.fastOpenExchange()
        }
        if fresh {
            // No cookie yet: nothing went in the SYN, which asked for one.
            #expect(seen.firstCarried == 0)
            #expect(!seen.firstSYNData)
        }
        #expect(seen.firstReceived == Self.fastOpenGreeting)
        // With the cookie the request rode the SYN: the send counted it at once, the server's
        // accepted socket held it before the handshake had finished, and the SYN-ACK
        // acknowledged it.
        #expect(seen.secondCarried == Self.fastOpenRequest.count)
        #expect(seen.secondReadableAtAccept == Self.fastOpenRequest)
        #expect(seen.secondSYNData, "the SYN-ACK did not acknowledge the SYN's data")
        #expect(seen.secondReply == Array("reply".utf8))
        // TCP_FASTOPEN_CONNECT: connect returned at once, and the first send went in the SYN.
        #expect(seen.thirdReceived == Self.fastOpenRequest)
        #expect(seen.thirdSYNData)
    }

    /// Three connections to a Fast Open listener on 127.0.0.1: one that gets the cookie, one
    /// that sends with `MSG_FASTOPEN`, one with `TCP_FASTOPEN_CONNECT`.
    private static func fastOpenExchange() throws -> FastOpenObservations {
        var seen = FastOpenObservations()
        let listener = try Socket(.inet, .stream)
        try listener.set(.tcpFastOpen, 16)
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen()
        try CoreTest.setTimeouts(listener)
        let address = try listener.localAddress()
        /// Waits for a non-blocking connect to finish.
        func finishConnecting(_ socket: Socket) throws {
            guard try CoreTest.poll(socket, Int16(POLLOUT)) & Int16(POLLOUT) != 0 else {
                throw CommandFailure("connect(\(address)) did not finish within 5 s")
            }
            try socket.finishConnect()
        }

        let first = try Socket(.inet, .stream, nonBlocking: true)
        seen.firstCarried = try first.sendFastOpen(fastOpenGreeting, to: address)
        try finishConnecting(first)
        try first.sendAll(Array(fastOpenGreeting[seen.firstCarried...]))
        let (firstServer, _) = try listener.accept()
        try CoreTest.setTimeouts(firstServer)
        seen.firstReceived = try firstServer.receive(exactly: fastOpenGreeting.count)
        seen.firstSYNData = try first.get(.tcpInfo).options.contains(.synData)
        try first.close()
        try firstServer.close()

        let second = try Socket(.inet, .stream, nonBlocking: true)
        seen.secondCarried = try second.sendFastOpen(fastOpenRequest, to: address)
        let (secondServer, _) = try listener.accept()
        try CoreTest.setTimeouts(secondServer)
        seen.secondReadableAtAccept = (try? secondServer.receive(maxLength: 100, flags: .dontWait)) ?? []
        try finishConnecting(second)
        seen.secondSYNData = try second.get(.tcpInfo).options.contains(.synData)
        try second.setNonBlocking(false)
        try CoreTest.setTimeouts(second)
        try secondServer.sendAll("reply")
        seen.secondReply = try second.receive(exactly: 5)

        let third = try Socket(.inet, .stream)
        try third.set(.tcpFastOpenConnect, true)
        try CoreTest.setTimeouts(third)
        try third.connect(to: address)
        try third.sendAll(fastOpenRequest)
        let (thirdServer, _) = try listener.accept()
        try CoreTest.setTimeouts(thirdServer)
        seen.thirdReceived = try thirdServer.receive(exactly: fastOpenRequest.count)
        seen.thirdSYNData = try third.get(.tcpInfo).options.contains(.synData)
        return seen
    }

    @Test func fastOpenOnAUnixStreamSocketFailsClearly() throws {
        let unixStream = try Socket(.unix, .stream)
        let error = #expect(throws: SocketError.self) {
            _ = try unixStream.sendFastOpen([1], to: try .unix(path: "/tmp/sockets-no-such-listener"))
        }
        #expect(error?.errno == .notSupported)
        #expect(error?.description.hasPrefix("sendto(/tmp/sockets-no-such-listener): ") == true, "\(String(describing: error))")
    }

    // MARK: D12: MSG_CONFIRM

    @Test func confirmOnAUDPSendIsAcceptedAndDelivered() throws {
        #expect(MessageFlags.confirm.rawValue == 0x800)
        let receiver = try Socket(.inet, .datagram)
        try receiver.bind(to: .ipv4(.loopback, port: 0))
        try CoreTest.setTimeouts(receiver)
        let sender = try Socket(.inet, .datagram)
        try sender.bind(to: .ipv4(.loopback, port: 0))
        #expect(try sender.send(Array("reachable".utf8), to: try receiver.localAddress(), flags: .confirm) == 9)
        let datagram = try receiver.receiveDatagram(maxLength: 100)
        #expect(datagram.bytes == Array("reachable".utf8))
        #expect(datagram.sender == (try sender.localAddress()))
    }

    // MARK: D13, D11: MSG_OOB reported on receive

    @Test func urgentDataIsReportedWithTheOutOfBandFlag() throws {
        let (client, server) = try CoreTest.tcpPair()
        try client.sendAll("ordinary")
        #expect(try client.send([UInt8(ascii: "!")], flags: .outOfBand) == 1)
        #expect(try CoreTest.poll(server, Int16(POLLPRI)) & Int16(POLLPRI) != 0)

        let (urgent, message) = try server.receiveMessage(maxLength: 1, flags: .outOfBand)
        #expect(urgent == [UInt8(ascii: "!")])
        #expect(message.flags == .outOfBand)
        // The control: ordinary data comes without the flag.
        let (ordinary, plain) = try server.receiveMessage(maxLength: 100)
        #expect(ordinary == Array("ordinary".utf8))
        #expect(!plain.flags.contains(.outOfBand))
    }

    // MARK: D13, J4: MSG_EOR on a sequenced-packet socket

    @Test func sequencedPacketRecordsEndAtEachSend() throws {
        let (left, right) = try Socket.pair(.unix, .sequencedPacket)
        try CoreTest.setTimeouts(right)
        #expect(try left.sendMessage(Array("first record".utf8), flags: .endOfRecord) == 12)
        #expect(try left.send(Array("second".utf8), flags: .endOfRecord) == 6)

        let (first, whole) = try right.receiveMessage(maxLength: 100)
        #expect(first == Array("first record".utf8))
        // Linux's AF_UNIX receive (unix_dgram_recvmsg) reports MSG_TRUNC only: every recvmsg
        // returns one record from its start, so its end is implied and MSG_EOR is never set
        // (SCTP and vsock sequenced packets set it; neither is here).
        #expect(whole.flags == [])
        // A record cut short says so, and the rest of it is gone.
        let (part, cut) = try right.receiveMessage(maxLength: 3)
        #expect(part == Array("sec".utf8))
        #expect(cut.flags == .truncated)
        #expect(try right.tryReceiveMessage(maxLength: 100, flags: .dontWait) == nil)
    }

    // MARK: F3: EPOLLEXCLUSIVE

    /// For each of `connections` connections to one listener, how many of `waiterCount`
    /// threads, each with its own epoll instance, it woke. Each connection is made only when
    /// every waiter is asleep in `epoll_wait`, and accepted only after the wake-ups were
    /// counted, so the listener stays readable for every waiter that was woken.
    private func wakeUpsPerConnection(events: EpollEvents, waiterCount: Int, connections: Int) throws -> [Int] {
        let (listener, address) = try CoreTest.tcpListener(backlog: 64)
        try listener.setNonBlocking(true)
        let waiters = try (0..<waiterCount).map { _ in try ListenerWaiter(listener: listener, events: events) }
        defer { for waiter in waiters { waiter.stop() } }
        let exclusive = events.contains(.exclusive)
        var counts: [Int] = []
        for _ in 0..<connections {
            try #require(CoreTest.eventually { waiters.allSatisfy(\.isWaiting) }, "a waiter did not get back into epoll_wait")
            let before = waiters.map { $0.wakeUps.load(ordering: .sequentiallyConsistent) }
            let client = try Socket(.inet, .stream)
            try client.connect(to: address)
            func woken() -> [Bool] {
                waiters.indices.map { waiters[$0].wakeUps.load(ordering: .sequentiallyConsistent) != before[$0] }
            }
            // Without EPOLLEXCLUSIVE every waiter wakes; wait for all. With it, one does, and
            // any other woken by the same event is already marked runnable by then, so it
            // shows up below as not waiting.
            try #require(CoreTest.eventually { exclusive ? woken().contains(true) : !woken().contains(false) })
            let hasWoken = woken()
            counts.append(waiters.indices.filter { hasWoken[$0] || !waiters[$0].isWaiting }.count)
            let (accepted, _) = try listener.accept()
            try accepted.close()
            try client.close()
            for index in waiters.indices where hasWoken[index] { waiters[index].release() }
        }
        return counts
    }

    @Test func exclusiveWakesOneEpollWaiterPerConnection() throws {
        let waiterCount = 4
        let connections = 20
        // The control: registered without EPOLLEXCLUSIVE, a connection wakes every waiter.
        #expect(try wakeUpsPerConnection(events: .readable, waiterCount: waiterCount, connections: connections)
            == Array(repeating: waiterCount, count: connections))
        #expect(try wakeUpsPerConnection(events: [.readable, .exclusive], waiterCount: waiterCount, connections: connections)
            == Array(repeating: 1, count: connections))
    }

    // MARK: H4: NI_NOFQDN

    @Test(.enabled(if: PrivateHostsFile.unavailable == nil, Comment(rawValue: PrivateHostsFile.unavailable ?? "")))
    func noFullyQualifiedNameShortensNamesOfTheLocalDomain() throws {
        // glibc takes the local domain from the name of "localhost" (else the host name) once
        // per process, and reads /etc/hosts on each lookup: so a process of its own, with a
        // mount namespace of its own, where /etc/hosts is the test's.
        guard FreshProcess.isChild else {
            return try FreshProcess.run(
                "ChecklistRowTests/noFullyQualifiedNameShortensNamesOfTheLocalDomain", wrappedIn: PrivateHostsFile.wrapper)
        }
        let hosts = try TemporaryFile(contents: Array("""
            127.0.0.1 localhost.rows.test localhost
            127.0.0.2 box.rows.test box
            127.0.0.3 far.example.org
            ::1 localhost.rows.test localhost

            """.utf8))
        guard mount(hosts.path, "/etc/hosts", nil, UInt(MS_BIND), nil) == 0 else {
            throw CommandFailure("mount --bind \(hosts.path) /etc/hosts: \(String(cString: strerror(errno)))")
        }
        let box = SocketAddress.ipv4(IPv4Address(127, 0, 0, 2), port: 22)
        #expect(try NameInfo.lookup(box).host == "box.rows.test")
        #expect(try NameInfo.lookup(box, flags: .noFullyQualifiedName) == ("box", "ssh"))
        #expect(try NameInfo.lookup(.ipv4(.loopback, port: 0), flags: .noFullyQualifiedName).host == "localhost")
        // A name outside the local domain stays whole; a numeric host is untouched.
        #expect(try NameInfo.lookup(.ipv4(IPv4Address(127, 0, 0, 3), port: 0), flags: .noFullyQualifiedName).host == "far.example.org")
        #expect(try NameInfo.lookup(box, flags: [.noFullyQualifiedName, .numericHost]).host == "127.0.0.2")
    }

    // MARK: G2.14: TCP_INQ

    @Test func unreadByteCountComesWithEachReceive() throws {
        let (client, server) = try CoreTest.tcpPair()
        try server.set(.tcpReportUnreadBytes, true)
        #expect(try server.get(.tcpReportUnreadBytes))
        let payload = CoreTest.pattern(1000)
        try client.sendAll(payload)
        // All of it is queued before the first read.
        #expect(CoreTest.eventually { (try? server.get(.tcpInfo).bytesReceived) == 1000 })

        let controlBuffer = try ControlMessageBuffer()
        let (head, first) = try server.receiveMessage(maxLength: 300, controlBuffer: controlBuffer)
        #expect(head == Array(payload[..<300]))
        #expect(first.controlMessages == [.tcpUnreadBytes(700)])
        let (tail, second) = try server.receiveMessage(maxLength: 1000, controlBuffer: controlBuffer)
        #expect(tail == Array(payload[300...]))
        #expect(second.controlMessages == [.tcpUnreadBytes(0)])

        // The control: with TCP_INQ off, no record comes.
        try server.set(.tcpReportUnreadBytes, false)
        try client.sendAll([1, 2, 3])
        let (_, third) = try server.receiveMessage(maxLength: 10, controlBuffer: controlBuffer)
        #expect(third.controlMessages.isEmpty)

        let encoded = try ControlMessage.encode([.tcpUnreadBytes(42)])
        #expect(try ControlMessage.decode(encoded) == [.tcpUnreadBytes(42)])
        #expect(ControlMessage.tcpUnreadBytes(42).description == "TCP_CM_INQ(42)")
    }

    // MARK: J8, G2.15: MPTCP and SCTP

    @Test(.enabled(if: multipathUnavailable == nil, Comment(rawValue: multipathUnavailable ?? "")))
    func multipathTCPConnectionCarriesDataBothWays() throws {
        let listener = try Socket(.inet, .stream, .mptcp)
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen()
        try CoreTest.setTimeouts(listener)
        #expect(try listener.protocol() == .mptcp)
        let address = try listener.localAddress()

        let client = try Socket(.inet, .stream, .mptcp)
        try CoreTest.setTimeouts(client)
        try client.connect(to: address)
        let (server, _) = try listener.accept()
        try CoreTest.setTimeouts(server)
        try client.sendAll("over MPTCP")
        #expect(try server.receive(exactly: 10) == Array("over MPTCP".utf8))
        try server.sendAll("and back")
        #expect(try client.receive(exactly: 8) == Array("and back".utf8))
        #expect(try client.protocol() == .mptcp)
        #expect(try server.protocol() == .mptcp)
        // Both ends speak MPTCP: neither fell back to plain TCP.
        #expect(try client.get(.tcpIsMultipath))
        #expect(try server.get(.tcpIsMultipath))

        // The control: the same listener serves a plain TCP client as plain TCP.
        let plain = try Socket(.inet, .stream)
        try plain.connect(to: address)
        let (plainServer, _) = try listener.accept()
        #expect(try plainServer.protocol() == .tcp)
        #expect(try plainServer.get(.tcpIsMultipath) == false)
        #expect(try plain.get(.tcpIsMultipath) == false)
    }

    @Test func sctpIsRefusedClearlyWhereTheKernelLacksIt() throws {
        // /proc/net/protocols lists the protocols the kernel has, SCTP among them if built in.
        let protocols = try #require(fileText("/proc/net/protocols"))
        let kernelHasSCTP = protocols.split(separator: "\n").contains { $0.hasPrefix("SCTP ") }
        guard !kernelHasSCTP else {
            let socket = try Socket(.inet, .stream, .sctp)
            #expect(try socket.protocol() == .sctp)
            return
        }
        let error = #expect(throws: SocketError.self) { try Socket(.inet, .stream, .sctp) }
        #expect(error?.errno == .protocolNotSupported)
        #expect(error?.description == "socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP): Protocol not supported (EPROTONOSUPPORT)")
    }
}
