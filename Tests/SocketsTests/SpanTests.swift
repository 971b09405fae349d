import Glibc
import Sockets
import Testing

/// The safe forms: spans to send, arrays and output spans to receive into, over real sockets.
@Suite(.noDescriptorLeaks())
struct SpanTests {
    @Test func spansGoOutAndArraysFillInTheirOwnCapacity() throws {
        let (client, server) = try CoreTest.tcpPair()
        let payload = CoreTest.pattern(100_000, seed: 3)
        let writer = BackgroundThread { () throws -> Void in
            // A slice lends its bytes too: the second half, without a copy.
            let firstHalf = payload[..<50_000]
            let secondHalf = payload[50_000...]
            try client.sendAll(firstHalf.span.bytes)
            try client.sendAll(secondHalf.span.bytes)
            try client.shutdown(.write)
        }
        var received: [UInt8] = []
        // Room for the last receive's full 8 KiB too: appending asks for maxLength of capacity.
        received.reserveCapacity(payload.count + 8192)
        let storage = received.withUnsafeBufferPointer { $0.baseAddress }
        while try server.receive(appendingTo: &received, maxLength: 8192) > 0 {}
        try writer.join()
        #expect(CoreTest.same(received, payload))
        #expect(received.withUnsafeBufferPointer { $0.baseAddress } == storage, "the reserved capacity was used: no reallocation")
        try client.close()
        try server.close()
    }

    @Test func receiveIntoAnOutputSpanAppendsAfterWhatItHolds() throws {
        let (left, right) = try Socket.pair(.unix, .datagram)
        #expect(try left.send(Array("abc".utf8).span.bytes) == 3)
        #expect(try left.send(Array("defgh".utf8).span.bytes) == 5)
        var bytes = Array("0".utf8)
        var counts: [Int] = []
        try bytes.append(addingCapacity: 2) { output in counts.append(try right.receive(into: &output)) }
        try bytes.append(addingCapacity: 16) { output in counts.append(try right.receive(into: &output)) }
        #expect(counts == [2, 5], "a datagram is cut to the free capacity")
        #expect(bytes == Array("0abdefgh".utf8))
        // Nothing waiting: nil, and the array is as it was.
        try right.setNonBlocking(true)
        #expect(try right.tryReceive(appendingTo: &bytes, maxLength: 10) == nil)
        #expect(bytes == Array("0abdefgh".utf8))
        #expect(throws: SocketError.self) { try right.receive(appendingTo: &bytes, maxLength: 4, flags: .truncated) }
        try left.close()
        try right.close()
    }

    @Test func datagramSpansGoToTheirAddress() throws {
        let receiver = try Socket(.inet, .datagram)
        try receiver.bind(to: .ipv4(.loopback, port: 0))
        try receiver.set(.receiveTimeout, .seconds(5))
        let sender = try Socket(.inet, .datagram)
        #expect(try sender.send(Array("to you".utf8).span.bytes, to: try receiver.localAddress()) == 6)
        #expect(try receiver.receiveDatagram(maxLength: 100).bytes == Array("to you".utf8))
        try receiver.close()
        try sender.close()
    }
}
