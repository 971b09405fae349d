import Glibc
import Sockets
import SystemPackage
import Testing

/// Sets an int socket option directly, for test set-up the library does not wrap here.
func setIntOption(_ socket: Socket, _ level: Int32, _ name: Int32, _ value: Int32) throws {
    var value = value
    let result = try socket.withDescriptor { setsockopt($0, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) }
    #expect(result == 0, "setsockopt(\(level), \(name)) failed: errno \(errno)")
}

/// The bytes of datagram `index`: its number in text, then a pattern up to `length`.
func datagramPayload(_ index: Int, length: Int) -> [UInt8] {
    let head = Array("datagram \(index):".utf8)
    return head + (0..<max(0, length - head.count)).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0) }
}

/// A UDP socket on 127.0.0.1 with a 4 MiB receive buffer and a 5 s receive timeout.
func udpReceiver() throws -> (Socket, SocketAddress) {
    let socket = try Socket(.inet, .datagram)
    try socket.bind(to: .ipv4(.loopback, port: 0))
    try setIntOption(socket, SOL_SOCKET, SO_RCVBUF, 4 << 20)
    try setReceiveTimeout(socket, seconds: 5)
    return (socket, try socket.localAddress())
}

@Suite(.noDescriptorLeaks())
struct BatchTests {
    @Test func thousandDatagramsEachWayInOneCallEach() throws {
        let (server, serverAddress) = try udpReceiver()
        let (client, clientAddress) = try udpReceiver()
        let outgoing = try DatagramBatch(capacity: 1000, maximumDatagramSize: 100)
        for index in 0..<1000 {
            try outgoing.append(datagramPayload(index, length: 20 + index % 80), to: serverAddress)
        }
        #expect(outgoing.count == 1000)
        #expect(try client.sendBatch(outgoing) == 1000)

        // Without MSG_WAITFORONE, recvmmsg waits until the batch is full: one call.
        let incoming = try DatagramBatch(capacity: 1000, maximumDatagramSize: 100)
        #expect(try server.receiveBatch(into: incoming, flags: []) == 1000)
        for index in 0..<1000 {
            #expect(try incoming.bytes(at: index) == datagramPayload(index, length: 20 + index % 80))
            #expect(try incoming.address(at: index) == clientAddress)
            #expect(try incoming.flags(at: index) == [])
        }

        // A received batch goes straight back to its senders: one call the other way.
        #expect(try server.sendBatch(incoming) == 1000)
        let echoed = try DatagramBatch(capacity: 1000, maximumDatagramSize: 100)
        #expect(try client.receiveBatch(into: echoed, flags: []) == 1000)
        for index in 0..<1000 {
            let matches = try echoed.withBytes(at: index) { $0.elementsEqual(datagramPayload(index, length: 20 + index % 80)) }
            #expect(matches, "datagram \(index)")
            #expect(try echoed.address(at: index) == serverAddress)
        }
    }

    @Test func batchIsReusedWithoutGrowing() throws {
        let (server, serverAddress) = try udpReceiver()
        let client = try Socket(.inet, .datagram)
        let outgoing = try DatagramBatch(capacity: 4, maximumDatagramSize: 32)
        let incoming = try DatagramBatch(capacity: 8, maximumDatagramSize: 32)
        for round in 0..<50 {
            outgoing.removeAll()
            for index in 0..<4 {
                try outgoing.append(byteCount: 8, to: serverAddress) { buffer in
                    buffer.storeBytes(of: UInt64(round * 4 + index).bigEndian, as: UInt64.self)
                }
            }
            var sent = 0
            while sent < 4 { sent += try client.sendBatch(outgoing, from: sent) }
            var received = 0
            while received < 4 {
                let count = try server.receiveBatch(into: incoming)
                for index in 0..<count {
                    let value = try incoming.withBytes(at: index) { UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) }
                    #expect(value == UInt64(round * 4 + received + index))
                }
                received += count
            }
            #expect(received == 4)
        }
    }

    @Test func perDatagramControlMessagesArriveInABatch() throws {
        let server = try Socket(.inet, .datagram)
        try server.bind(to: .ipv4(.any, port: 0))
        try server.set(.receivePacketInfo, true)
        try server.set(.receiveTimeToLive, true)
        try setReceiveTimeout(server, seconds: 5)
        let port = try #require(try server.localAddress().port)
        let client = try Socket(.inet, .datagram)
        let outgoing = try DatagramBatch(capacity: 6, maximumDatagramSize: 16, controlCapacity: 64)
        for index in 0..<6 {
            let destination = IPv4Address(127, 0, 0, UInt8(1 + index % 3))
            try outgoing.append([UInt8(index)], to: .ipv4(destination, port: port), controlMessages: [.timeToLive(10 + index)])
        }
        #expect(try client.sendBatch(outgoing) == 6)
        let incoming = try DatagramBatch(capacity: 6, maximumDatagramSize: 16, controlCapacity: 128)
        #expect(try server.receiveBatch(into: incoming, flags: []) == 6)
        for index in 0..<6 {
            #expect(try incoming.bytes(at: index) == [UInt8(index)])
            let messages = try incoming.controlMessages(at: index)
            #expect(messages.contains(.timeToLive(10 + index)), "\(messages)")
            let destination = messages.compactMap { message -> IPv4Address? in
                if case .ipv4PacketInfo(let info) = message { return info.destinationAddress }
                return nil
            }
            #expect(destination == [IPv4Address(127, 0, 0, UInt8(1 + index % 3))])
        }
    }

    @Test func truncatedDatagramIsFlagged() throws {
        let (server, serverAddress) = try udpReceiver()
        let client = try Socket(.inet, .datagram)
        _ = try client.send(Array(0..<20), to: serverAddress)
        let incoming = try DatagramBatch(capacity: 2, maximumDatagramSize: 8)
        #expect(try server.receiveBatch(into: incoming) == 1)
        #expect(try incoming.bytes(at: 0) == Array(0..<8))
        #expect(try incoming.flags(at: 0).contains(.truncated))
        #expect(throws: SocketError.self) { _ = try incoming.bytes(at: 1) }
    }

    @Test func descriptorsArrivingInABatchAreClosed() throws {
        let (sender, receiver) = try Socket.pair(.unix, .datagram)
        let pipe = TestPipe()
        let before = openDescriptors()
        try sender.sendDescriptors([pipe.read, pipe.write, pipe.read], bytes: [1])
        let incoming = try DatagramBatch(capacity: 2, maximumDatagramSize: 8, controlCapacity: 64)
        #expect(try receiver.receiveBatch(into: incoming) == 1)
        #expect(try incoming.bytes(at: 0) == [1])
        #expect(try incoming.controlMessages(at: 0) == [])
        #expect(openDescriptors() == before)
    }

    @Test func invalidBatchesAreRejected() throws {
        #expect(throws: SocketError.self) { _ = try DatagramBatch(capacity: 0) }
        #expect(throws: SocketError.self) { _ = try DatagramBatch(capacity: 1025) }
        #expect(throws: SocketError.self) { _ = try DatagramBatch(capacity: 1, maximumDatagramSize: 0) }
        let batch = try DatagramBatch(capacity: 1, maximumDatagramSize: 4, controlCapacity: 16)
        #expect(throws: SocketError.self) { try batch.append([1, 2, 3, 4, 5]) }
        #expect(throws: SocketError.self) { try batch.append([1], controlMessages: [.timeToLive(1), .timeToLive(2)]) }
        try batch.append([1])
        let full = #expect(throws: SocketError.self) { try batch.append([2]) }
        #expect(full?.description.contains("full") == true)
        let socket = try Socket(.inet, .datagram)
        #expect(throws: SocketError.self) { _ = try socket.sendBatch(batch, from: 2) }
    }
}

@Suite(.noDescriptorLeaks())
struct SegmentationOffloadTests {
    @Test func gsoSplitsOneSendIntoDatagrams() throws {
        let (server, serverAddress) = try udpReceiver()
        let client = try Socket(.inet, .datagram)
        let payload = (0..<10).flatMap { datagramPayload($0, length: 1000) }
        let sent = try client.sendMessage(payload, to: serverAddress, controlMessages: [.segmentSize(1000)])
        #expect(sent == 10_000)
        let incoming = try DatagramBatch(capacity: 10, maximumDatagramSize: 2000)
        #expect(try server.receiveBatch(into: incoming, flags: []) == 10)
        for index in 0..<10 {
            #expect(try incoming.bytes(at: index) == datagramPayload(index, length: 1000))
        }
    }

    @Test func socketWideSegmentSize() throws {
        let (server, serverAddress) = try udpReceiver()
        let client = try Socket(.inet, .datagram)
        try client.set(.udpSegmentSize, 500)
        #expect(try client.get(.udpSegmentSize) == 500)
        #expect(try client.send(Array(repeating: 7, count: 1200), to: serverAddress) == 1200)
        let incoming = try DatagramBatch(capacity: 3, maximumDatagramSize: 2000)
        #expect(try server.receiveBatch(into: incoming, flags: []) == 3)
        #expect(try (0..<3).map { try incoming.byteCount(at: $0) } == [500, 500, 200])
        try client.set(.udpSegmentSize, 0)
        #expect(throws: SocketError.self) { try client.set(.udpSegmentSize, 70_000) }
    }

    @Test func groCoalescesSegmentsWithTheirSize() throws {
        let (server, serverAddress) = try udpReceiver()
        do {
            try server.set(.udpReceiveOffload, true)
        } catch {
            // A kernel without UDP GRO says so clearly.
            #expect(error.errno == .protocolNotAvailable, "\(error)")
            #expect(error.description.contains("UDP_GRO"))
            return
        }
        #expect(try server.get(.udpReceiveOffload))
        let client = try Socket(.inet, .datagram)
        let payload = (0..<8).flatMap { datagramPayload($0, length: 1000) } + datagramPayload(8, length: 300)
        _ = try client.sendMessage(payload, to: serverAddress, controlMessages: [.segmentSize(1000)])
        let buffer = try ControlMessageBuffer()
        let (bytes, message) = try server.receiveMessage(maxLength: 65536, controlBuffer: buffer)
        // Coalesced: one receive of all the segments, and the size to split them by.
        #expect(bytes == payload)
        #expect(message.controlMessages == [.receivedSegmentSize(1000)])
    }

    @Test func tooManySegmentsAreRefusedWithAClearError() throws {
        let (_, serverAddress) = try udpReceiver()
        let client = try Socket(.inet, .datagram)
        // The kernel allows at most UDP_MAX_SEGMENTS (128) segments per send.
        let error = #expect(throws: SocketError.self) {
            _ = try client.sendMessage(Array(repeating: 1, count: 100 * 200), to: serverAddress, controlMessages: [.segmentSize(100)])
        }
        #expect(error?.errno == .invalidArgument)
        #expect(error?.description.hasPrefix("sendmsg(127.0.0.1:") == true, "\(String(describing: error))")
    }
}
