import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Testing

@Suite(.noDescriptorLeaks())
struct UnixTests {
    /// A listening Unix socket of `type` at `address`, and a connected client and server side.
    func connectedUnix(_ type: SocketType, at address: SocketAddress) throws -> (listener: Socket, client: Socket, server: Socket, peer: SocketAddress) {
        let listener = try Socket(.unix, type)
        try listener.bind(to: address)
        try listener.listen()
        try CoreTest.setTimeouts(listener)
        let client = try Socket(.unix, type)
        try client.connect(to: address)
        let (server, peer) = try listener.accept()
        try CoreTest.setTimeouts(client)
        try CoreTest.setTimeouts(server)
        return (listener, client, server, peer)
    }

    @Test func streamOverAPath() throws {
        let path = CoreTest.unixPath("stream")
        defer { CoreTest.remove(path) }
        let address = try SocketAddress.unix(path: path)
        let (listener, client, server, peer) = try connectedUnix(.stream, at: address)
        #expect(peer == .unix(.unnamed), "an unbound client has no name")
        #expect(try listener.localAddress() == address)
        #expect(try server.localAddress() == address)
        #expect(try client.peerAddress() == address)
        #expect(try client.localAddress() == .unix(.unnamed))
        try client.sendAll("over a path")
        #expect(try server.receive(exactly: 11) == Array("over a path".utf8))
        try server.close()
        #expect(try client.receive(maxLength: 10) == [])

        // The file stays after close; binding it again fails, naming the path.
        let again = try Socket(.unix, .stream)
        let error = #expect(throws: SocketError.self) { try again.bind(to: address) }
        #expect(error?.description == "bind(\(path)): Address already in use (EADDRINUSE)")
    }

    @Test func streamOverAnAbstractName() throws {
        let address = try SocketAddress.unix(abstract: "sockets-core-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let (listener, client, server, _) = try connectedUnix(.stream, at: address)
        #expect(try client.peerAddress() == address)
        let payload = CoreTest.pattern(200_000)
        let reader = BackgroundThread { () throws -> [UInt8] in try server.receive(exactly: payload.count) }
        try client.sendAll(payload)
        #expect(CoreTest.same(try reader.join(), payload))
        try listener.close()
        // Abstract names vanish with the socket: nothing to unlink, and connecting now fails.
        let late = try Socket(.unix, .stream)
        let error = #expect(throws: SocketError.self) { try late.connect(to: address) }
        #expect(error?.errno == .connectionRefused)
    }

    @Test func clientBoundToANameIsSeenByTheServer() throws {
        let address = try SocketAddress.unix(abstract: "sockets-core-server-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let listener = try Socket(.unix, .stream)
        try listener.bind(to: address)
        try listener.listen()
        let client = try Socket(.unix, .stream)
        try client.bind(to: .unix(.unnamed))
        let clientName = try client.localAddress()
        try client.connect(to: address)
        let (_, peer) = try listener.accept()
        #expect(peer == clientName)
    }

    @Test func datagramsBetweenPaths() throws {
        let serverPath = CoreTest.unixPath("dgram-server")
        let clientPath = CoreTest.unixPath("dgram-client")
        defer {
            CoreTest.remove(serverPath)
            CoreTest.remove(clientPath)
        }
        let server = try Socket(.unix, .datagram)
        try server.bind(to: .unix(path: serverPath))
        try CoreTest.setTimeouts(server)
        let client = try Socket(.unix, .datagram)
        try client.bind(to: .unix(path: clientPath))
        try CoreTest.setTimeouts(client)

        #expect(try client.send(Array("first".utf8), to: .unix(path: serverPath)) == 5)
        #expect(try client.send(Array("second!".utf8), to: .unix(path: serverPath)) == 7)
        let datagram = try server.receiveDatagram(maxLength: 100)
        let first = datagram.bytes
        let sender = datagram.sender
        #expect(first == Array("first".utf8))
        #expect(sender == (try .unix(path: clientPath)))
        #expect(try server.receiveDatagram(maxLength: 100).bytes == Array("second!".utf8))
        #expect(try server.send(Array("reply".utf8), to: try #require(sender)) == 5)
        #expect(try client.receive(maxLength: 100) == Array("reply".utf8))

        // An unbound sender has no address to reply to.
        let anonymous = try Socket(.unix, .datagram)
        _ = try anonymous.send([1], to: .unix(path: serverPath))
        let noSender = try server.receiveDatagram(maxLength: 10).sender
        #expect(noSender == nil || noSender == .unix(.unnamed))

        // Truncation is reported on Unix datagrams too.
        _ = try client.send([UInt8](repeating: 7, count: 50), to: .unix(path: serverPath))
        let (_, message) = try server.receiveMessage(maxLength: 10)
        #expect(message.flags.contains(.truncated))
        #expect(message.byteCount == 10)

        let missing = #expect(throws: SocketError.self) { try client.send([1], to: .unix(path: serverPath + "-gone")) }
        #expect(missing?.errno == .noSuchFileOrDirectory)
    }

    @Test func sequencedPacketsKeepBoundariesAndReportEndOfFile() throws {
        let path = CoreTest.unixPath("seqpacket")
        defer { CoreTest.remove(path) }
        let (_, client, server, _) = try connectedUnix(.sequencedPacket, at: try .unix(path: path))
        let messages: [[UInt8]] = [Array("a".utf8), CoreTest.pattern(5000), Array("third".utf8), CoreTest.pattern(40)]
        for message in messages { #expect(try client.send(message) == message.count) }
        for message in messages.prefix(3) {
            let received = try server.receive(maxLength: 10_000)
            #expect(CoreTest.same(received, message), "one receive, one message")
        }
        // A message longer than the buffer is cut, flagged, and the rest dropped.
        let (cut, info) = try server.receiveMessage(maxLength: 16)
        #expect(cut == Array(messages[3][..<16]))
        #expect(info.flags.contains(.truncated))

        // The socket pair variant, and end-of-file once the peer closes.
        try server.sendAll(Array("bye".utf8))
        #expect(try client.receive(maxLength: 100) == Array("bye".utf8))
        try server.close()
        #expect(try client.receive(maxLength: 100) == [])
        let (left, right) = try Socket.pair(.unix, .sequencedPacket)
        _ = try left.send([1, 2])
        _ = try left.send([3])
        #expect(try right.receive(maxLength: 10) == [1, 2])
        #expect(try right.receive(maxLength: 10) == [3])
        try left.close()
        #expect(try right.receive(maxLength: 10) == [])
    }

    /// A raw `SCM_RIGHTS` control message carrying one descriptor (x86-64 layout:
    /// `cmsg_len` is 8 bytes, then level and type, then the data; CMSG_SPACE(4) is 24).
    func rightsControl(_ fd: CInt) -> [UInt8] {
        var control = [UInt8](repeating: 0, count: 24)
        control.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: 20, toByteOffset: 0, as: Int.self)  // CMSG_LEN(4)
            raw.storeBytes(of: SOL_SOCKET, toByteOffset: 8, as: CInt.self)
            raw.storeBytes(of: 1, toByteOffset: 12, as: CInt.self)  // SCM_RIGHTS
            raw.storeBytes(of: fd, toByteOffset: 16, as: CInt.self)
        }
        return control
    }

    @Test func descriptorsThroughSendMessageAndReceiveMessage() throws {
        let (left, right) = try Socket.pair(.unix, .datagram)
        let (passed, partner) = try Socket.pair(.unix, .datagram)
        try CoreTest.setTimeouts(right)
        let payload: [UInt8] = [1, 2, 3]
        // The encoder writes the layout the kernel reads.
        #expect(try ControlMessage.encode([.descriptors([passed.descriptor])]) == rightsControl(passed.descriptor))

        _ = try left.sendMessage(payload, controlMessages: [.descriptors([passed.descriptor])])
        var buffer = [UInt8](repeating: 0, count: 16)
        let control = try ControlMessageBuffer(capacity: 64)
        let message = try buffer.withUnsafeMutableBytes { try right.receiveMessage(into: [$0], controlBuffer: control) }
        #expect(message.byteCount == 3)
        #expect(!message.isControlTruncated)
        let descriptors = message.descriptors
        try #require(descriptors.count == 1)
        let received = try descriptors[0].takeDescriptor()
        #expect(received >= 0 && received != passed.descriptor)
        let adopted = Socket(adopting: received)
        #expect(try adopted.isCloseOnExec(), "MSG_CMSG_CLOEXEC reached the kernel")
        _ = try adopted.send([42])
        #expect(try partner.receive(maxLength: 4, flags: .dontWait) == [42], "the same socket arrived")
        try adopted.close()

        // No room: the kernel reports MSG_CTRUNC and closes the descriptor itself.
        _ = try left.sendMessage(payload, controlMessages: [.descriptors([passed.descriptor])])
        let cut = try buffer.withUnsafeMutableBytes { try right.receiveMessage(into: [$0]) }
        #expect(cut.isControlTruncated)
        #expect(cut.controlMessages.isEmpty)
        #expect(throws: SocketError.self) { try ControlMessageBuffer(capacity: -1) }
        for socket in [left, right, passed, partner] { try socket.close() }
    }

    @Test func connectedUnixDatagramAndDisconnect() throws {
        let path = CoreTest.unixPath("dgram-connected")
        defer { CoreTest.remove(path) }
        let server = try Socket(.unix, .datagram)
        try server.bind(to: .unix(path: path))
        try CoreTest.setTimeouts(server)
        let client = try Socket(.unix, .datagram)
        try client.connect(to: .unix(path: path))
        #expect(try client.peerAddress() == .unix(path: path))
        #expect(try client.send([1]) == 1)
        #expect(try server.receive(maxLength: 10) == [1])
        try client.connect(to: Socket.disconnectAddress)
        #expect(throws: SocketError.self) { try client.peerAddress() }
        let error = #expect(throws: SocketError.self) { try client.send([2]) }
        #expect(error?.errno == .socketNotConnected)
    }
}
