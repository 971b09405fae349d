import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Testing

/// Every place where a length the kernel reports sizes or indexes a buffer: the kernel may
/// report more than the buffer held (`MSG_TRUNC`, a long address, a long option, cut control
/// data), and none of them may trap, read past the buffer, or hand out bytes never received.
@Suite(.noDescriptorLeaks())
struct KernelLengthTests {
    let ten = Array("0123456789".utf8)

    /// A UDP receiver on loopback with a 10-byte datagram waiting, and the sender.
    func receiverWithDatagram(_ payload: [UInt8]? = nil) throws -> (receiver: Socket, sender: Socket) {
        let receiver = try Socket(.inet, .datagram)
        try receiver.bind(to: .ipv4(.loopback, port: 0))
        try CoreTest.setTimeouts(receiver)
        let sender = try Socket(.inet, .datagram)
        _ = try sender.send(payload ?? ten, to: try receiver.localAddress())
        return (receiver, sender)
    }

    // MARK: recv

    @Test func receiveIntoAnArrayRefusesTruncateFlagInsteadOfTrapping() throws {
        let (receiver, sender) = try receiverWithDatagram()
        let refused = #expect(throws: SocketError.self) { try receiver.receive(maxLength: 4, flags: .truncated) }
        guard case .invalidArgument(let why)? = refused?.reason else {
            Issue.record("expected an invalid-argument error, got \(String(describing: refused))")
            return
        }
        #expect(why.contains("receiveDatagram"))
        // Refused before any call: the datagram is still there, whole.
        #expect(try receiver.receive(maxLength: 100) == ten)
        try receiver.close()
        try sender.close()
    }

    @Test func receiveIntoABufferWithTruncateFlagReportsTheFullLength() throws {
        let (receiver, sender) = try receiverWithDatagram()
        var buffer = [UInt8](repeating: 0xAA, count: 6)
        let reported = try buffer.withUnsafeMutableBytes { window in
            // Only the first four bytes are offered to the kernel.
            try receiver.receive(into: UnsafeMutableRawBufferPointer(rebasing: window[..<4]), flags: .truncated)
        }
        #expect(reported == 10, "recv(2) with MSG_TRUNC gives the datagram's real length")
        #expect(buffer == Array(ten[..<4]) + [0xAA, 0xAA], "nothing written past the four bytes offered")
        try receiver.close()
        try sender.close()
    }

    @Test func receiveOnAStreamWithTruncateFlagIsRefusedBeforeDiscarding() throws {
        // On TCP, MSG_TRUNC discards bytes without storing them: an array would hold garbage.
        let (client, server) = try CoreTest.tcpPair()
        try client.sendAll(ten)
        _ = try CoreTest.poll(server, Int16(POLLIN))
        #expect(throws: SocketError.self) { try server.receive(maxLength: 4, flags: .truncated) }
        #expect(try server.receive(exactly: 10) == ten, "no byte was discarded")
        try client.close()
        try server.close()
    }

    // MARK: recvfrom and recvmsg

    @Test(arguments: [4, 10, 11])
    func receiveDatagramSaysWhenItCut(maxLength: Int) throws {
        let (receiver, sender) = try receiverWithDatagram()
        let datagram = try receiver.receiveDatagram(maxLength: maxLength)
        #expect(datagram.bytes == Array(ten.prefix(maxLength)))
        #expect(datagram.isTruncated == (maxLength < 10))
        #expect(datagram.sender?.port == (try sender.localPort()))
        try receiver.close()
        try sender.close()
    }

    @Test func receiveFromIntoABufferWithTruncateFlagReportsTheFullLength() throws {
        let (receiver, sender) = try receiverWithDatagram()
        var buffer = [UInt8](repeating: 0, count: 3)
        let (count, from) = try buffer.withUnsafeMutableBytes { try receiver.receiveFrom(into: $0, flags: .truncated) }
        #expect(count == 10)
        #expect(buffer == Array(ten[..<3]))
        #expect(from?.port == (try sender.localPort()))
        try receiver.close()
        try sender.close()
    }

    @Test func receiveMessageCutsAndFlagsBothForms() throws {
        let (receiver, sender) = try receiverWithDatagram()
        _ = try sender.send(ten, to: try receiver.localAddress())
        let (bytes, message) = try receiver.receiveMessage(maxLength: 4)
        #expect(bytes == Array(ten[..<4]))
        #expect(message.byteCount == 4)
        #expect(message.flags.contains(.truncated))
        let control = try ControlMessageBuffer()
        let (typedBytes, typed) = try receiver.receiveMessage(maxLength: 4, controlBuffer: control)
        #expect(typedBytes == Array(ten[..<4]))
        #expect(typed.flags.contains(.truncated))
        #expect(throws: SocketError.self) { try receiver.receiveMessage(maxLength: 4, flags: .truncated) }
        #expect(throws: SocketError.self) { try receiver.receiveMessage(maxLength: 4, controlBuffer: control, flags: .truncated) }
        try receiver.close()
        try sender.close()
    }

    @Test func controlDataLongerThanTheBufferIsCutAndFlagged() throws {
        // Three descriptors sent, room for one: the kernel closes the rest and says so.
        let (left, right) = try Socket.pair(.unix, .datagram)
        let (a, b) = try Socket.pair()
        try left.sendDescriptors([a.descriptor, b.descriptor, a.descriptor], bytes: [1])
        let tiny = try ControlMessageBuffer(capacity: ControlMessage.space(forDescriptors: 1))
        let (bytes, message) = try right.receiveMessage(maxLength: 10, controlBuffer: tiny)
        #expect(bytes == [1])
        #expect(message.isControlTruncated)
        #expect(message.descriptors.count <= 2, "no more descriptors than fit the buffer")
        for descriptor in message.descriptors { try descriptor.close() }
        // A buffer too small for even one header: nothing decoded, nothing left open.
        try left.sendDescriptors([a.descriptor, b.descriptor], bytes: [2])
        var data = [UInt8](repeating: 0, count: 4)
        let headerOnly = try ControlMessageBuffer(capacity: 12)
        let cut = try data.withUnsafeMutableBytes { try right.receiveMessage(into: [$0], controlBuffer: headerOnly) }
        #expect(cut.isControlTruncated)
        #expect(cut.descriptors.isEmpty)
        for socket in [left, right, a, b] { try socket.close() }
    }

    // MARK: recvmmsg

    @Test func batchEntriesAreCutToTheirSlotAndFlagged() throws {
        let (receiver, sender) = try receiverWithDatagram()
        _ = try sender.send(Array(ten[..<3]), to: try receiver.localAddress())
        let batch = try DatagramBatch(capacity: 4, maximumDatagramSize: 4)
        #expect(try receiver.receiveBatch(into: batch) == 2)
        #expect(try batch.bytes(at: 0) == Array(ten[..<4]))
        #expect(try batch.flags(at: 0).contains(.truncated))
        #expect(try batch.bytes(at: 1) == Array(ten[..<3]))
        #expect(try !batch.flags(at: 1).contains(.truncated))
        #expect(throws: SocketError.self) { try batch.bytes(at: 2) }
        try receiver.close()
        try sender.close()
    }

    // MARK: getsockopt

    @Test func optionReadIntoAShortBufferIsCut() throws {
        let socket = try Socket(.inet, .stream)
        // SO_RCVBUF is an int and TCP_INFO about 240 bytes: ask for fewer.
        #expect(try socket.getOption(level: SOL_SOCKET, name: SO_RCVBUF, maxLength: 2).count == 2)
        #expect(try socket.getOption(level: Int32(IPPROTO_TCP), name: Int32(TCP_INFO), maxLength: 8).count == 8)
        #expect(try socket.getOption(level: SOL_SOCKET, name: SO_RCVBUF, maxLength: 0).isEmpty)
        try socket.close()
    }

    // MARK: getsockname, getpeername and addresses

    @Test func longestUnixNamesRoundTripThroughTheKernel() throws {
        let prefix = "/tmp/"
        let path = prefix + String(repeating: "p", count: UnixSocketAddress.maximumPathLength - prefix.utf8.count)
        CoreTest.remove(path)
        defer { CoreTest.remove(path) }
        let listener = try Socket(.unix, .stream)
        try listener.bind(to: .unix(path: path))
        try listener.listen()
        let client = try Socket(.unix, .stream)
        try client.connect(to: .unix(path: path))
        #expect(try listener.localAddress() == .unix(try UnixSocketAddress(path: path)))
        #expect(try client.peerAddress() == .unix(try UnixSocketAddress(path: path)))

        let abstractName = String(repeating: "a", count: UnixSocketAddress.maximumAbstractLength)
        let abstract = try Socket(.unix, .datagram)
        try abstract.bind(to: .unix(try UnixSocketAddress(abstract: abstractName)))
        #expect(try abstract.localAddress() == .unix(try UnixSocketAddress(abstract: abstractName)))
        for socket in [listener, client, abstract] { try socket.close() }
    }

    @Test func anAddressLengthBeyondTheStorageIsClamped() {
        // recvfrom, accept and getsockname report the full length when the buffer was short.
        var storage = sockaddr_storage()
        storage.ss_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage) { bytes in
            for index in 2..<bytes.count { bytes[index] = UInt8(ascii: "x") }
        }
        let address = withUnsafeBytes(of: &storage) { SocketAddress(sockaddr: $0.baseAddress!, length: 4096) }
        guard case .unix(let unix) = address else {
            Issue.record("expected a Unix address, got \(address)")
            return
        }
        #expect(unix.bytes.count <= MemoryLayout<sockaddr_storage>.size - 2)
    }

    // MARK: netlink and control-message decoding

    @Test func netlinkLengthsPastTheBytesAreRejected() {
        var message = NetlinkMessage(type: NetlinkMessage.done, payload: [1, 2, 3, 4]).encoded
        // nlmsg_len (the first 4 bytes, host order) claims far more than there is.
        message.replaceSubrange(0..<4, with: withUnsafeBytes(of: UInt32(4096)) { Array($0) })
        #expect(throws: SocketError.self) { try NetlinkMessage.decode(message) }
    }

    @Test func controlLengthsPastTheBytesAreRejected() throws {
        var record = try ControlMessage.encode([.descriptors([0])])
        // cmsg_len (a size_t at the start) claims more than there is.
        record.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1000)) { Array($0) })
        #expect(throws: SocketError.self) { try ControlMessage.decode(record) }
    }
}
