import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Testing

@Suite(.noDescriptorLeaks())
struct StreamTests {
    /// Receives until `count` bytes have arrived (bounded by the sockets' receive timeout).
    func receive(_ socket: Socket, count: Int) throws -> [UInt8] {
        var received: [UInt8] = []
        while received.count < count {
            let chunk = try socket.receive(maxLength: count - received.count)
            if chunk.isEmpty { break }
            received += chunk
        }
        return received
    }

    @Test func peekLeavesDataQueued() throws {
        let (client, server) = try CoreTest.tcpPair()
        try client.sendAll("hello")
        #expect(CoreTest.eventually { (try? CoreTest.poll(server, Int16(POLLIN), milliseconds: 0)) != 0 })
        #expect(try server.receive(maxLength: 16, flags: .peek) == Array("hello".utf8))
        #expect(try server.receive(maxLength: 2, flags: .peek) == Array("he".utf8))
        #expect(try receive(server, count: 5) == Array("hello".utf8))
        let empty = #expect(throws: SocketError.self) { try server.receive(maxLength: 1, flags: .dontWait) }
        #expect(empty?.isWouldBlock == true)
    }

    @Test func waitAllWaitsForTheWholeBuffer() throws {
        let (client, server) = try CoreTest.tcpPair()
        let writer = BackgroundThread { () throws -> Void in
            for part in [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10]] as [[UInt8]] {
                try client.sendAll(part)
                CoreTest.sleep(milliseconds: 20)
            }
        }
        // Without MSG_WAITALL the first recv would return after the first 3 bytes.
        #expect(try server.receive(maxLength: 10, flags: .waitAll) == Array(1...10))
        try writer.join()
    }

    @Test func dontWaitOnABlockingSocket() throws {
        let (client, server) = try CoreTest.tcpPair()
        #expect(try server.isNonBlocking() == false)
        var buffer = [UInt8](repeating: 0, count: 8)
        let nothing = try buffer.withUnsafeMutableBytes { try server.tryReceive(into: $0, flags: .dontWait) }
        #expect(nothing == nil)
        try client.sendAll([42])
        #expect(try server.receive(maxLength: 8) == [42])
    }

    @Test func urgentByteArrivesOutOfBand() throws {
        let (client, server) = try CoreTest.tcpPair()
        try client.sendAll(Array("ab".utf8))
        #expect(try client.send([UInt8(ascii: "!")], flags: .outOfBand) == 1)
        try client.sendAll(Array("cd".utf8))
        #expect(try CoreTest.poll(server, Int16(POLLPRI)) & Int16(POLLPRI) != 0, "urgent data is signalled")
        #expect(try server.receive(maxLength: 1, flags: .outOfBand) == [UInt8(ascii: "!")])
        // The urgent byte is not part of the normal stream (SO_OOBINLINE is off).
        #expect(try receive(server, count: 4) == Array("abcd".utf8))
        let again = #expect(throws: SocketError.self) { try server.receive(maxLength: 1, flags: .outOfBand) }
        #expect(again?.errno == .invalidArgument, "no urgent byte is pending any more")
    }

    @Test func readAndWrite() throws {
        let (client, server) = try CoreTest.tcpPair()
        #expect(try client.write(Array("write".utf8)) == 5)
        #expect(try server.read(maxLength: 5) == Array("write".utf8))
        var buffer = [UInt8](repeating: 0, count: 3)
        #expect(try server.write([9, 8, 7]) == 3)
        #expect(try buffer.withUnsafeMutableBytes { try client.read(into: $0) } == 3)
        #expect(buffer == [9, 8, 7])
        try server.close()
        #expect(try client.read(maxLength: 10) == [], "read gives 0 at end-of-file")
        #expect(throws: SocketError.self) { try client.read(maxLength: -1) }
    }

    @Test func vectoredSendAndReceive() throws {
        let (client, server) = try CoreTest.tcpPair()
        let parts: [[UInt8]] = [Array("one-".utf8), Array("two-".utf8), [], Array("three".utf8)]
        let sent = try parts[0].withUnsafeBytes { a in
            try parts[1].withUnsafeBytes { b in
                try parts[2].withUnsafeBytes { c in
                    try parts[3].withUnsafeBytes { d in try client.sendMessage([a, b, c, d]) }
                }
            }
        }
        #expect(sent == 13)
        // Scatter into 3 + 6 + 100 bytes.
        var first = [UInt8](repeating: 0, count: 3)
        var second = [UInt8](repeating: 0, count: 6)
        var third = [UInt8](repeating: 0, count: 100)
        #expect(try CoreTest.poll(server, Int16(POLLIN)) != 0)
        let message = try first.withUnsafeMutableBytes { a in
            try second.withUnsafeMutableBytes { b in
                try third.withUnsafeMutableBytes { c in try server.receiveMessage(into: [a, b, c]) }
            }
        }
        #expect(message.byteCount == 13)
        #expect(message.sender == nil, "a connected stream reports no sender")
        #expect(message.flags.isEmpty, "\(message.flags)")
        #expect(first == Array("one".utf8))
        #expect(second == Array("-two-t".utf8))
        #expect(Array(third[..<4]) == Array("hree".utf8))
        #expect(third[4...].allSatisfy { $0 == 0 })

        let tooMany = [UnsafeRawBufferPointer](repeating: UnsafeRawBufferPointer(start: nil, count: 0), count: 1025)
        let error = #expect(throws: SocketError.self) { try client.sendMessage(tooMany) }
        #expect(error?.description.contains("IOV_MAX") == true)
    }

    @Test(arguments: [false, true])
    func sendAllOfSeveralMebibytesWhileAnotherThreadReads(nonBlockingSender: Bool) throws {
        let (client, server) = try CoreTest.tcpPair()
        let payload = CoreTest.pattern(8 << 20, seed: nonBlockingSender ? 7 : 3)
        if nonBlockingSender { try client.setNonBlocking(true) }
        let reader = BackgroundThread { () throws -> [UInt8] in try server.receive(exactly: payload.count + 1) }
        try client.sendAll(payload)
        try client.shutdown(.write)
        let received = try reader.join(milliseconds: 20_000)
        #expect(received.count == payload.count)
        #expect(CoreTest.same(received, payload), "byte-exact")
    }

    @Test func receiveExactlyStopsAtEndOfFileAndWaitsWhenNonBlocking() throws {
        let (client, server) = try CoreTest.tcpPair()
        try server.setNonBlocking(true)
        let writer = BackgroundThread { () throws -> Void in
            for index in 0..<5 {
                try client.sendAll([UInt8](repeating: UInt8(index), count: 1000))
                CoreTest.sleep(milliseconds: 5)
            }
            try client.close()
        }
        let received = try server.receive(exactly: 10_000)
        #expect(received.count == 5000, "fewer bytes only because the peer closed")
        #expect(received == (0..<5).flatMap { [UInt8](repeating: UInt8($0), count: 1000) })
        try writer.join()
    }

    @Test func timeoutsOfBlockingSocketsEndSendAllAndReceiveAll() throws {
        let (client, server) = try CoreTest.tcpPair()
        try CoreTest.setTimeouts(client, milliseconds: 100)
        try CoreTest.setTimeouts(server, milliseconds: 100)
        let receiveError = #expect(throws: SocketError.self) { try server.receive(exactly: 10) }
        #expect(receiveError?.isWouldBlock == true)
        // Nobody reads: the send buffers fill, then SO_SNDTIMEO must end sendAll.
        let sender = BackgroundThread { () throws -> String in
            do {
                try client.sendAll([UInt8](repeating: 1, count: 64 << 20))
                return "sent everything"
            } catch let error as SocketError {
                return error.isWouldBlock ? "timed out" : "\(error)"
            }
        }
        let outcome = try? sender.join(milliseconds: 10_000)
        if outcome == nil { try server.close() }  // unblock a hung sender before failing
        #expect(outcome == "timed out")
    }

    @Test func peerCloseIsEndOfFile() throws {
        let (client, server) = try CoreTest.tcpPair()
        try client.sendAll([1, 2])
        try client.close()
        #expect(try receive(server, count: 2) == [1, 2])
        #expect(try server.receive(maxLength: 10) == [])
        #expect(try server.receive(maxLength: 10) == [], "end-of-file stays")
        var buffer = [UInt8](repeating: 0, count: 4)
        let message = try buffer.withUnsafeMutableBytes { try server.receiveMessage(into: [$0]) }
        #expect(message.byteCount == 0)
    }

    @Test func resetIsConnectionReset() throws {
        let (client, server) = try CoreTest.tcpPair()
        try CoreTest.setZeroLinger(client)
        try client.close()
        let error = #expect(throws: SocketError.self) { try server.receive(maxLength: 10) }
        #expect(error?.errno == .connectionReset)
        #expect(error?.description == "recv: Connection reset by peer (ECONNRESET)")
        #expect(try server.receive(maxLength: 10) == [], "after the reset is reported, end-of-file")
    }

    @Test func halfClose() throws {
        let (client, server) = try CoreTest.tcpPair()
        try client.sendAll("request")
        try client.shutdown(.write)
        #expect(try receive(server, count: 100) == Array("request".utf8), "then end-of-file")
        #expect(try server.receive(maxLength: 10) == [])
        try server.sendAll("response")
        try server.close()
        #expect(try receive(client, count: 100) == Array("response".utf8))
        let error = #expect(throws: SocketError.self) { try client.send([1]) }
        #expect(error?.errno == .brokenPipe)
    }

    /// Every send path on a socket that can no longer send: each must fail with EPIPE and
    /// not raise SIGPIPE, which would kill this test process.
    func expectBrokenPipeOnEverySendPath(_ socket: Socket, to address: SocketAddress?) {
        let byte: [UInt8] = [1]
        var errors: [SocketError?] = []
        errors.append(#expect(throws: SocketError.self) { try socket.send(byte) })
        errors.append(#expect(throws: SocketError.self) { try socket.write(byte) })
        errors.append(#expect(throws: SocketError.self) { try socket.sendAll(byte) })
        errors.append(#expect(throws: SocketError.self) {
            try byte.withUnsafeBytes { try socket.sendMessage([$0]) }
        })
        if let address {
            errors.append(#expect(throws: SocketError.self) { try socket.send(byte, to: address) })
        }
        for error in errors {
            #expect(error?.errno == .brokenPipe, "\(String(describing: error))")
        }
    }

    @Test func writingAfterShutdownIsBrokenPipeNotSIGPIPE() throws {
        let (client, server) = try CoreTest.tcpPair()
        try client.shutdown(.write)
        expectBrokenPipeOnEverySendPath(client, to: try client.peerAddress())
        #expect(try server.receive(maxLength: 1) == [])
    }

    @Test func writingToAClosedPeerIsBrokenPipeNotSIGPIPE() throws {
        let (client, server) = try CoreTest.tcpPair()
        try server.close()
        #expect(try client.receive(maxLength: 1) == [], "the peer's FIN arrived")
        // The first send is answered by a reset; after that, every send is EPIPE.
        var firstError: SocketError?
        for _ in 0..<100 {
            do {
                _ = try client.send([1])
            } catch {
                firstError = error
                break
            }
            CoreTest.sleep(milliseconds: 1)
        }
        #expect(firstError?.errno == .brokenPipe)
        expectBrokenPipeOnEverySendPath(client, to: nil)

        let (left, right) = try Socket.pair(.unix, .stream)
        try right.close()
        expectBrokenPipeOnEverySendPath(left, to: nil)
    }
}
