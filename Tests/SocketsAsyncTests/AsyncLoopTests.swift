import Glibc
import Sockets
import SocketsAsync
import Synchronization
import Testing

/// The event loop itself: executor, idle cost, groups, servers, running out of descriptors.
@Suite(.noDescriptorLeaks(usesAsyncRuntime: true))
struct AsyncLoopTests {
    @Test func tasksPreferringTheLoopRunOnItsThread() async throws {
        try await withLoop { loop in
            #expect(!loop.inEventLoop)
            let onLoop = await Task(executorPreference: loop) { loop.inEventLoop }.value
            #expect(onLoop)
            let inside = await loop.run { () async -> Bool in
                await Task.yield()
                return loop.inEventLoop
            }
            #expect(inside)
            // An actor can run on the loop too.
            let counter = LoopActor(loop: loop)
            #expect(await counter.incrementOnLoop() == 1)
            #expect(await counter.incrementOnLoop() == 2)
            // Its socket waits resume on the loop, isolated to it: through the loop's serial
            // executor, not as a task that merely prefers the loop.
            let (left, right) = try AsyncSocket.pair(loop: loop)
            defer {
                try? left.close()
                try? right.close()
            }
            #expect(try await counter.roundTripsOnLoop(left, right, count: 20) == 22)
        }
    }

    @Test func jobsFromManyThreadsAllRun() async throws {
        try await withLoop { loop in
            let total = await withTaskGroup(of: Int.self) { group in
                for index in 0..<2000 {
                    group.addTask(executorPreference: loop) {
                        await Task.yield()
                        return loop.inEventLoop ? index : -1_000_000
                    }
                }
                return await group.reduce(0, +)
            }
            #expect(total == (0..<2000).reduce(0, +))
        }
    }

    @Test func idleLoopUsesNoCPU() async throws {
        try await withLoop { loop in
            // A listener waiting to accept and a connection waiting to read, then a second
            // of nothing: the loop thread must sleep in epoll_wait, not spin.
            let listener = try AsyncSocket.listen(on: .ipv4(.loopback, port: 0), loop: loop)
            let (first, second) = try AsyncSocket.pair(.unix, .stream, loop: loop)
            let accepting = Task(executorPreference: loop) { _ = try await listener.accept() }
            let reading = Task(executorPreference: loop) { _ = try await first.receive(maxLength: 8) }
            // A deadline far away arms a timer, which must not wake the loop either.
            let timed = Task(executorPreference: loop) { _ = try await second.receive(maxLength: 8, deadline: .now + .seconds(60)) }
            try await Task.sleep(for: .milliseconds(100))
            let before = try loop.threadCPUTime()
            try await Task.sleep(for: .seconds(1))
            let used = try loop.threadCPUTime() - before
            #expect(used < .milliseconds(20), "the idle loop used \(used) of CPU in 1 s")
            try listener.close()
            try first.close()
            try second.close()
            _ = await (accepting.result, reading.result, timed.result)
        }
    }

    @Test func groupSpreadsAServerOverSeveralLoops() async throws {
        let group = try EventLoopGroup(loopCount: 2, name: "test-group")
        defer { group.shutdown() }
        #expect(group.loops.count == 2)
        #expect(group.next() !== group.next())
        let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: group.loops)
        #expect(server.listeners.count == 2)
        let servedOn = LockedValue<Set<ObjectIdentifier>>([])
        let running = Task {
            await server.run { connection, _ in
                #expect(connection.loop.inEventLoop)
                servedOn.withLock { _ = $0.insert(ObjectIdentifier(connection.loop)) }
                try await echoStream(connection)
            }
        }
        // Many short connections from many ports: SO_REUSEPORT hashes them over both listeners.
        try await withThrowingTaskGroup(of: Void.self) { clients in
            for index in 0..<64 {
                clients.addTask(executorPreference: group.next()) {
                    let connection = try await AsyncSocket.connect(to: server.localAddress, loop: group.loops[index % 2])
                    defer { try? connection.close() }
                    let payload = testBytes(count: 100 + index, seed: UInt64(index))
                    #expect(try await roundTrip(connection, payload) == payload)
                }
            }
            try await clients.waitForAll()
        }
        server.shutdown(gracePeriod: .seconds(2))
        await running.value
        #expect(servedOn.withLock { $0.count } == 2)
    }

    @Test func gracefulShutdownStopsAcceptingAndLetsConnectionsFinish() async throws {
        try await withLoop { loop in
            let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop])
            let address = server.localAddress
            let handlerOutcome = LockedValue<[String]>([])
            let running = Task {
                await server.run { connection, _ in
                    do {
                        try await echoStream(connection)
                        handlerOutcome.withLock { $0.append("finished") }
                    } catch {
                        handlerOutcome.withLock { $0.append((error as? SocketError)?.reason == .timedOut ? "timed out" : "\(error)") }
                    }
                }
            }
            let polite = try await AsyncSocket.connect(to: address, loop: loop)
            let lingering = try await AsyncSocket.connect(to: address, loop: loop)
            #expect(try await roundTrip(polite, [1, 2, 3]) == [1, 2, 3])
            #expect(try await roundTrip(lingering, [4]) == [4])

            server.shutdown(gracePeriod: .milliseconds(300))
            // No new connections.
            await #expect(throws: SocketError.self) {
                let late = try await AsyncSocket.connect(to: address, timeout: .seconds(2), loop: loop)
                try late.close()
            }
            // Current ones still work during the grace period, and may finish.
            #expect(try await roundTrip(polite, [5, 6]) == [5, 6])
            try polite.shutdown(.write)
            #expect(try await polite.receive(maxLength: 4).isEmpty)
            // The one that keeps quiet is cut off when the grace period ends.
            await running.value
            #expect(server.connectionCount == 0)
            #expect(handlerOutcome.withLock { $0.sorted() } == ["finished", "timed out"])
            #expect(try await lingering.receive(maxLength: 4, deadline: .now + .seconds(5)).isEmpty)
            try polite.close()
            try lingering.close()
        }
    }

    @Test func acceptWaitsOutDescriptorExhaustionWithoutSpinning() async throws {
        try await withLoop { loop in
            let listener = try AsyncSocket.listen(on: .ipv4(.loopback, port: 0), loop: loop)
            let address = try listener.localAddress()
            // Clients are made (and their descriptors taken) before the limit drops.
            var clients: [AsyncSocket] = []
            for _ in 0..<6 { clients.append(try AsyncSocket(.inet, .stream, loop: loop)) }
            let (readerEnd, writerEnd) = try AsyncSocket.pair(.unix, .stream, loop: loop)

            var original = rlimit()
            getrlimit(RLIMIT_NOFILE_VALUE, &original)
            // Leave room for exactly two more descriptors.
            let open = openDescriptors()
            var limit = rlim_t(0)
            var free = 0
            while free < 2 {
                if !open.contains(Int32(limit)) { free += 1 }
                limit += 1
            }
            var lowered = original
            lowered.rlim_cur = limit
            #expect(setrlimit(RLIMIT_NOFILE_VALUE, &lowered) == 0)

            var accepted: [AsyncSocket] = []
            let acceptor = Task(executorPreference: loop) { () async throws -> [AsyncSocket] in
                var sockets: [AsyncSocket] = []
                for _ in 0..<6 { sockets.append(try await listener.accept(deadline: .now + .seconds(20)).socket) }
                return sockets
            }
            for client in clients { try await client.connect(to: address, deadline: .now + .seconds(5)) }
            // Two are accepted, then accept4 fails with EMFILE and the listener backs off.
            try await Task.sleep(for: .milliseconds(100))
            let cpuBefore = try loop.threadCPUTime()
            try await Task.sleep(for: .milliseconds(500))
            let cpuUsed = try loop.threadCPUTime() - cpuBefore
            #expect(cpuUsed < .milliseconds(100), "the starved loop used \(cpuUsed) of CPU in 0.5 s")
            // Other sockets are still served meanwhile.
            _ = try await writerEnd.send([42])
            #expect(try await readerEnd.receive(maxLength: 4, deadline: .now + .seconds(5)) == [42])
            #expect(!acceptor.isCancelled)

            // Free descriptors: the listener resumes and accepts the rest.
            #expect(setrlimit(RLIMIT_NOFILE_VALUE, &original) == 0)
            try readerEnd.close()
            accepted = try await acceptor.value
            #expect(accepted.count == 6)
            for (client, server) in zip(clients, accepted) {
                _ = client
                try await server.sendAll([7])
            }
            for client in clients { #expect(try await client.receive(maxLength: 1, deadline: .now + .seconds(5)) == [7]) }
            for socket in clients + accepted { try socket.close() }
            try writerEnd.close()
            try listener.close()
        }
    }

    @Test(.requiresDescriptors(2_100)) func manyConnectionsOnOneLoop() async throws {
        // 1,000 connections, all open at once, on one loop: two descriptors each.
        try await withLoop { loop in
            let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop], backlog: 4096)
            let running = Task { await server.run { connection, _ in try await echoStream(connection) } }
            var connections: [AsyncSocket] = []
            for _ in 0..<1000 {
                connections.append(try await AsyncSocket.connect(to: server.localAddress, loop: loop))
            }
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for (index, connection) in connections.enumerated() {
                    group.addTask(executorPreference: loop) {
                        let payload = testBytes(count: 64, seed: UInt64(index))
                        return try await roundTrip(connection, payload) == payload ? 0 : 1
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0)
            #expect(loop.registeredCount >= 2001)
            for connection in connections { try connection.close() }
            server.shutdown(gracePeriod: .seconds(5))
            await running.value
        }
    }
}

/// `RLIMIT_NOFILE` as the type `getrlimit` takes on glibc.
let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

/// An actor whose executor is an event loop.
actor LoopActor {
    let loop: EventLoop
    var count = 0

    init(loop: EventLoop) { self.loop = loop }

    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    func incrementOnLoop() -> Int {
        guard loop.inEventLoop else { return -1 }
        count += 1
        return count
    }

    /// Sends `count` bytes one by one from `left` to `right`, each received after a wait;
    /// the count after the last, or -1 if a resumption was not on the loop.
    func roundTripsOnLoop(_ left: AsyncSocket, _ right: AsyncSocket, count rounds: Int) async throws -> Int {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 1)
        defer { buffer.deallocate() }
        for _ in 0..<rounds {
            let waiting = Task(executorPreference: loop) {
                try await Task.sleep(for: .milliseconds(1))
                try await left.sendAll([7])
            }
            let received = try await right.receive(into: buffer)
            try await waiting.value
            guard received == 1, loop.inEventLoop, loop.isIsolatingCurrentContext() == true else { return -1 }
            count += 1
        }
        return count
    }
}
