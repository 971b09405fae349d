import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Testing

@Suite(.noDescriptorLeaks())
struct DatagramTests {
    /// A UDP socket bound to an ephemeral loopback port, with receive timeouts.
    func boundUDP(_ domain: SocketDomain = .inet) throws -> (Socket, SocketAddress) {
        let socket = try Socket(domain, .datagram)
        try socket.bind(to: domain == .inet ? .ipv4(.loopback, port: 0) : .ipv6(.loopback, port: 0))
        try CoreTest.setTimeouts(socket)
        return (socket, try socket.localAddress())
    }

    @Test(arguments: [SocketDomain.inet, .inet6])
    func sendToAndReceiveFrom(domain: SocketDomain) throws {
        let (receiver, address) = try boundUDP(domain)
        let (sender, senderAddress) = try boundUDP(domain)
        #expect(try sender.send(Array("ping".utf8), to: address) == 4)
        let datagram = try receiver.receiveDatagram(maxLength: 100)
        let bytes = datagram.bytes
        let from = datagram.sender
        #expect(bytes == Array("ping".utf8))
        #expect(from == senderAddress)
        // Reply to whoever sent it.
        let reply = try #require(from)
        #expect(try receiver.send(Array("pong".utf8), to: reply) == 4)
        var buffer = [UInt8](repeating: 0, count: 10)
        let result = try buffer.withUnsafeMutableBytes { try sender.receiveFrom(into: $0) }
        #expect(result.byteCount == 4)
        #expect(result.sender == address)
        #expect(Array(buffer[..<4]) == Array("pong".utf8))
    }

    @Test func messageBoundariesAreKept() throws {
        let (receiver, address) = try boundUDP()
        let sender = try Socket(.inet, .datagram)
        let sizes = [1, 50, 0, 1400, 9000, 65507, 3]
        for (index, size) in sizes.enumerated() {
            #expect(try sender.send(CoreTest.pattern(size, seed: UInt64(index + 1)), to: address) == size)
        }
        for (index, size) in sizes.enumerated() {
            let datagram = try receiver.receiveDatagram(maxLength: 70_000)
            let bytes = datagram.bytes
            #expect(bytes.count == size)
            #expect(CoreTest.same(bytes, CoreTest.pattern(size, seed: UInt64(index + 1))))
        }
        let tooBig = #expect(throws: SocketError.self) { try sender.send([UInt8](repeating: 0, count: 65508), to: address) }
        #expect(tooBig?.description == "sendto(\(address)): Message too long (EMSGSIZE)")
    }

    @Test func truncationIsReported() throws {
        let (receiver, address) = try boundUDP()
        let (sender, _) = try boundUDP()
        let datagram = CoreTest.pattern(100, seed: 9)
        for _ in 0..<4 { #expect(try sender.send(datagram, to: address) == 100) }

        // recvmsg into 10 bytes: 10 stored, MSG_TRUNC reported, the rest discarded.
        var small = [UInt8](repeating: 0, count: 10)
        let message = try small.withUnsafeMutableBytes { try receiver.receiveMessage(into: [$0]) }
        #expect(message.byteCount == 10)
        #expect(message.flags.contains(.truncated), "\(message.flags)")
        #expect(small == Array(datagram[..<10]))
        #expect(message.sender == (try sender.localAddress()))

        // recv with MSG_TRUNC returns the datagram's real length.
        let real = try small.withUnsafeMutableBytes { try receiver.receive(into: $0, flags: .truncated) }
        #expect(real == 100)

        // Into an array: cut to fit, and flagged without asking.
        let (bytes, cut) = try receiver.receiveMessage(maxLength: 10)
        #expect(bytes == Array(datagram[..<10]))
        #expect(cut.flags.contains(.truncated))

        // A buffer big enough: no flag.
        let (all, fits) = try receiver.receiveMessage(maxLength: 100)
        #expect(all == datagram)
        #expect(!fits.flags.contains(.truncated))
    }

    @Test func peekAtADatagram() throws {
        let (receiver, address) = try boundUDP()
        let (sender, _) = try boundUDP()
        _ = try sender.send([1, 2, 3], to: address)
        let datagram = try receiver.receiveDatagram(maxLength: 10, flags: .peek)
        let peeked = datagram.bytes
        let from = datagram.sender
        #expect(peeked == [1, 2, 3])
        #expect(from == (try sender.localAddress()))
        #expect(try receiver.receive(maxLength: 10) == [1, 2, 3])
    }

    @Test func vectoredDatagramWithAddress() throws {
        let (receiver, address) = try boundUDP()
        let (sender, _) = try boundUDP()
        let head: [UInt8] = [0xAA, 0xBB]
        let body = CoreTest.pattern(300)
        let sent = try head.withUnsafeBytes { a in try body.withUnsafeBytes { b in try sender.sendMessage([a, b], to: address) } }
        #expect(sent == 302)
        var first = [UInt8](repeating: 0, count: 2)
        var second = [UInt8](repeating: 0, count: 400)
        let message = try first.withUnsafeMutableBytes { a in
            try second.withUnsafeMutableBytes { b in try receiver.receiveMessage(into: [a, b]) }
        }
        #expect(message.byteCount == 302)
        #expect(first == head)
        #expect(Array(second[..<300]) == body)
        #expect(message.sender == (try sender.localAddress()))
    }

    @Test(arguments: [SocketDomain.inet, .inet6])
    func connectedUDPAndDisconnect(domain: SocketDomain) throws {
        let (peer, peerAddress) = try boundUDP(domain)
        let (client, clientAddress) = try boundUDP(domain)
        let (stranger, _) = try boundUDP(domain)

        try client.connect(to: peerAddress)
        #expect(try client.peerAddress() == peerAddress)
        #expect(try client.send([1]) == 1)
        let datagram = try peer.receiveDatagram(maxLength: 10)
        let bytes = datagram.bytes
        let from = datagram.sender
        #expect(bytes == [1])
        #expect(from == clientAddress)

        // Connected: only the peer's datagrams are delivered.
        _ = try stranger.send([66], to: clientAddress)
        _ = try peer.send([2], to: clientAddress)
        #expect(try client.receive(maxLength: 10) == [2])
        let filtered = #expect(throws: SocketError.self) { try client.receive(maxLength: 10, flags: .dontWait) }
        #expect(filtered?.isWouldBlock == true)

        try client.connect(to: Socket.disconnectAddress)
        let notConnected = #expect(throws: SocketError.self) { try client.peerAddress() }
        #expect(notConnected?.errno == .socketNotConnected)
        // Linux forgets a port that bind chose (port 0) when disconnecting; the address stays.
        // (Any send, even a failing one, then autobinds a new port.)
        let local = try client.localAddress()
        #expect(local.ipAddress == clientAddress.ipAddress)
        #expect(local.port == 0, "\(local)")
        let noDestination = #expect(throws: SocketError.self) { try client.send([3]) }
        #expect(noDestination?.errno == .addressRequired)

        // Unconnected again: it can talk to anyone.
        let strangerAddress = try stranger.localAddress()
        #expect(try client.send([5], to: strangerAddress) == 1)
        let fromClient = try stranger.receiveDatagram(maxLength: 10)
        let five = fromClient.bytes
        let newClientAddress = fromClient.sender
        #expect(five == [5])
        _ = try stranger.send([77], to: try #require(newClientAddress))
        let reply = try client.receiveDatagram(maxLength: 10)
        let fromStranger = reply.bytes
        let sender = reply.sender
        #expect(fromStranger == [77])
        #expect(sender == strangerAddress)
    }

    @Test func connectedUDPSeesPortUnreachable() throws {
        let (closed, closedAddress) = try boundUDP()
        try closed.close()
        let client = try Socket(.inet, .datagram)
        try CoreTest.setTimeouts(client)
        try client.connect(to: closedAddress)
        _ = try client.send([1])
        // The ICMP port-unreachable comes back as ECONNREFUSED on the connected socket.
        let error = #expect(throws: SocketError.self) { try client.receive(maxLength: 10) }
        #expect(error?.errno == .connectionRefused)
        #expect(error?.description == "recv: Connection refused (ECONNREFUSED)")
    }

    @Test func emptyDatagram() throws {
        let (receiver, address) = try boundUDP()
        let (sender, _) = try boundUDP()
        #expect(try sender.send([], to: address) == 0)
        let datagram = try receiver.receiveDatagram(maxLength: 10)
        let bytes = datagram.bytes
        let from = datagram.sender
        #expect(bytes.isEmpty)
        #expect(from == (try sender.localAddress()), "an empty datagram still has a sender")
    }
}
