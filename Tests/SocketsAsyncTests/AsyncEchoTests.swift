import Glibc
import Sockets
import SocketsAsync
import Testing

@Suite(.noDescriptorLeaks(usesAsyncRuntime: true))
struct AsyncEchoTests {
    /// One stream echo: a server task on the loop accepts one connection and echoes it; the
    /// client sends payloads of several sizes and checks every byte.
    func streamEcho(listenOn address: SocketAddress, type: SocketType = .stream) async throws {
        try await withLoop { loop in
            let listener = try AsyncSocket.listen(on: address, type: type, loop: loop)
            let bound = try listener.localAddress()
            let server = Task(executorPreference: loop) {
                let (connection, _) = try await listener.accept()
                #expect(loop.inEventLoop)
                defer { try? connection.close() }
                try await echoStream(connection)
                #expect(loop.inEventLoop)
            }
            let client = try await AsyncSocket.connect(to: bound, type: type, loop: loop)
            for (index, size) in [1, 64, 1000, 70_000, 300_000].enumerated() {
                let payload = testBytes(count: size, seed: UInt64(index))
                let echoed = try await roundTrip(client, payload)
                #expect(echoed == payload)
            }
            try client.shutdown(.write)
            #expect(try await client.receive(maxLength: 16).isEmpty)
            try await server.value
            try client.close()
            try listener.close()
            if case .unix(let unix) = bound, let path = unix.path { unlink(path) }
        }
    }

    @Test func tcpIPv4Echo() async throws {
        try await streamEcho(listenOn: .ipv4(.loopback, port: 0))
    }

    @Test func tcpIPv6Echo() async throws {
        try await streamEcho(listenOn: .ipv6(.loopback, port: 0))
    }

    @Test func unixStreamEcho() async throws {
        try await streamEcho(listenOn: try .unix(path: uniqueSocketPath("stream")))
    }

    @Test func unixAbstractStreamEcho() async throws {
        try await streamEcho(listenOn: try .unix(abstract: "sockets-async-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"))
    }

    @Test func unixSeqpacketKeepsMessageBoundaries() async throws {
        try await withLoop { loop in
            let path = uniqueSocketPath("seqpacket")
            defer { unlink(path) }
            let listener = try AsyncSocket.listen(on: try .unix(path: path), type: .sequencedPacket, loop: loop)
            let server = Task(executorPreference: loop) {
                let (connection, _) = try await listener.accept()
                defer { try? connection.close() }
                // Echo each message as it came: one receive is one message.
                while true {
                    let message = try await connection.receive(maxLength: 4096)
                    if message.isEmpty { return }
                    #expect(try await connection.send(message) == message.count)
                }
            }
            let client = try await AsyncSocket.connect(to: try .unix(path: path), type: .sequencedPacket, loop: loop)
            #expect(client.type == .sequencedPacket)
            let messages = (1...20).map { testBytes(count: $0 * 37, seed: UInt64($0)) }
            for message in messages { #expect(try await client.send(message) == message.count) }
            for message in messages {
                #expect(try await client.receive(maxLength: 4096) == message)
            }
            try client.shutdown(.write)
            try await server.value
            try client.close()
            try listener.close()
        }
    }

    func datagramEcho(bindTo address: SocketAddress, clientAddress: SocketAddress) async throws {
        try await withLoop { loop in
            let server = try AsyncSocket.bind(datagram: address, loop: loop)
            let serverAddress = try server.localAddress()
            let echo = Task(executorPreference: loop) {
                for try await datagram in server.datagrams() {
                    guard let sender = datagram.sender else { continue }
                    if datagram.bytes == [0xFF] { return }
                    _ = try await server.send(datagram.bytes, to: sender)
                }
            }
            let client = try AsyncSocket.bind(datagram: clientAddress, loop: loop)
            for index in 0..<50 {
                let payload = testBytes(count: 1 + index * 20, seed: UInt64(index))
                #expect(try await client.send(payload, to: serverAddress) == payload.count)
                let reply = try await client.receiveDatagram(deadline: .now + .seconds(5))
                #expect(reply.bytes == payload)
                #expect(reply.sender == serverAddress)
                #expect(!reply.isTruncated)
            }
            _ = try await client.send([0xFF], to: serverAddress)
            try await echo.value
            try client.close()
            try server.close()
        }
    }

    /// A thousand datagrams each way through `sendmmsg`/`recvmmsg` on the loop: the server
    /// takes what is queued in batches and sends each batch straight back to its senders.
    @Test(.requiresReceiveBuffer(4 << 20)) func udpBatchEchoOfAThousandDatagrams() async throws {
        try await withLoop { loop in
            let server = try AsyncSocket.bind(datagram: .ipv4(.loopback, port: 0), loop: loop)
            let client = try AsyncSocket.bind(datagram: .ipv4(.loopback, port: 0), loop: loop)
            // Room for all thousand in each receive queue.
            try reserveReceiveBuffer(server.socket, 4 << 20)
            try reserveReceiveBuffer(client.socket, 4 << 20)
            let serverAddress = try server.localAddress()
            let total = 1000
            let outgoing = try DatagramBatch(capacity: total, maximumDatagramSize: 200)
            for index in 0..<total {
                try outgoing.append(testBytes(count: 1 + index % 200, seed: UInt64(index)), to: serverAddress)
            }
            try await client.sendAll(outgoing, deadline: .now + .seconds(10))
            // All thousand are queued before the server looks: it takes them 256 at a time.
            let echo = Task(executorPreference: loop) { () async throws -> Int in
                let batch = try DatagramBatch(capacity: 256, maximumDatagramSize: 200)
                var echoed = 0
                var calls = 0
                while echoed < total {
                    let count = try await server.receiveBatch(into: batch, deadline: .now + .seconds(10))
                    calls += 1
                    try await server.sendAll(batch, deadline: .now + .seconds(10))
                    echoed += count
                }
                return calls
            }
            let incoming = try DatagramBatch(capacity: total, maximumDatagramSize: 200)
            var received: [[UInt8]] = []
            while received.count < total {
                let count = try await client.receiveBatch(into: incoming, deadline: .now + .seconds(10))
                for index in 0..<count {
                    #expect(try incoming.address(at: index) == serverAddress)
                    received.append(try incoming.bytes(at: index))
                }
            }
            #expect(received == (0..<total).map { testBytes(count: 1 + $0 % 200, seed: UInt64($0)) })
            // Batches, not one call per datagram: four full batches (a few more if the kernel
            // was still delivering when the server looked).
            let serverCalls = try await echo.value
            #expect(serverCalls <= 10, "\(serverCalls) recvmmsg calls for \(total) datagrams")
            try client.close()
            try server.close()
        }
    }

    /// Typed control messages on the loop: a descriptor passed over a Unix socket (the receiver
    /// writes through it), and the destination address of a datagram sent to 127.0.0.2.
    @Test func typedControlMessagesAsync() async throws {
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .datagram, loop: loop)
            let (readEnd, writeEnd) = try Socket.pair(.unix, .stream)
            let passed = Task(executorPreference: loop) { () async throws -> ReceivedMessage in
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
                defer { buffer.deallocate() }
                let control = try ControlMessageBuffer(capacity: ControlMessage.space(forDescriptors: 1))
                return try await second.receiveMessage(into: [buffer], controlBuffer: control, deadline: .now + .seconds(5))
            }
            try await untilWaiting(second)
            let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: 2, alignment: 1)
            defer { payload.deallocate() }
            payload.copyBytes(from: "fd".utf8)
            let sent = try await first.sendMessage([UnsafeRawBufferPointer(payload)], controlMessages: [.descriptors([writeEnd.descriptor])])
            #expect(sent == 2)
            try writeEnd.close()
            let message = try await passed.value
            #expect(message.byteCount == 2 && !message.isControlTruncated)
            #expect(message.descriptors.count == 1)
            if let received = message.descriptors.first {
                let socket = try received.makeSocket()
                try socket.sendAll(Array("through the passed descriptor".utf8))
                try socket.close()
            }
            #expect(try readEnd.receive(maxLength: 64) == Array("through the passed descriptor".utf8))
            try readEnd.close()
            try first.close()
            try second.close()

            let server = try AsyncSocket.bind(datagram: .ipv4(.any, port: 0), loop: loop)
            try server.socket.set(.receivePacketInfo, true)
            guard case .ipv4(let bound) = try server.localAddress() else { throw SocketError.invalid("test", nil, "not IPv4") }
            let client = try AsyncSocket.bind(datagram: .ipv4(.loopback, port: 0), loop: loop)
            _ = try await client.send(Array("ping".utf8), to: .ipv4(IPv4Address(127, 0, 0, 2), port: bound.port))
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
            defer { buffer.deallocate() }
            let control = try ControlMessageBuffer()
            let datagram = try await server.receiveMessage(into: [buffer], controlBuffer: control, deadline: .now + .seconds(5))
            #expect(datagram.byteCount == 4)
            let info = datagram.controlMessages.compactMap { message -> IPv4PacketInfo? in
                if case .ipv4PacketInfo(let info) = message { return info }
                return nil
            }
            #expect(info.map(\.destinationAddress) == [IPv4Address(127, 0, 0, 2)])
            try client.close()
            try server.close()
        }
    }

    @Test func udpIPv4Echo() async throws {
        try await datagramEcho(bindTo: .ipv4(.loopback, port: 0), clientAddress: .ipv4(.loopback, port: 0))
    }

    @Test func udpIPv6Echo() async throws {
        try await datagramEcho(bindTo: .ipv6(.loopback, port: 0), clientAddress: .ipv6(.loopback, port: 0))
    }

    @Test func unixDatagramEcho() async throws {
        let serverPath = uniqueSocketPath("dgram-server")
        let clientPath = uniqueSocketPath("dgram-client")
        defer {
            unlink(serverPath)
            unlink(clientPath)
        }
        try await datagramEcho(bindTo: try .unix(path: serverPath), clientAddress: try .unix(path: clientPath))
    }

    @Test func truncatedDatagramSaysSo() async throws {
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .datagram, loop: loop)
            _ = try await first.send(testBytes(count: 100, seed: 1))
            let datagram = try await second.receiveDatagram(maxLength: 10)
            #expect(datagram.bytes == Array(testBytes(count: 100, seed: 1).prefix(10)))
            #expect(datagram.isTruncated)
            try first.close()
            try second.close()
        }
    }

    @Test func datagramsBurstKeepsEveryMessage() async throws {
        // Many datagrams queued before the reader looks: a short read on a datagram socket
        // must not be taken as "drained", or the rest would wait for ever.
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .datagram, loop: loop)
            for index in 0..<100 { _ = try await first.send([UInt8(index)]) }
            var seen: [UInt8] = []
            for _ in 0..<100 {
                seen.append(contentsOf: try await second.receive(maxLength: 64, deadline: .now + .seconds(5)))
            }
            #expect(seen == (0..<100).map { UInt8($0) })
            try first.close()
            try second.close()
        }
    }

    @Test(.requires(.rawSockets)) func rawICMPEchoOverLoopback() async throws {
        try await withLoop { loop in
            let raw = try AsyncSocket(.inet, .raw, .icmp, loop: loop)
            defer { try? raw.close() }
            // An ICMP echo request: type 8, code 0, checksum, identifier, sequence, payload.
            var packet: [UInt8] = [8, 0, 0, 0, 0x12, 0x34, 0, 1] + Array("sockets-async".utf8)
            var sum: UInt32 = 0
            for index in stride(from: 0, to: packet.count, by: 2) {
                sum += UInt32(packet[index]) << 8 | UInt32(index + 1 < packet.count ? packet[index + 1] : 0)
            }
            while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
            let checksum = ~UInt16(sum)
            packet[2] = UInt8(checksum >> 8)
            packet[3] = UInt8(checksum & 0xFF)
            _ = try await raw.send(packet, to: .ipv4(.loopback, port: 0))
            // The raw socket sees our request and the kernel's reply (type 0), IP header first.
            var gotReply = false
            for _ in 0..<4 where !gotReply {
                let datagram = try await raw.receiveDatagram(deadline: .now + .seconds(5))
                let headerLength = Int(datagram.bytes[0] & 0x0F) * 4
                let icmp = datagram.bytes.dropFirst(headerLength)
                if icmp.first == 0 {
                    gotReply = true
                    #expect(Array(icmp.dropFirst(8)) == Array("sockets-async".utf8))
                }
            }
            #expect(gotReply)
        }
    }

    @Test func manyConcurrentClientsGetTheirOwnBytesBack() async throws {
        try await withLoop { loop in
            let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop])
            let running = Task { await server.run { connection, _ in try await echoStream(connection) } }
            let address = server.localAddress
            let clientCount = 250
            let failures = try await withThrowingTaskGroup(of: Int.self) { group in
                for client in 0..<clientCount {
                    group.addTask(executorPreference: loop) {
                        let connection = try await AsyncSocket.connect(to: address, loop: loop)
                        defer { try? connection.close() }
                        var failures = 0
                        for round in 0..<3 {
                            let payload = testBytes(count: 1 + (client * 997 + round * 7919) % 40_000, seed: UInt64(client * 10 + round))
                            if try await roundTrip(connection, payload) != payload { failures += 1 }
                        }
                        return failures
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(failures == 0)
            server.shutdown(gracePeriod: .seconds(5))
            await running.value
            #expect(server.connectionCount == 0)
        }
    }

    @Test func independentPeerTalksToAsyncServer() async throws {
        // socat as the client: a peer that shares no code with this library.
        try await withLoop { loop in
            let listener = try AsyncSocket.listen(on: .ipv4(.loopback, port: 0), loop: loop)
            let port = try listener.localAddress().port ?? 0
            let server = Task(executorPreference: loop) {
                let (connection, _) = try await listener.accept(deadline: .now + .seconds(10))
                defer { try? connection.close() }
                let line = try await connection.receive(exactly: 6, deadline: .now + .seconds(10))
                try await connection.sendAll(Array(line.reversed()))
                try connection.shutdown(.write)
            }
            let output = try runCommand(["/bin/sh", "-c", "printf 'abcdef' | socat -t 5 - TCP:127.0.0.1:\(port)"])
            try await server.value
            #expect(output == "fedcba")
            try listener.close()
        }
    }

    /// Data and the peer's FIN arriving together while a receive waits: the receive is short
    /// (it takes the data), and the next one must still see end-of-file, though no new event
    /// will come for it.
    @Test(arguments: [SocketDomain.inet, .unix])
    func endOfFileQueuedBehindDataIsSeen(domain: SocketDomain) async throws {
        try await withLoop { loop in
            for round in 0..<20 {
                let (peer, local) = try domain == .unix ? Socket.pair(.unix, .stream) : tcpPair()
                defer { try? peer.close() }
                let connection = try AsyncSocket(local, loop: loop)
                defer { try? connection.close() }
                // No deadline (one would try the receive again when it passes, and so hide a
                // lost wake-up): a watchdog cancels the reader instead, which fails it.
                let reader = Task(executorPreference: loop) {
                    let first = try await connection.receive(maxLength: 4096)
                    let second = try await connection.receive(maxLength: 4096)
                    return (first, second)
                }
                let watchdog = Task {
                    try await Task.sleep(for: .seconds(5))
                    reader.cancel()
                }
                defer { watchdog.cancel() }
                // Send only once the reader waits, so that the bytes and the FIN come in one go.
                while connection.waitingOperationCount == 0 { await Task.yield() }
                try peer.sendAll(Array("round \(round)".utf8))
                try peer.shutdown(.write)
                let (first, second) = try await reader.value
                #expect(first == Array("round \(round)".utf8))
                #expect(second.isEmpty)
            }
        }
    }
}

/// A connected TCP pair over IPv4 loopback (blocking sockets).
private func tcpPair() throws -> (Socket, Socket) {
    let listener = try Socket(.inet, .stream)
    defer { try? listener.close() }
    try listener.bind(to: .ipv4(.loopback, port: 0))
    try listener.listen()
    let client = try Socket(.inet, .stream)
    do {
        try client.connect(to: try listener.localAddress())
        return (client, try listener.accept().0)
    } catch {
        try? client.close()
        throw error
    }
}
