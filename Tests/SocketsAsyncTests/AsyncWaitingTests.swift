import Glibc
import Sockets
import SocketsAsync
import Testing

/// Waiting operations: cancellation, deadlines, close, resets.
@Suite(.noDescriptorLeaks(usesAsyncRuntime: true))
struct AsyncWaitingTests {
    @Test func cancelledReceiveReturnsPromptlyAndTheSocketStaysUsable() async throws {
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .stream, loop: loop)
            let waiting = Task(executorPreference: loop) { () async throws -> [UInt8] in
                try await first.receive(maxLength: 16)
            }
            // It waits: nothing was sent.
            try await untilWaiting(first)
            let start = ContinuousClock.now
            waiting.cancel()
            let result = await waiting.result
            let elapsed = milliseconds(since: start)
            guard let error = failure(result) else {
                Issue.record("a cancelled receive returned \(result)")
                return
            }
            #expect(error.isCancellation, "\(error)")
            #expect(error.operation == "recv")
            #expect(elapsed < 2000)
            // The socket still works.
            _ = try await second.send([1, 2, 3])
            #expect(try await first.receive(maxLength: 16, deadline: .now + .seconds(5)) == [1, 2, 3])
            try first.close()
            try second.close()
        }
    }

    @Test func alreadyCancelledTaskDoesNotWait() async throws {
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .stream, loop: loop)
            let task = Task(executorPreference: loop) { () async throws -> Int in
                withUnsafeCurrentTask { $0?.cancel() }
                return try await first.receive(maxLength: 4).count
            }
            guard let error = failure(await task.result) else {
                Issue.record("expected a cancellation error")
                return
            }
            #expect(error.isCancellation)
            try first.close()
            try second.close()
        }
    }

    @Test func receiveDeadlineTimesOutAndTheSocketStaysUsable() async throws {
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .stream, loop: loop)
            let start = ContinuousClock.now
            do throws(SocketError) {
                _ = try await first.receive(maxLength: 8, deadline: .now + .milliseconds(100))
                Issue.record("receive returned with nothing sent")
            } catch {
                #expect(error.reason == .timedOut)
                #expect(error.description == "recv: timed out (ETIMEDOUT)")
            }
            let elapsed = milliseconds(since: start)
            #expect(elapsed >= 95)
            #expect(elapsed < 3000)
            _ = try await second.send([7])
            #expect(try await first.receive(maxLength: 8, deadline: .now + .seconds(5)) == [7])
            try first.close()
            try second.close()
        }
    }

    @Test func deadlineInThePastFailsWithoutWaiting() async throws {
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .stream, loop: loop)
            await #expect(throws: SocketError("recv", reason: .timedOut)) {
                _ = try await first.receive(maxLength: 8, deadline: .now - .seconds(1))
            }
            // Data that is there is returned even past the deadline: deadlines limit waiting.
            _ = try await second.send([9])
            #expect(try await first.receive(maxLength: 8, deadline: .now - .seconds(1)) == [9])
            try first.close()
            try second.close()
        }
    }

    @Test func socketReadDeadlineAppliesToAWaitingReceive() async throws {
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .stream, loop: loop)
            let waiting = Task(executorPreference: loop) { () async throws -> [UInt8] in
                try await first.receive(maxLength: 8)
            }
            try await untilWaiting(first)
            // Set while the receive waits: it ends at the new deadline (Go's SetReadDeadline).
            first.setReadDeadline(.now + .milliseconds(50))
            guard let error = failure(await waiting.result) else {
                Issue.record("expected a timeout")
                return
            }
            #expect(error.reason == .timedOut)
            // Every later read fails too, until the deadline is cleared.
            await #expect(throws: SocketError("recv", reason: .timedOut)) {
                _ = try await first.receive(maxLength: 8)
            }
            first.setReadDeadline(nil)
            #expect(first.readDeadline == nil)
            _ = try await second.send([4, 2])
            #expect(try await first.receive(maxLength: 8) == [4, 2])
            // A deadline already past, set while waiting, ends the wait at once.
            let again = Task(executorPreference: loop) { () async throws -> [UInt8] in
                try await first.receive(maxLength: 8)
            }
            try await untilWaiting(first)
            first.setReadDeadline(.now - .seconds(1))
            guard let pastError = failure(await again.result) else {
                Issue.record("expected a timeout")
                return
            }
            #expect(pastError.reason == .timedOut)
            first.setReadDeadline(nil)
            try first.close()
            try second.close()
        }
    }

    @Test func writeDeadlineStopsASendAllToAPeerThatDoesNotRead() async throws {
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .stream, loop: loop)
            try setSendBuffer(first.socket, 4096)
            first.setWriteDeadline(.now + .milliseconds(150))
            let payload = [UInt8](repeating: 0x5A, count: 4 << 20)
            do throws(SocketError) {
                try await first.sendAll(payload)
                Issue.record("sendAll of 4 MiB finished with nobody reading")
            } catch {
                #expect(error.reason == .timedOut)
                #expect(error.operation == "send")
            }
            // The reader drains what was sent; the writer can send again after clearing it.
            first.setWriteDeadline(nil)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 1)
            defer { buffer.deallocate() }
            var drained = 0
            while let count = try second.socket.tryReceive(into: buffer) { drained += count }
            #expect(drained > 0)
            #expect(try await first.send([1]) == 1)
            try first.close()
            try second.close()
        }
    }

    @Test func closeWakesEveryWaiter() async throws {
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .stream, loop: loop)
            try setSendBuffer(first.socket, 4096)
            // One task waits to read, another to write (the buffer is full).
            let reader = Task(executorPreference: loop) { () async throws -> [UInt8] in
                try await first.receive(maxLength: 8)
            }
            let writer = Task(executorPreference: loop) { () async throws in
                try await first.sendAll([UInt8](repeating: 1, count: 8 << 20))
            }
            try await untilWaiting(first, 2)
            let start = ContinuousClock.now
            try first.close()
            guard let readError = failure(await reader.result), let writeError = failure(await writer.result) else {
                Issue.record("waiters were not woken with an error")
                return
            }
            #expect(milliseconds(since: start) < 2000)
            #expect(readError.reason == .closed)
            #expect(writeError.reason == .closed)
            #expect(first.isClosed)
            // Closing again does nothing; using it fails clearly.
            try first.close()
            await #expect(throws: SocketError("recv", reason: .closed)) { _ = try await first.receive(maxLength: 1) }
            try second.close()
        }
    }

    @Test func peerResetIsReported() async throws {
        try await withLoop { loop in
            let listener = try AsyncSocket.listen(on: .ipv4(.loopback, port: 0), loop: loop)
            let client = try await AsyncSocket.connect(to: try listener.localAddress(), loop: loop)
            let (server, _) = try await listener.accept()
            let waiting = Task(executorPreference: loop) { () async throws -> [UInt8] in
                try await client.receive(maxLength: 8)
            }
            try await untilWaiting(client)
            try setZeroLinger(server.socket)
            try server.close()
            guard let error = failure(await waiting.result) else {
                Issue.record("a reset connection read without error")
                return
            }
            #expect(error.errno == .connectionReset, "\(error)")
            try client.close()
            try listener.close()
        }
    }

    @Test func peerCloseGivesEndOfFileToAWaitingReader() async throws {
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .stream, loop: loop)
            let waiting = Task(executorPreference: loop) { () async throws -> [UInt8] in
                try await first.receive(maxLength: 8)
            }
            try await untilWaiting(first)
            try second.close()
            #expect(try await waiting.value.isEmpty)
            // End-of-file stays readable.
            #expect(try await first.receive(maxLength: 8, deadline: .now + .seconds(5)).isEmpty)
            try first.close()
        }
    }

    @Test func readinessPrimitiveDrivesAnyCall() async throws {
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .datagram, loop: loop)
            // io() with a call that has no async version of its own: recvmsg with MSG_PEEK.
            let task = Task(executorPreference: loop) { () async throws -> [UInt8] in
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
                defer { buffer.deallocate() }
                let message = try await first.io(.readable, deadline: .now + .seconds(5)) { () throws(SocketError) in
                    try first.socket.tryReceiveMessage(into: [buffer], flags: .peek)
                }
                return Array(UnsafeRawBufferPointer(rebasing: buffer[..<message.byteCount]))
            }
            try await untilWaiting(first)
            _ = try await second.send([5, 6, 7])
            #expect(try await task.value == [5, 6, 7])
            // readable() and clear(): the datagram is still there (peeked).
            let readiness = try await first.readable(deadline: .now + .seconds(5))
            _ = try first.socket.receive(maxLength: 8)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 1)
            defer { buffer.deallocate() }
            #expect(try first.socket.tryReceive(into: buffer) == nil)
            readiness.clear()
            await #expect(throws: SocketError("wait readable", reason: .timedOut)) {
                _ = try await first.readable(deadline: .now + .milliseconds(30))
            }
            _ = try await first.writable(deadline: .now + .seconds(5))
            try first.close()
            try second.close()
        }
    }

    @Test func manyWaitersOnOneSocketAllGetData() async throws {
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .datagram, loop: loop)
            let readers = (0..<8).map { _ in
                Task(executorPreference: loop) { () async throws -> [UInt8] in
                    try await first.receive(maxLength: 8, deadline: .now + .seconds(10))
                }
            }
            try await untilWaiting(first, 8)
            for index in 0..<8 { _ = try await second.send([UInt8(index)]) }
            var seen: [UInt8] = []
            for reader in readers { seen += try await reader.value }
            #expect(seen.sorted() == (0..<8).map { UInt8($0) })
            try first.close()
            try second.close()
        }
    }

    @Test func loopShutdownWakesWaiters() async throws {
        let loop = try EventLoop(name: "stopping")
        let (first, second) = try AsyncSocket.pair(.unix, .stream, loop: loop)
        let waiting = Task { () async throws -> [UInt8] in
            try await first.receive(maxLength: 8)
        }
        try await untilWaiting(first)
        loop.shutdown()
        #expect(!loop.isRunning)
        guard let error = failure(await waiting.result) else {
            Issue.record("a wait survived the loop's shutdown")
            return
        }
        #expect(error.reason == .closed)
        #expect(error.operation.contains("shut down"))
        // Registering with a stopped loop fails clearly.
        #expect(throws: SocketError.self) { _ = try AsyncSocket(.unix, .stream, loop: loop) }
        try first.close()
        try second.close()
    }
}

@Suite(.noDescriptorLeaks(usesAsyncRuntime: true))
struct AsyncMessageTests {
    @Test func sendMessageAndReceiveMessageGatherAndScatter() async throws {
        try await withLoop { loop in
            let (first, second) = try AsyncSocket.pair(.unix, .datagram, loop: loop)
            let head: [UInt8] = [1, 2, 3]
            let tail: [UInt8] = [4, 5]
            let receiving = Task(executorPreference: loop) { () async throws -> [UInt8] in
                let one = UnsafeMutableRawBufferPointer.allocate(byteCount: 2, alignment: 1)
                let two = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 1)
                defer {
                    one.deallocate()
                    two.deallocate()
                }
                let message = try await second.receiveMessage(into: [one, two], deadline: .now + .seconds(5))
                #expect(message.byteCount == 5)
                #expect(!message.flags.contains(.truncated))
                return Array(one) + Array(UnsafeRawBufferPointer(rebasing: two[..<3]))
            }
            try await untilWaiting(second)
            // Buffers that outlive the awaits (withUnsafeBytes cannot span one).
            let headBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: head.count, alignment: 1)
            let tailBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: tail.count, alignment: 1)
            defer {
                headBytes.deallocate()
                tailBytes.deallocate()
            }
            headBytes.copyBytes(from: head)
            tailBytes.copyBytes(from: tail)
            let sent = try await first.sendMessage([UnsafeRawBufferPointer(headBytes), UnsafeRawBufferPointer(tailBytes)])
            #expect(sent == 5)
            #expect(try await receiving.value == [1, 2, 3, 4, 5])
            try first.close()
            try second.close()
        }
    }
}
