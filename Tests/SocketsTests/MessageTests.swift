import Glibc
import Sockets
import SystemPackage
import Testing

/// Sets `SO_RCVTIMEO` so that a test waiting for data that never comes fails instead of hanging.
func setReceiveTimeout(_ socket: Socket, seconds: Int) throws {
    var timeout = timeval(tv_sec: seconds, tv_usec: 0)
    let result = try socket.withDescriptor { fd in
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }
    #expect(result == 0)
}

/// A pipe whose two ends are closed when the value is dropped.
final class TestPipe {
    let read: CInt
    let write: CInt

    init() {
        var fds: [CInt] = [-1, -1]
        let result = pipe(&fds)
        precondition(result == 0, "pipe failed")
        read = fds[0]
        write = fds[1]
    }

    deinit {
        Glibc.close(read)
        Glibc.close(write)
    }
}

/// Reads up to `count` bytes from a descriptor.
func readBytes(_ fd: CInt, count: Int) -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: count)
    let got = Glibc.read(fd, &buffer, count)
    return got > 0 ? Array(buffer[..<got]) : []
}

@Suite(.noDescriptorLeaks())
struct DescriptorPassingTests {
    @Test func passedPipeWritesThroughInTheReceiver() throws {
        let (sender, receiver) = try Socket.pair(.unix, .stream)
        let pipe = TestPipe()
        try sender.sendDescriptors([pipe.write], bytes: Array("fd".utf8))

        let received = try receiver.receiveDescriptors(maxCount: 4)
        #expect(received.bytes == Array("fd".utf8))
        #expect(received.wereTruncated == false)
        try #require(received.descriptors.count == 1)
        let descriptor = received.descriptors[0]
        #expect(descriptor.descriptor != pipe.write)
        // MSG_CMSG_CLOEXEC: the received descriptor is close-on-exec.
        let flags = try descriptor.withDescriptor { fcntl($0, F_GETFD) }
        #expect(flags & FD_CLOEXEC != 0)

        let message = Array("written by the receiver".utf8)
        let written = try descriptor.withDescriptor { fd in message.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } }
        #expect(written == message.count)
        #expect(readBytes(pipe.read, count: 100) == message)
        try descriptor.close()
        #expect(descriptor.isClosed)
        #expect(descriptor.descriptor == -1)
    }

    @Test func passedSocketBecomesASocket() throws {
        let (sender, receiver) = try Socket.pair(.unix, .datagram)
        let (left, right) = try Socket.pair(.unix, .stream)
        try sender.sendDescriptors([right])
        try right.close()
        let received = try receiver.receiveDescriptors(maxCount: 1)
        try #require(received.descriptors.count == 1)
        let passed = try received.descriptors[0].makeSocket()
        #expect(received.descriptors[0].isClosed)
        try passed.sendAll("via the passed socket")
        #expect(try left.receive(maxLength: 100) == Array("via the passed socket".utf8))
    }

    @Test func descriptorsThatDoNotFitAreClosedNotLeaked() throws {
        let (sender, receiver) = try Socket.pair(.unix, .stream)
        let pipe = TestPipe()
        let before = openDescriptors()
        // Ten duplicates of the same pipe end, while the receiver has room for three.
        try sender.sendDescriptors(Array(repeating: pipe.write, count: 10), bytes: [42])
        do {
            let received = try receiver.receiveDescriptors(maxCount: 3)
            #expect(received.bytes == [42])
            #expect(received.descriptors.count == 3)
            #expect(received.wereTruncated)
            #expect(openDescriptors().subtracting(before).count == 3)
        }
        #expect(openDescriptors() == before)
    }

    @Test func controlTruncationIsReportedByReceiveMessage() throws {
        let (sender, receiver) = try Socket.pair(.unix, .datagram)
        let pipe = TestPipe()
        let before = openDescriptors()
        _ = try sender.sendMessage([1, 2, 3], controlMessages: [.descriptors(Array(repeating: pipe.read, count: 20))])
        do {
            // Room for exactly two descriptors (CMSG_SPACE(8) has no padding).
            let buffer = try ControlMessageBuffer(capacity: ControlMessage.space(forDescriptors: 2))
            let (bytes, message) = try receiver.receiveMessage(maxLength: 10, controlBuffer: buffer)
            #expect(bytes == [1, 2, 3])
            #expect(message.isControlTruncated)
            #expect(message.flags.contains(.controlTruncated))
            #expect(message.descriptors.count == 2)
            #expect(openDescriptors().subtracting(before).count == 2)
        }
        #expect(openDescriptors() == before)
    }

    @Test func descriptorsReceivedWithoutRoomAreDroppedByTheKernel() throws {
        let (sender, receiver) = try Socket.pair(.unix, .datagram)
        let pipe = TestPipe()
        let before = openDescriptors()
        try sender.sendDescriptors([pipe.read, pipe.write], bytes: [7])
        let (bytes, message) = try receiver.receiveMessage(maxLength: 10, controlBuffer: try ControlMessageBuffer(capacity: 0))
        #expect(bytes == [7])
        #expect(message.isControlTruncated)
        #expect(message.controlMessages.isEmpty)
        #expect(openDescriptors() == before)
    }

    @Test func takenDescriptorIsNoLongerClosedByItsOwner() throws {
        let (sender, receiver) = try Socket.pair(.unix, .stream)
        let pipe = TestPipe()
        try sender.sendDescriptors([pipe.read])
        let received = try receiver.receiveDescriptors(maxCount: 1)
        let raw = try received.descriptors[0].takeDescriptor()
        #expect(throws: SocketError.self) { try received.descriptors[0].takeDescriptor() }
        #expect(fcntl(raw, F_GETFD) >= 0)
        Glibc.close(raw)
    }

    @Test func receivedDescriptorsAreCloseOnExecAndOwned() throws {
        let (sender, receiver) = try Socket.pair(.unix, .datagram)
        let pipe = TestPipe()
        try sender.sendDescriptors([pipe.write], bytes: [5])
        let (bytes, noRoom) = try receiver.receiveMessage(maxLength: 8)
        #expect(bytes == [5])
        #expect(noRoom.controlMessages.isEmpty)  // no room was asked for: the kernel dropped it
        #expect(noRoom.flags == .controlTruncated)

        try sender.sendDescriptors([pipe.write], bytes: [6])
        var buffer = [UInt8](repeating: 0, count: 8)
        let control = try ControlMessageBuffer(capacity: ControlMessage.space(forDescriptors: 1))
        let message = try buffer.withUnsafeMutableBytes { try receiver.receiveMessage(into: [$0], controlBuffer: control) }
        #expect(message.flags == [])
        let descriptors = message.descriptors
        try #require(descriptors.count == 1)
        let fd = try descriptors[0].takeDescriptor()
        defer { Glibc.close(fd) }
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
    }

    @Test func invalidDescriptorListsAreRejectedBeforeTheCall() throws {
        let (sender, _) = try Socket.pair(.unix, .stream)
        for fds: [CInt] in [[], [-1], Array(repeating: 0, count: 254)] {
            let error = #expect(throws: SocketError.self) { try sender.sendDescriptors(fds) }
            #expect(error?.errno == .invalidArgument)
        }
        let error = #expect(throws: SocketError.self) { try sender.sendDescriptors([0], bytes: []) }
        #expect(error?.reason == .invalidArgument("at least one byte must carry the descriptors"))
    }

    @Test func credentialsArriveWithPassCred() throws {
        let (sender, receiver) = try Socket.pair(.unix, .datagram)
        try receiver.set(.passCredentials, true)
        let buffer = try ControlMessageBuffer()

        // Attached by the kernel without the sender asking.
        _ = try sender.send(Array("who".utf8))
        let (_, implicit) = try receiver.receiveMessage(maxLength: 10, controlBuffer: buffer)
        let expected = PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid())
        #expect(implicit.controlMessages == [.credentials(expected)])

        // Sent explicitly.
        _ = try sender.sendMessage(Array("me".utf8), controlMessages: [.credentials(.current)])
        let (bytes, explicit) = try receiver.receiveMessage(maxLength: 10, controlBuffer: buffer)
        #expect(bytes == Array("me".utf8))
        #expect(explicit.controlMessages == [.credentials(expected)])

        #expect(PeerCredentials.current == expected)
    }

    @Test func forgedCredentialsAreRefusedByTheKernel() throws {
        // Root may claim other ids; nobody may claim a process that does not exist.
        let (sender, _) = try Socket.pair(.unix, .datagram)
        let forged = PeerCredentials(pid: Int32.max, uid: getuid(), gid: getgid())
        let error = #expect(throws: SocketError.self) { _ = try sender.sendMessage([0], controlMessages: [.credentials(forged)]) }
        #expect(error?.errno == .noSuchProcess || error?.errno == .notPermitted)
    }
}

@Suite(.noDescriptorLeaks())
struct IPControlMessageTests {
    @Test func packetInfoReportsTheDestinationAndChoosesTheReplySource() throws {
        let server = try Socket(.inet, .datagram)
        try server.bind(to: .ipv4(.any, port: 0))
        try server.set(.receivePacketInfo, true)
        try setReceiveTimeout(server, seconds: 5)
        let port = try #require(try server.localAddress().port)
        let buffer = try ControlMessageBuffer()
        let loopbackIndex = Int32(if_nametoindex("lo"))

        for destination in [IPv4Address(127, 0, 0, 2), IPv4Address(127, 0, 0, 1)] {
            let client = try Socket(.inet, .datagram)
            try setReceiveTimeout(client, seconds: 5)
            _ = try client.send(Array("ping".utf8), to: .ipv4(destination, port: port))
            let (bytes, message) = try server.receiveMessage(maxLength: 100, controlBuffer: buffer)
            #expect(bytes == Array("ping".utf8))
            let info = try #require(message.controlMessages.compactMap { message -> IPv4PacketInfo? in
                if case .ipv4PacketInfo(let info) = message { return info }
                return nil
            }.first)
            #expect(info.destinationAddress == destination)
            #expect(info.localAddress == destination)
            #expect(info.interfaceIndex == loopbackIndex)

            // Reply from the address the datagram was sent to, chosen per message.
            let sender = try #require(message.sender)
            _ = try server.sendMessage(
                Array("pong".utf8), to: sender, controlMessages: [.ipv4PacketInfo(IPv4PacketInfo(localAddress: info.localAddress))])
            let datagram = try client.receiveDatagram(maxLength: 100)
            let reply = datagram.bytes
            let from = datagram.sender
            #expect(reply == Array("pong".utf8))
            #expect(from == .ipv4(destination, port: port))
        }
    }

    @Test func ipv6PacketInfoReportsTheDestination() throws {
        let server = try Socket(.inet6, .datagram)
        try server.bind(to: .ipv6(.loopback, port: 0))
        try server.set(.ipv6ReceivePacketInfo, true)
        try server.set(.ipv6ReceiveHopLimit, true)
        try server.set(.ipv6ReceiveTrafficClass, true)
        try setReceiveTimeout(server, seconds: 5)
        let client = try Socket(.inet6, .datagram)
        _ = try client.sendMessage(Array("six".utf8), to: try server.localAddress(), controlMessages: [.hopLimit(7), .trafficClass(0x20)])
        let (bytes, message) = try server.receiveMessage(maxLength: 100, controlBuffer: try ControlMessageBuffer())
        #expect(bytes == Array("six".utf8))
        #expect(message.controlMessages.contains(.ipv6PacketInfo(IPv6PacketInfo(address: .loopback, interfaceIndex: if_nametoindex("lo")))))
        #expect(message.controlMessages.contains(.hopLimit(7)))
        #expect(message.controlMessages.contains(.trafficClass(0x20)))
    }

    @Test func ttlAndTOSAreReportedAfterEnablingThem() throws {
        let server = try Socket(.inet, .datagram)
        try server.bind(to: .ipv4(.loopback, port: 0))
        try server.set(.receiveTimeToLive, true)
        try server.set(.receiveTypeOfService, true)
        try setReceiveTimeout(server, seconds: 5)
        let client = try Socket(.inet, .datagram)
        let buffer = try ControlMessageBuffer()

        _ = try client.sendMessage([1], to: try server.localAddress(), controlMessages: [.timeToLive(42), .typeOfService(0x28)])
        let (_, chosen) = try server.receiveMessage(maxLength: 10, controlBuffer: buffer)
        #expect(chosen.controlMessages.contains(.timeToLive(42)))
        #expect(chosen.controlMessages.contains(.typeOfService(0x28)))

        _ = try client.send([2], to: try server.localAddress())
        let (_, defaults) = try server.receiveMessage(maxLength: 10, controlBuffer: buffer)
        let defaultTTL = Int(try String(readingFile: "/proc/sys/net/ipv4/ip_default_ttl").trimmed) ?? 64
        #expect(defaults.controlMessages.contains(.timeToLive(defaultTTL)))
        #expect(defaults.controlMessages.contains(.typeOfService(0)))

        try server.set(.receiveTimeToLive, false)
        try server.set(.receiveTypeOfService, false)
        _ = try client.send([3], to: try server.localAddress())
        let (_, none) = try server.receiveMessage(maxLength: 10, controlBuffer: buffer)
        #expect(none.controlMessages.isEmpty)
    }

    @Test func invalidTTLIsRejectedBeforeTheCall() throws {
        let client = try Socket(.inet, .datagram)
        let error = #expect(throws: SocketError.self) {
            _ = try client.sendMessage([1], to: .ipv4(.loopback, port: 9), controlMessages: [.timeToLive(0)])
        }
        #expect(error?.errno == .invalidArgument)
    }

    enum TimestampOption: CaseIterable, Sendable { case microseconds, nanoseconds, timestamping }

    @Test(arguments: TimestampOption.allCases)
    func timestampIsCloseToNow(option: TimestampOption) throws {
        let server = try Socket(.inet, .datagram)
        try server.bind(to: .ipv4(.loopback, port: 0))
        switch option {
        case .microseconds: try server.set(.timestamp, true)
        case .nanoseconds: try server.set(.timestampNanoseconds, true)
        case .timestamping: try server.set(.timestamping, [.receiveSoftware, .software])
        }
        try setReceiveTimeout(server, seconds: 5)
        let client = try Socket(.inet, .datagram)
        let buffer = try ControlMessageBuffer()
        // The kernel switches receive timestamping on in a deferred work item, so with
        // SO_TIMESTAMPING the first datagrams may come unstamped; SO_TIMESTAMP(NS) stamp them
        // at receive time instead. Try a bounded number of times.
        for attempt in 0..<100 {
            var before = timespec()
            clock_gettime(CLOCK_REALTIME, &before)
            _ = try client.send([1], to: try server.localAddress())
            let (_, message) = try server.receiveMessage(maxLength: 10, controlBuffer: buffer)
            var after = timespec()
            clock_gettime(CLOCK_REALTIME, &after)
            let stamp: SocketTimestamp
            switch message.controlMessages.first {
            case .timestamp(let time)?:
                stamp = time
                #expect(time.resolution == (option == .microseconds ? .microseconds : .nanoseconds))
            case .timestamping(let software, let hardware)?:
                stamp = software
                #expect(hardware.isZero)
            default:
                #expect(option == .timestamping, "no timestamp in \(message.controlMessages)")
                #expect(message.controlMessages.isEmpty)
                #expect(attempt < 99, "no SO_TIMESTAMPING timestamp after 100 datagrams")
                usleep(10_000)
                continue
            }
            // Between the two clock readings, allowing for the microsecond rounding of SO_TIMESTAMP.
            let low = SocketTimestamp(seconds: Int64(before.tv_sec), nanoseconds: Int64(before.tv_nsec) / 1000 * 1000)
            let high = SocketTimestamp(seconds: Int64(after.tv_sec), nanoseconds: Int64(after.tv_nsec))
            #expect((stamp.seconds, stamp.nanoseconds) >= (low.seconds, low.nanoseconds), "\(stamp) before \(low)")
            #expect(stamp <= high, "\(stamp) after \(high)")
            return
        }
    }

    @Test func icmpPortUnreachableIsReadFromTheErrorQueue() throws {
        // A port that was just free: bind, read it, close.
        let probe = try Socket(.inet, .datagram)
        try probe.bind(to: .ipv4(.loopback, port: 0))
        let closed = try probe.localAddress()
        try probe.close()

        let client = try Socket(.inet, .datagram)
        try client.set(.receiveErrors, true)
        _ = try client.send(Array("anyone?".utf8), to: closed)

        // The error queue makes the socket readable with POLLERR.
        var entry = try client.withDescriptor { pollfd(fd: $0, events: 0, revents: 0) }
        #expect(poll(&entry, 1, 5000) == 1)
        #expect(entry.revents & Int16(POLLERR) != 0)

        let (bytes, message) = try client.receiveMessage(maxLength: 100, controlBuffer: try ControlMessageBuffer(), flags: .errorQueue)
        #expect(bytes == Array("anyone?".utf8))
        #expect(message.flags == .errorQueue)
        guard case .extendedError(let error)? = message.controlMessages.first else {
            Issue.record("no extended error in \(message.controlMessages)")
            return
        }
        #expect(error.errno == .connectionRefused)
        #expect(error.origin == .icmp)
        #expect(error.type == 3)  // ICMP destination unreachable
        #expect(error.code == 3)  // port unreachable
        #expect(error.domain == .inet)
        #expect(error.offender?.ipAddress == .v4(.loopback))
        // The queue is empty now.
        let empty = #expect(throws: SocketError.self) {
            _ = try client.receiveMessage(maxLength: 100, controlBuffer: try ControlMessageBuffer(), flags: [.errorQueue, .dontWait])
        }
        #expect(empty?.isWouldBlock == true)
    }

    @Test func ipv6PortUnreachableIsReadFromTheErrorQueue() throws {
        let probe = try Socket(.inet6, .datagram)
        try probe.bind(to: .ipv6(.loopback, port: 0))
        let closed = try probe.localAddress()
        try probe.close()

        let client = try Socket(.inet6, .datagram)
        try client.set(.ipv6ReceiveErrors, true)
        _ = try client.send([1, 2, 3], to: closed)
        var entry = try client.withDescriptor { pollfd(fd: $0, events: 0, revents: 0) }
        #expect(poll(&entry, 1, 5000) == 1)
        let (_, message) = try client.receiveMessage(maxLength: 100, controlBuffer: try ControlMessageBuffer(), flags: .errorQueue)
        guard case .extendedError(let error)? = message.controlMessages.first else {
            Issue.record("no extended error in \(message.controlMessages)")
            return
        }
        #expect(error.errno == .connectionRefused)
        #expect(error.origin == .icmp6)
        #expect(error.type == 1)  // ICMPv6 destination unreachable
        #expect(error.code == 4)  // port unreachable
        #expect(error.domain == .inet6)
        #expect(error.offender?.ipAddress == .v6(.loopback))
    }

    @Test func originalDestinationIsReported() throws {
        let server = try Socket(.inet, .datagram)
        try server.bind(to: .ipv4(.any, port: 0))
        try server.set(.receiveOriginalDestinationAddress, true)
        try setReceiveTimeout(server, seconds: 5)
        let port = try #require(try server.localAddress().port)
        let client = try Socket(.inet, .datagram)
        _ = try client.send([9], to: .ipv4(IPv4Address(127, 0, 0, 3), port: port))
        let (_, message) = try server.receiveMessage(maxLength: 10, controlBuffer: try ControlMessageBuffer())
        #expect(message.controlMessages == [.originalDestination(.ipv4(IPv4Address(127, 0, 0, 3), port: port))])
    }

    @Test func ipv6OriginalDestinationIsReported() throws {
        let server = try Socket(.inet6, .datagram)
        try server.bind(to: .ipv6(.loopback, port: 0))
        try server.set(.ipv6ReceiveOriginalDestinationAddress, true)
        #expect(try server.get(.ipv6ReceiveOriginalDestinationAddress))
        try setReceiveTimeout(server, seconds: 5)
        let client = try Socket(.inet6, .datagram)
        _ = try client.send([9], to: try server.localAddress())
        let (_, message) = try server.receiveMessage(maxLength: 10, controlBuffer: try ControlMessageBuffer())
        #expect(message.controlMessages == [.originalDestination(try server.localAddress())])
    }
}

extension String {
    var trimmed: String {
        String(self.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }

    init(readingFile path: String) throws {
        guard let file = fopen(path, "r") else { throw Errno(rawValue: errno) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        self = String(decoding: bytes, as: UTF8.self)
    }
}
