import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Synchronization
import Testing

/// A domain/type/protocol triple that Linux supports, and the protocol the kernel reports.
struct SocketKind: Sendable, CustomTestStringConvertible {
    var domain: SocketDomain
    var type: SocketType
    var proto: SocketProtocol
    var reportedProtocol: Int32

    var testDescription: String { "\(domain) \(type) \(proto)" }

    /// Raw IP and packet sockets, which need CAP_NET_RAW.
    var isPrivileged: Bool { domain == .packet || (type == .raw && (domain == .inet || domain == .inet6)) }
}

@Suite(.noDescriptorLeaks())
struct LifecycleTests {
    static let supportedKinds: [SocketKind] = [
        SocketKind(domain: .inet, type: .stream, proto: .default, reportedProtocol: Int32(IPPROTO_TCP)),
        SocketKind(domain: .inet, type: .datagram, proto: .default, reportedProtocol: Int32(IPPROTO_UDP)),
        SocketKind(domain: .inet, type: .raw, proto: .icmp, reportedProtocol: Int32(IPPROTO_ICMP)),
        SocketKind(domain: .inet, type: .raw, proto: .udp, reportedProtocol: Int32(IPPROTO_UDP)),
        SocketKind(domain: .inet6, type: .stream, proto: .tcp, reportedProtocol: Int32(IPPROTO_TCP)),
        SocketKind(domain: .inet6, type: .datagram, proto: .udp, reportedProtocol: Int32(IPPROTO_UDP)),
        SocketKind(domain: .inet6, type: .raw, proto: .icmpv6, reportedProtocol: Int32(IPPROTO_ICMPV6)),
        SocketKind(domain: .unix, type: .stream, proto: .default, reportedProtocol: 0),
        SocketKind(domain: .unix, type: .datagram, proto: .default, reportedProtocol: 0),
        SocketKind(domain: .unix, type: .sequencedPacket, proto: .default, reportedProtocol: 0),
        SocketKind(domain: .packet, type: .raw, proto: .default, reportedProtocol: 0),
        SocketKind(domain: .packet, type: .datagram, proto: .default, reportedProtocol: 0),
        SocketKind(domain: .netlink, type: .raw, proto: .default, reportedProtocol: 0),
        SocketKind(domain: .netlink, type: .datagram, proto: .default, reportedProtocol: 0),
    ]

    @Test(arguments: supportedKinds)
    func socketForEachSupportedKind(kind: SocketKind) throws {
        guard !kind.isPrivileged || Privilege.rawSockets.isHeld else {
            // Refused, and the error says which socket and why.
            let error = #expect(throws: SocketError.self) { try Socket(kind.domain, kind.type, kind.proto) }
            #expect(error?.errno == .notPermitted)
            #expect(error?.description == "socket(\(kind.domain), \(kind.type), \(kind.proto)): Operation not permitted (EPERM)")
            return
        }
        let socket = try Socket(kind.domain, kind.type, kind.proto)
        #expect(socket.descriptor >= 0)
        #expect(try CoreTest.intOption(socket, level: SOL_SOCKET, name: SO_DOMAIN) == kind.domain.rawValue)
        #expect(try CoreTest.intOption(socket, level: SOL_SOCKET, name: SO_TYPE) == kind.type.rawValue)
        #expect(try CoreTest.intOption(socket, level: SOL_SOCKET, name: SO_PROTOCOL) == kind.reportedProtocol)
        #expect(try socket.isCloseOnExec())
        #expect(try socket.isNonBlocking() == false)
        try socket.close()

        let nonBlocking = try Socket(kind.domain, kind.type, kind.proto, nonBlocking: true)
        #expect(try nonBlocking.isNonBlocking())
        #expect(try nonBlocking.isCloseOnExec())
    }

    @Test(arguments: [Int32(6), 46, 255, 4096])
    func unsupportedFamilyFailsWithEAFNOSUPPORT(family: Int32) throws {
        let error = #expect(throws: SocketError.self) { try Socket(SocketDomain(rawValue: family), .stream) }
        #expect(error?.errno == .addressFamilyNotSupported)
        let text = error?.description ?? ""
        #expect(text.hasPrefix("socket("), "\(text)")
        #expect(text.hasSuffix("Address family not supported by protocol (EAFNOSUPPORT)"), "\(text)")
        let name = family == 6 ? "AF_NETROM" : "family \(family)"
        #expect(text.hasPrefix("socket(\(name), SOCK_STREAM, 0)"), "the message names the family: \(text)")
    }

    @Test func familyNamesInErrors() {
        #expect(SocketDomain(rawValue: 6).description == "AF_NETROM")
        #expect(SocketDomain(rawValue: 46).description == "family 46")
        #expect(SocketDomain.inet6.description == "AF_INET6")
    }

    @Test func unsupportedTypeAndProtocol() throws {
        let rdm = #expect(throws: SocketError.self) { try Socket(.inet, .reliableDatagram) }
        #expect(rdm?.errno == .socketTypeNotSupported)
        let seqpacket = #expect(throws: SocketError.self) { try Socket(.inet, .sequencedPacket) }
        #expect(seqpacket?.errno == .socketTypeNotSupported)
        #expect(seqpacket?.description.hasPrefix("socket(AF_INET, SOCK_SEQPACKET, 0)") == true)
        let rawWithoutProtocol = #expect(throws: SocketError.self) { try Socket(.inet, .raw) }
        #expect(rawWithoutProtocol?.errno == .protocolNotSupported)
    }

    // MARK: close-on-exec

    /// Runs `ls -l /proc/self/fd` in a child started with plain `posix_spawn` (which, unlike
    /// Foundation's `Process`, does not close descriptors itself) and returns its listing.
    func childDescriptorListing() throws -> String {
        let child = try ChildProcess(["/bin/ls", "-l", "/proc/self/fd/"])
        let output = String(decoding: child.readToEnd(), as: UTF8.self)
        #expect(try child.wait() == 0)
        return output
    }

    @Test func noSocketIsInheritedByAChild() throws {
        let (listener, address) = try CoreTest.tcpListener()
        let client = try Socket(.inet, .stream)
        try client.connect(to: address)
        let (accepted, _) = try listener.accept()
        let (first, second) = try Socket.pair()
        let duplicate = try first.duplicate()
        let datagram = try Socket(.inet6, .datagram, nonBlocking: true)
        let ours = [listener, client, accepted, first, second, duplicate, datagram]
        for socket in ours { #expect(try socket.isCloseOnExec()) }
        let links = ours.map { CoreTest.descriptorLink($0.descriptor) }
        #expect(links.allSatisfy { $0.hasPrefix("socket:[") }, "\(links)")

        // The control: a socket with FD_CLOEXEC cleared must show up in the child, so the
        // listing really shows inherited descriptors.
        let inheritable = try Socket(.unix, .datagram)
        try inheritable.setCloseOnExec(false)
        #expect(try inheritable.isCloseOnExec() == false)
        let inheritableLink = CoreTest.descriptorLink(inheritable.descriptor)

        let listing = try childDescriptorListing()
        #expect(listing.contains(inheritableLink), "control socket missing from the child: \(listing)")
        for link in links {
            #expect(!listing.contains(link), "\(link) leaked into the child: \(listing)")
        }
        try inheritable.setCloseOnExec(true)
        #expect(!(try childDescriptorListing()).contains(inheritableLink))
    }

    // MARK: socketpair

    @Test(arguments: [SocketType.stream, .datagram, .sequencedPacket])
    func socketPairCarriesDataBothWays(type: SocketType) throws {
        let (left, right) = try Socket.pair(.unix, type)
        try CoreTest.setTimeouts(left)
        try CoreTest.setTimeouts(right)
        #expect(try left.send([1, 2, 3]) == 3)
        #expect(try right.receive(maxLength: 10) == [1, 2, 3])
        #expect(try right.send([4]) == 1)
        #expect(try left.receive(maxLength: 10) == [4])
        #expect(try CoreTest.intOption(left, level: SOL_SOCKET, name: SO_TYPE) == type.rawValue)
        #expect(try left.isCloseOnExec() && right.isCloseOnExec())
        #expect(try left.peerAddress() == .unix(.unnamed))
    }

    @Test func socketPairRejectsInet() throws {
        let error = #expect(throws: SocketError.self) { try Socket.pair(.inet, .stream) }
        #expect(error?.errno == .notSupportedOnSocket)
        #expect(error?.description.hasPrefix("socketpair(AF_INET, SOCK_STREAM)") == true)
    }

    // MARK: close

    @Test func closeIsIdempotentAndLaterCallsSayClosed() throws {
        let socket = try Socket(.inet, .datagram)
        let fd = socket.descriptor
        #expect(CoreTest.descriptorLink(fd).hasPrefix("socket:"))
        try socket.close()
        #expect(socket.isClosed)
        #expect(socket.descriptor == -1)
        #expect(CoreTest.descriptorLink(fd) == "")
        try socket.close()
        try socket.close()
        let error = #expect(throws: SocketError.self) { try socket.send([1], to: .ipv4(.loopback, port: 9)) }
        #expect(error?.reason == .closed)
        #expect(error?.description == "sendto(127.0.0.1:9): socket is closed")
        #expect(throws: SocketError.self) { try socket.localAddress() }
        #expect(throws: SocketError.self) { try socket.releaseDescriptor() }
        #expect(throws: (any Error).self) { try socket.withDescriptor { $0 } }
        #expect(socket.description == "Socket(closed)")
    }

    @Test func lastReferenceClosesTheDescriptor() throws {
        let before = openDescriptors()
        var fds: [CInt] = []
        do {
            let socket = try Socket(.inet, .stream)
            let (a, b) = try Socket.pair()
            fds = [socket.descriptor, a.descriptor, b.descriptor]
            #expect(openDescriptors().subtracting(before) == Set(fds))
        }
        #expect(openDescriptors() == before)
        for fd in fds { #expect(CoreTest.descriptorLink(fd) == "") }
    }

    @Test func closeWakesAThreadBlockedInAccept() throws {
        let (listener, _) = try CoreTest.tcpListener()
        // No receive timeout here: the accept must be woken by close alone.
        var zero = timeval(tv_sec: 0, tv_usec: 0)
        try listener.withDescriptor { fd in
            try Syscall.setsockopt(fd, level: SOL_SOCKET, name: SO_RCVTIMEO, &zero, socklen_t(MemoryLayout<timeval>.size))
        }
        let fd = listener.descriptor
        let acceptor = BackgroundThread { () throws -> String in
            do {
                let (socket, peer) = try listener.accept()
                return "accepted \(socket) from \(peer)"
            } catch let error as SocketError {
                return error.reason == .closed ? "closed" : "other: \(error)"
            }
        }
        #expect(CoreTest.eventually { CoreTest.threadIsBlocked(inSyscall: X86SyscallNumber.accept4, onDescriptor: fd) })
        try listener.close()
        let outcome = try acceptor.join()
        #expect(outcome == "closed")
        #expect(CoreTest.descriptorLink(fd) == "", "the descriptor is closed once the accept returned")
    }

    @Test(.requires(.rawSockets)) func closeWakesAThreadBlockedInRawReceive() throws {
        try closeWakesAThreadBlockedInReceive(type: .raw)
    }

    @Test(arguments: [SocketType.stream, .datagram, .sequencedPacket])
    func closeWakesAThreadBlockedInReceive(type: SocketType) throws {
        let socket: Socket
        let peer: Socket
        switch type {
        case .stream:
            (socket, peer) = try CoreTest.tcpPair()
        case .datagram:
            socket = try Socket(.inet, .datagram)
            try socket.bind(to: .ipv4(.loopback, port: 0))
            peer = try Socket(.inet, .datagram)
        case .raw:
            // IP protocol 253 is for experiments: no other traffic will wake this receive.
            socket = try Socket(.inet, .raw, SocketProtocol(rawValue: 253))
            peer = try Socket(.inet, .datagram)
        default:
            (socket, peer) = try Socket.pair(.unix, type)
        }
        let fd = socket.descriptor
        let receiver = BackgroundThread { () throws -> String in
            do {
                let bytes = try socket.receive(maxLength: 100)
                return "received \(bytes)"
            } catch let error as SocketError {
                return error.reason == .closed ? "closed" : "other: \(error)"
            }
        }
        #expect(CoreTest.eventually { CoreTest.threadIsBlocked(inSyscall: X86SyscallNumber.recvfrom, onDescriptor: fd) })
        try socket.close()
        let outcome = try receiver.join()
        #expect(outcome == "closed")
        #expect(CoreTest.descriptorLink(fd) == "")
        try peer.close()
    }

    @Test func closeWakesAThreadBlockedInConnect() throws {
        // A listener with backlog 0 and one queued connection drops further SYNs, so this
        // blocking connect waits (for minutes, left alone) until close wakes it.
        let (listener, address) = try CoreTest.tcpListener(backlog: 0)
        let queued = try Socket(.inet, .stream)
        try queued.connect(to: address)
        let client = try Socket(.inet, .stream)
        let fd = client.descriptor
        let connector = BackgroundThread { () throws -> String in
            do {
                try client.connect(to: address)
                return "connected"
            } catch let error as SocketError {
                return error.reason == .closed ? "closed" : "other: \(error)"
            }
        }
        #expect(CoreTest.eventually { CoreTest.threadIsBlocked(inSyscall: X86SyscallNumber.connect, onDescriptor: fd) })
        try client.close()
        let outcome = try connector.join()
        #expect(outcome == "closed")
        #expect(CoreTest.descriptorLink(fd) == "")
        try listener.close()
    }

    @Test func closeWakesAThreadBlockedInSendAll() throws {
        let (client, server) = try CoreTest.tcpPair()
        // No send timeout: only close can end this send to a peer that never reads.
        var zero = timeval(tv_sec: 0, tv_usec: 0)
        try client.withDescriptor { fd in
            try Syscall.setsockopt(fd, level: SOL_SOCKET, name: SO_SNDTIMEO, &zero, socklen_t(MemoryLayout<timeval>.size))
        }
        let fd = client.descriptor
        let sender = BackgroundThread { () throws -> String in
            do {
                try client.sendAll([UInt8](repeating: 1, count: 256 << 20))
                return "sent"
            } catch let error as SocketError {
                return error.reason == .closed ? "closed" : "other: \(error)"
            }
        }
        #expect(CoreTest.eventually { CoreTest.threadIsBlocked(inSyscall: X86SyscallNumber.sendto, onDescriptor: fd) })
        try client.close()
        let outcome = try sender.join()
        #expect(outcome == "closed")
        #expect(CoreTest.descriptorLink(fd) == "")
        try server.close()
    }

    @Test func descriptorNumberIsNotReusedWhileACallIsRunning() throws {
        let socket = try Socket(.inet, .datagram)
        let fd = socket.descriptor
        let inside = Atomic<Bool>(false)
        let mayLeave = Atomic<Bool>(false)
        let user = BackgroundThread { () throws -> CInt in
            try socket.withDescriptor { descriptor in
                inside.store(true, ordering: .releasing)
                _ = CoreTest.eventually { mayLeave.load(ordering: .acquiring) }
                return descriptor
            }
        }
        #expect(CoreTest.eventually { inside.load(ordering: .acquiring) })
        try socket.close()
        #expect(socket.isClosed)
        // The number stays taken while the call is inside, so a new socket gets another one.
        let other = try Socket(.inet, .datagram)
        #expect(other.descriptor != fd)
        #expect(CoreTest.descriptorLink(fd).hasPrefix("socket:"))
        mayLeave.store(true, ordering: .releasing)
        #expect(try user.join() == fd)
        #expect(CoreTest.descriptorLink(fd) == "", "the last user out closed it")
        try other.close()
    }

    @Test func releaseAfterCloseDuringACallDoesNotLeak() throws {
        let socket = try Socket(.inet, .datagram)
        let fd = socket.descriptor
        let inside = Atomic<Bool>(false)
        let mayLeave = Atomic<Bool>(false)
        let user = BackgroundThread { () throws -> Void in
            try socket.withDescriptor { _ in
                inside.store(true, ordering: .releasing)
                _ = CoreTest.eventually { mayLeave.load(ordering: .acquiring) }
            }
        }
        #expect(CoreTest.eventually { inside.load(ordering: .acquiring) })
        try socket.close()
        // Too late to take the descriptor: the close already owns its fate.
        let error = #expect(throws: SocketError.self) { try socket.releaseDescriptor() }
        #expect(error?.reason == .closed)
        mayLeave.store(true, ordering: .releasing)
        try user.join()
        #expect(CoreTest.descriptorLink(fd) == "", "the last user out still closed it")
    }

    // MARK: dup, release, adopt

    @Test func duplicateSharesTheSocket() throws {
        let (client, server) = try CoreTest.tcpPair()
        let copy = try client.duplicate()
        #expect(copy.descriptor != client.descriptor)
        #expect(try copy.isCloseOnExec())
        #expect(try copy.localAddress() == client.localAddress())
        #expect(try copy.peerAddress() == client.peerAddress())
        #expect(try copy.send([7, 8]) == 2)
        #expect(try client.send([9]) == 1)
        var received: [UInt8] = []
        while received.count < 3 { received += try server.receive(maxLength: 10) }
        #expect(received == [7, 8, 9])
        // Closing one copy leaves the connection open through the other.
        try client.close()
        #expect(try copy.send([10]) == 1)
        #expect(try server.receive(maxLength: 10) == [10])
        try copy.close()
        #expect(try server.receive(maxLength: 10) == [])
    }

    @Test func releaseAndAdoptRoundTrip() throws {
        let (left, right) = try Socket.pair(.unix, .datagram)
        let fd = try left.releaseDescriptor()
        #expect(left.isClosed)
        #expect(left.descriptor == -1)
        #expect(throws: SocketError.self) { try left.releaseDescriptor() }
        try left.close()  // does nothing: the descriptor is no longer the socket's
        #expect(CoreTest.descriptorLink(fd).hasPrefix("socket:"))
        do {
            let adopted = Socket(adopting: fd)
            #expect(adopted.descriptor == fd)
            #expect(try adopted.send([42]) == 1)
            #expect(try right.receive(maxLength: 4, flags: .dontWait) == [42])
        }
        #expect(CoreTest.descriptorLink(fd) == "", "the adopting socket closed it")
    }

    @Test func releasedDescriptorSurvivesTheSocket() throws {
        var fd: CInt = -1
        do {
            let socket = try Socket(.inet, .stream)
            fd = try socket.releaseDescriptor()
        }
        #expect(CoreTest.descriptorLink(fd).hasPrefix("socket:"))
        try Syscall.close(fd)
    }

    // MARK: non-blocking mode

    @Test func nonBlockingModeAndWouldBlock() throws {
        let (client, server) = try CoreTest.tcpPair()
        #expect(try server.isNonBlocking() == false)
        try server.setNonBlocking(true)
        #expect(try server.isNonBlocking())
        var buffer = [UInt8](repeating: 0, count: 16)
        let error = #expect(throws: SocketError.self) { try server.receive(maxLength: 16) }
        #expect(error?.isWouldBlock == true)
        #expect(error?.description == "recv: Resource temporarily unavailable (EAGAIN)")
        let nothing = try buffer.withUnsafeMutableBytes { raw in try server.tryReceive(into: raw) }
        #expect(nothing == nil)
        #expect(try client.send([1, 2]) == 2)
        #expect(CoreTest.eventually {
            (try? buffer.withUnsafeMutableBytes { raw in try server.tryReceive(into: raw) }) == 2
        })
        #expect(buffer[0...1] == [1, 2])
        try server.setNonBlocking(false)
        #expect(try server.isNonBlocking() == false)

        // A blocking socket can still ask for one non-blocking call.
        let once = #expect(throws: SocketError.self) { try client.receive(maxLength: 1, flags: .dontWait) }
        #expect(once?.isWouldBlock == true)

        // Filling the send buffer of a non-blocking socket ends in "would block".
        try client.setNonBlocking(true)
        let chunk = [UInt8](repeating: 0xAB, count: 65536)
        var sent = 0
        var blocked = false
        for _ in 0..<10_000 {
            let result = try chunk.withUnsafeBytes { raw in try client.trySend(raw) }
            guard let count = result else { blocked = true; break }
            sent += count
        }
        #expect(blocked)
        #expect(sent > 0)
    }

    @Test func nonBlockingAcceptAndConnect() throws {
        let listener = try Socket(.inet, .stream, nonBlocking: true)
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen()
        #expect(try listener.tryAccept() == nil)
        let accepting = #expect(throws: SocketError.self) { try listener.accept() }
        #expect(accepting?.isWouldBlock == true)

        let client = try Socket(.inet, .stream, nonBlocking: true)
        let done = try client.tryConnect(to: listener.localAddress())
        if !done {
            #expect(try CoreTest.poll(client, Int16(POLLOUT)) & Int16(POLLOUT) != 0)
        }
        try client.finishConnect()
        #expect(try client.peerAddress() == listener.localAddress())
        var accepted: Socket?
        #expect(try CoreTest.eventually {
            accepted = try listener.tryAccept(nonBlocking: true)?.socket
            return accepted != nil
        })
        #expect(try accepted?.isNonBlocking() == true)
        #expect(try accepted?.peerAddress() == client.localAddress())
    }

    @Test func shutdownReadGivesEndOfFile() throws {
        let (client, server) = try CoreTest.tcpPair()
        try server.shutdown(.read)
        #expect(try server.receive(maxLength: 10) == [])
        try server.shutdown(.both)
        let error = #expect(throws: SocketError.self) { try server.send([1]) }
        #expect(error?.errno == .brokenPipe)
        #expect(try client.receive(maxLength: 10) == [])
    }
}
