import Glibc
import Sockets
import SocketsAsync
import Testing

/// Every operation that both layers offer, called through each with the same names and
/// arguments: a new name in one layer that the other lacks stops this file from compiling,
/// and the two must give the same results on real sockets.
@Suite(.noDescriptorLeaks(usesAsyncRuntime: true))
struct SyncAsyncPairsTests {
    let hello = Array("hello".utf8)

    @Test func streamOperationsHaveTheSameShapeInBothLayers() async throws {
        try await withLoop { loop in
            let (syncSide, asyncPeer) = try Socket.pair(.unix, .stream)
            try syncSide.set(.receiveTimeout, .seconds(5))
            let asyncSide = try AsyncSocket(asyncPeer, loop: loop)
            let deadline = ContinuousClock.now + .seconds(5)
            defer {
                try? syncSide.close()
                try? asyncSide.close()
            }
            try await Task(executorPreference: loop) {
                // send / receive(maxLength:)
                #expect(try syncSide.send(hello) == 5)
                #expect(try await asyncSide.receive(maxLength: 5, deadline: deadline) == hello)
                #expect(try await asyncSide.send(hello, deadline: deadline) == 5)
                #expect(try syncSide.receive(maxLength: 5) == hello)
                // sendAll / receive(exactly:), arrays and buffers
                try syncSide.sendAll(hello)
                #expect(try await asyncSide.receive(exactly: 5, deadline: deadline) == hello)
                try await asyncSide.sendAll(hello, deadline: deadline)
                #expect(try syncSide.receive(exactly: 5) == hello)
                try syncSide.sendAll("text")
                try await asyncSide.sendAll("text", deadline: deadline)
                // (async code cannot run inside withUnsafeMutableBytes: a buffer of its own)
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 1)
                defer { buffer.deallocate() }
                let four = UnsafeMutableRawBufferPointer(rebasing: buffer[..<4])
                #expect(try await asyncSide.receive(exactly: four, deadline: deadline) == 4)
                #expect(try syncSide.receive(exactly: four) == 4)
                // receive(into:) / send(buffer) / write / read
                _ = try hello.withUnsafeBytes { try syncSide.write($0) }
                #expect(try await asyncSide.read(maxLength: 5, deadline: deadline) == hello)
                _ = try await asyncSide.write(hello, deadline: deadline)
                #expect(try syncSide.read(maxLength: 5) == hello)
                _ = try syncSide.write(hello)
                let five = UnsafeMutableRawBufferPointer(rebasing: buffer[..<5])
                #expect(try await asyncSide.receive(into: five, deadline: deadline) == 5)
                _ = try await asyncSide.send(UnsafeRawBufferPointer(five), deadline: deadline)
                #expect(try syncSide.receive(into: five) == 5)
                // the safe forms: spans out, arrays and output spans in
                #expect(try syncSide.send(hello.span.bytes) == 5)
                var appended: [UInt8] = []
                #expect(try await asyncSide.receive(appendingTo: &appended, maxLength: 5, deadline: deadline) == 5)
                #expect(try await asyncSide.send(hello.span.bytes, deadline: deadline) == 5)
                #expect(try syncSide.receive(appendingTo: &appended, maxLength: 5) == 5)
                try syncSide.sendAll(hello.span.bytes)
                try await asyncSide.sendAll(hello.span.bytes, deadline: deadline)
                #expect(try syncSide.receive(appendingTo: &appended, maxLength: 5) == 5)
                #expect(try await asyncSide.receive(appendingTo: &appended, maxLength: 5, deadline: deadline) == 5)
                #expect(appended == hello + hello + hello + hello)
                // sendMessage / receiveMessage(maxLength:), with control messages
                _ = try syncSide.sendMessage(hello, controlMessages: [.credentials(.current)])
                let control = try ControlMessageBuffer()
                try asyncSide.socket.set(.passCredentials, true)
                try syncSide.set(.passCredentials, true)
                let (asyncBytes, asyncMessage) = try await asyncSide.receiveMessage(maxLength: 5, controlBuffer: control, deadline: deadline)
                #expect(asyncBytes == hello)
                _ = try await asyncSide.sendMessage(hello, controlMessages: [.credentials(.current)], deadline: deadline)
                let (syncBytes, syncMessage) = try syncSide.receiveMessage(maxLength: 5, controlBuffer: control)
                #expect(syncBytes == hello)
                #expect(asyncMessage.controlMessages == syncMessage.controlMessages)
                // sendDescriptors / receiveDescriptors
                let (passed, partner) = try Socket.pair()
                try syncSide.sendDescriptors([passed.descriptor], bytes: [9])
                let viaAsync = try await asyncSide.receiveDescriptors(maxCount: 1, deadline: deadline)
                try await asyncSide.sendDescriptors([passed.descriptor], bytes: [8], deadline: deadline)
                let viaSync = try syncSide.receiveDescriptors(maxCount: 1)
                #expect(viaAsync.bytes == [9] && viaSync.bytes == [8])
                #expect(viaAsync.descriptors.count == 1 && viaSync.descriptors.count == 1)
                for descriptor in viaAsync.descriptors + viaSync.descriptors { try descriptor.close() }
                try passed.close()
                try partner.close()
                // addresses, shutdown
                #expect(try syncSide.localAddress() == asyncSide.socket.localAddress())
                #expect(try asyncSide.localAddress() == asyncSide.socket.localAddress())
                #expect(try asyncSide.peerAddress() == asyncSide.socket.peerAddress())
                try syncSide.shutdown(.write)
                try asyncSide.shutdown(.write)
                #expect(try await asyncSide.receive(maxLength: 1, deadline: deadline).isEmpty)
                #expect(try syncSide.receive(maxLength: 1).isEmpty)
            }.value
        }
    }

    @Test func datagramOperationsHaveTheSameShapeInBothLayers() async throws {
        try await withLoop { loop in
            let syncSide = try Socket(.inet, .datagram)
            try syncSide.bind(to: .ipv4(.loopback, port: 0))
            try syncSide.set(.receiveTimeout, .seconds(5))
            let asyncSide = try AsyncSocket.bind(datagram: .ipv4(.loopback, port: 0), loop: loop)
            let syncAddress = try syncSide.localAddress()
            let asyncAddress = try asyncSide.localAddress()
            #expect(try syncSide.localPort() == syncAddress.port && asyncSide.localPort() == asyncAddress.port)
            let deadline = ContinuousClock.now + .seconds(5)
            defer {
                try? syncSide.close()
                try? asyncSide.close()
            }
            try await Task(executorPreference: loop) {
                // send(_:to:) / receiveDatagram
                #expect(try syncSide.send(hello, to: asyncAddress) == 5)
                let toAsync = try await asyncSide.receiveDatagram(maxLength: 3, deadline: deadline)
                #expect(try await asyncSide.send(hello, to: syncAddress, deadline: deadline) == 5)
                let toSync = try syncSide.receiveDatagram(maxLength: 3)
                #expect(toAsync == Datagram(bytes: Array(hello[..<3]), sender: syncAddress, isTruncated: true))
                #expect(toSync == Datagram(bytes: Array(hello[..<3]), sender: asyncAddress, isTruncated: true))
                // receiveFrom(into:)
                _ = try syncSide.send(hello, to: asyncAddress)
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 1)
                defer { buffer.deallocate() }
                let asyncFrom = try await asyncSide.receiveFrom(into: buffer, deadline: deadline)
                _ = try await asyncSide.send(hello, to: syncAddress, deadline: deadline)
                let syncFrom = try syncSide.receiveFrom(into: buffer)
                #expect(asyncFrom.byteCount == 5 && syncFrom.byteCount == 5)
                #expect(asyncFrom.sender == syncAddress && syncFrom.sender == asyncAddress)
                // sendAll(batch) / receiveBatch
                let outgoing = try DatagramBatch(capacity: 3, maximumDatagramSize: 16)
                for index in 0..<3 { try outgoing.append([UInt8(index)], to: asyncAddress) }
                try syncSide.sendAll(outgoing)
                let incoming = try DatagramBatch(capacity: 3, maximumDatagramSize: 16)
                var received = 0
                while received < 3 { received += try await asyncSide.receiveBatch(into: incoming, flags: .waitForOne, deadline: deadline) }
                let back = try DatagramBatch(capacity: 3, maximumDatagramSize: 16)
                for index in 0..<3 { try back.append([UInt8(index)], to: syncAddress) }
                try await asyncSide.sendAll(back, deadline: deadline)
                var syncReceived = 0
                while syncReceived < 3 { syncReceived += try syncSide.receiveBatch(into: incoming, flags: .waitForOne) }
                #expect(received == 3 && syncReceived == 3)
                #expect(try await asyncSide.sendBatch(back, from: 2, flags: [], deadline: deadline) == 1)
                #expect(try syncSide.sendBatch(outgoing, from: 2, flags: []) == 1)
            }.value
        }
    }

    @Test func connectTakesATimeoutOrADeadlineInBothLayers() async throws {
        try await withLoop { loop in
            let listener = try Socket(.inet, .stream)
            try listener.bind(to: .ipv4(.loopback, port: 0))
            try listener.listen()
            let address = try listener.localAddress()
            let sync = try Socket(.inet, .stream)
            try sync.connect(to: address, timeout: .seconds(5))
            let syncByDeadline = try Socket(.inet, .stream)
            try syncByDeadline.connect(to: address, deadline: .now + .seconds(5))
            let asyncByTimeout = try AsyncSocket(.inet, .stream, loop: loop)
            try await asyncByTimeout.connect(to: address, timeout: .seconds(5))
            let asyncByDeadline = try AsyncSocket(.inet, .stream, loop: loop)
            try await asyncByDeadline.connect(to: address, deadline: .now + .seconds(5))
            for socket in [sync, syncByDeadline, listener] { try socket.close() }
            try asyncByTimeout.close()
            try asyncByDeadline.close()
        }
    }
}
