import Foundation
import Glibc
import Sockets
import SocketsAsync
import Synchronization
import Testing

/// Hostile or broken peers on loopback: slow, silent, never reading, half-open or vanished
/// clients, a server out of descriptors, and sockets closed while in use.
@Suite(.noDescriptorLeaks(usesAsyncRuntime: true))
struct HostilePeerTests {
    /// Four clients trickle one byte a second for three seconds; meanwhile a normal client's
    /// round trips through the same SocketServer (one loop) each come back promptly.
    @Test func slowClientsDoNotHoldUpOthers() async throws {
        try await withLoop { loop in
            let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop])
            let running = Task { await server.run { connection, _ in try await echoStream(connection) } }
            let address = server.localAddress
            let slow = (0..<4).map { _ in
                Background { () throws -> [UInt8] in
                    let client = try Socket(.inet, .stream)
                    defer { try? client.close() }
                    try client.connect(to: address, timeout: .seconds(5))
                    try client.set(.receiveTimeout, .seconds(5))
                    var echoed: [UInt8] = []
                    for byte in Array("abc".utf8) {
                        try client.sendAll([byte])
                        echoed += try client.receive(maxLength: 1)
                        Thread.sleep(forTimeInterval: 1)
                    }
                    return echoed
                }
            }
            let normal = try await AsyncSocket.connect(to: address, timeout: .seconds(5), loop: loop)
            var slowest = 0.0
            let start = ContinuousClock.now
            var trips = 0
            while seconds(since: start) < 2.5 {
                let payload = [UInt8](repeating: UInt8(trips % 251), count: 4096)
                let sent = ContinuousClock.now
                #expect(try await roundTrip(normal, payload) == payload)
                slowest = max(slowest, seconds(since: sent))
                trips += 1
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(server.connectionCount == 5, "the slow clients were not all connected meanwhile")
            print("RELIABILITY slow clients: \(trips) round trips of a normal client, slowest \(String(format: "%.3f", slowest)) s")
            #expect(slowest < 0.5, "a round trip took \(slowest) s while slow clients trickled")
            for client in slow { #expect(try await client.value == Array("abc".utf8)) }
            try normal.close()
            server.shutdown(gracePeriod: .seconds(2))
            await running.value
        }
    }

    /// 1,000 clients connect and say nothing. A normal client is served meanwhile, and the
    /// handler's idle timeout (a read deadline) closes the silent ones.
    @Test(.requiresDescriptors(2_100)) func thousandSilentClients() async throws {
        try await withLoop { loop in
            let idle = Duration.milliseconds(1500)
            let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop], backlog: 2048)
            let running = Task {
                await server.run { connection, _ in
                    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 1)
                    defer { buffer.deallocate() }
                    // Serve while the client talks; a client silent for `idle` is dropped.
                    while case let count = try await connection.receive(into: buffer, deadline: .now + idle), count > 0 {
                        try await connection.sendAll(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                    }
                }
            }
            let start = ContinuousClock.now
            var silent: [AsyncSocket] = []
            for _ in 0..<1000 { silent.append(try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(5), loop: loop)) }
            let normal = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(5), loop: loop)
            let asked = ContinuousClock.now
            #expect(try await roundTrip(normal, Array("still here".utf8)) == Array("still here".utf8))
            let served = seconds(since: asked)
            #expect(served < 1, "the normal client waited \(served) s")
            try normal.close()

            // Every silent client is closed by the server: end-of-file, after the idle time.
            let ended = try await withThrowingTaskGroup(of: Bool.self) { group in
                for client in silent {
                    group.addTask(executorPreference: loop) {
                        (try? await client.receive(maxLength: 1, deadline: .now + .seconds(10)))?.isEmpty == true
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            let closedAfter = seconds(since: start)
            print("RELIABILITY 1,000 silent clients: normal client served in \(String(format: "%.3f", served)) s; all closed by the idle timeout after \(String(format: "%.2f", closedAfter)) s")
            #expect(ended == 1000)
            #expect(closedAfter >= 1.5)
            #expect(server.connectionCount == 0)
            for client in silent { try client.close() }
            server.shutdown(gracePeriod: .seconds(2))
            await running.value
        }
    }

    /// A server writes to clients that never read. Its writes stop when the kernel buffers
    /// are full (the library queues nothing of its own): each send deadline fires on time,
    /// the bytes accepted stay within the socket buffers, and the process's memory does not
    /// grow with what the server tried to send.
    @Test func clientsThatNeverRead() async throws {
        try await withLoop { loop in
            let listener = try AsyncSocket.listen(on: .ipv4(.loopback, port: 0), loop: loop)
            defer { try? listener.close() }
            var clients: [Socket] = []
            defer { for client in clients { try? client.close() } }
            for _ in 0..<4 {
                let client = try Socket(.inet, .stream)
                try client.set(.receiveBufferSize, 65_536)
                try client.connect(to: try listener.localAddress(), timeout: .seconds(5))
                clients.append(client)
            }
            let residentBefore = residentBytes()
            let results = try await withThrowingTaskGroup(of: (sent: Int, elapsed: Double, timedOut: Bool).self) { group in
                for _ in clients {
                    let (connection, _) = try await listener.accept(deadline: .now + .seconds(5))
                    group.addTask(executorPreference: loop) {
                        defer { try? connection.close() }
                        let chunk = [UInt8](repeating: 0x42, count: 65_536)
                        let start = ContinuousClock.now
                        let deadline = start + .seconds(1)
                        var sent = 0
                        // Up to 1 GiB, which never fits: the deadline must stop it.
                        while sent < 1 << 30 {
                            do throws(SocketError) {
                                sent += try await connection.send(chunk, deadline: deadline)
                            } catch {
                                return (sent, seconds(since: start), error.isTimeout)
                            }
                        }
                        return (sent, seconds(since: start), false)
                    }
                }
                var all: [(sent: Int, elapsed: Double, timedOut: Bool)] = []
                for try await result in group { all.append(result) }
                return all
            }
            let growth = residentBytes() - residentBefore
            for result in results {
                #expect(result.timedOut)
                expectWithinTenPercent(result.elapsed, of: 1, "send deadline to a client that never reads")
                #expect(result.sent < 16 << 20, "the server got \(result.sent) bytes in before blocking")
            }
            print("RELIABILITY never-reading clients: accepted \(results.map(\.sent)) bytes each before blocking; resident memory grew \(growth >> 10) KiB")
            #expect(growth < 32 << 20, "resident memory grew \(growth) bytes")
        }
    }

    /// The resident set size of this process, from /proc/self/statm.
    func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let pages = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    // MARK: Half-open connections

    /// A client that shuts down its writing side: the server sees end-of-file at once (sync
    /// and async) and can still answer on the other half.
    @Test func halfClosedClientIsSeenAtOnce() async throws {
        let listener = try Socket(.inet, .stream)
        defer { try? listener.close() }
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen()
        for useAsync in [false, true] {
            let client = try Socket(.inet, .stream)
            defer { try? client.close() }
            try client.connect(to: try listener.localAddress(), timeout: .seconds(5))
            try client.set(.receiveTimeout, .seconds(5))
            let (accepted, _) = try listener.accept()
            try client.sendAll("last words")
            try client.shutdown(.write)
            let start = ContinuousClock.now
            var got: [UInt8] = []
            if useAsync {
                let connection = try AsyncSocket(accepted)
                defer { try? connection.close() }
                while case let bytes = try await connection.receive(maxLength: 100, deadline: .now + .seconds(5)), !bytes.isEmpty { got += bytes }
                try await connection.sendAll("bye")
            } else {
                defer { try? accepted.close() }
                try accepted.set(.receiveTimeout, .seconds(5))
                while case let bytes = try accepted.receive(maxLength: 100), !bytes.isEmpty { got += bytes }
                try accepted.sendAll("bye")
            }
            #expect(seconds(since: start) < 0.5, "end-of-file took \(seconds(since: start)) s")
            #expect(got == Array("last words".utf8))
            #expect(try client.receive(maxLength: 10) == Array("bye".utf8))
        }
    }

    /// Clients that vanish (their namespace drops everything after the connections are up).
    /// With keepalive (1 s idle, 1 s interval, 2 probes) the kernel's ETIMEDOUT fails a
    /// blocked sync receive, and reaches an async receive with no deadline through the event
    /// loop (an error event, not a readable one); an async read deadline fires on time.
    @Test(.requires(.networkNamespaces))
    func vanishedClientIsDetected() async throws {
        try await TestNetwork.with { network in
            let (listening, address) = try listener(in: network.server, on: network.serverAddress)
            defer { try? listening.close() }
            var clients: [Socket] = []
            defer { for client in clients { try? client.close() } }
            var accepted: [Socket] = []
            for _ in 0..<3 {
                let client = try socket(in: network.client)
                clients.append(client)
                try client.connect(to: address, timeout: .seconds(5))
                accepted.append(try listening.accept().socket)
            }
            for socket in accepted[0...1] {
                try socket.set(.keepAlive, true)
                try socket.set(.tcpKeepIdle, .seconds(1))
                try socket.set(.tcpKeepInterval, .seconds(1))
                try socket.set(.tcpKeepCount, 2)
            }
            let keptAlive = accepted[0]
            defer { try? keptAlive.close() }
            try keptAlive.set(.receiveTimeout, .seconds(15))
            let asyncKeptAlive = try AsyncSocket(accepted[1])
            defer { try? asyncKeptAlive.close() }
            let deadlined = try AsyncSocket(accepted[2])
            defer { try? deadlined.close() }

            try FaultTests.filter(network.client, "counter drop")
            let start = ContinuousClock.now
            let blocked = Background { () throws -> Void in _ = try keptAlive.receive(maxLength: 10) }
            let waiting = Task { () async -> (String, Double) in
                do throws(SocketError) {
                    _ = try await asyncKeptAlive.receive(maxLength: 10, deadline: start + .seconds(15))
                    return ("returned", seconds(since: start))
                } catch {
                    return (error.description, seconds(since: start))
                }
            }
            do throws(SocketError) {
                _ = try await deadlined.receive(maxLength: 10, deadline: start + .seconds(1))
                Issue.record("the receive from a vanished client returned")
            } catch {
                expectWithinTenPercent(seconds(since: start), of: 1, "read deadline on a vanished client")
                #expect(error.isTimeout)
            }
            do {
                try await blocked.value
                Issue.record("the receive from a vanished client returned")
            } catch let error as SocketError {
                let elapsed = seconds(since: start)
                print("RELIABILITY vanished client: keepalive (1 s + 2 x 1 s) failed the sync receive after \(String(format: "%.2f", elapsed)) s")
                #expect(error.description == "recv: Connection timed out (ETIMEDOUT)")
                #expect(elapsed >= 2.5 && elapsed < 6, "keepalive gave up after \(elapsed) s")
            }
            let (outcome, elapsed) = await waiting.value
            print("RELIABILITY vanished client: keepalive failed the async receive after \(String(format: "%.2f", elapsed)) s")
            #expect(outcome == "recv: Connection timed out (ETIMEDOUT)")
            #expect(elapsed >= 2.5 && elapsed < 6, "keepalive gave up after \(elapsed) s")
            #expect(try FaultTests.droppedPackets(network.client) >= 2, "no keepalive probe was dropped")
        }
    }

    // MARK: Out of descriptors

    /// A SocketServer whose process runs out of descriptors (`EMFILE` on accept) keeps serving
    /// its existing client, uses almost no CPU while it waits, and accepts the waiting clients
    /// once descriptors are free again. (AsyncLoopTests covers a bare `accept`; this covers
    /// the server and its existing connections.)
    @Test func serverOutOfDescriptorsKeepsServingAndRecovers() async throws {
        try await withLoop { loop in
            let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop])
            let running = Task { await server.run { connection, _ in try await echoStream(connection) } }
            let existing = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(5), loop: loop)
            #expect(try await roundTrip(existing, [1, 2, 3]) == [1, 2, 3])
            // The waiting clients' sockets are made before the limit drops.
            var waiting: [AsyncSocket] = []
            for _ in 0..<4 { waiting.append(try AsyncSocket(.inet, .stream, loop: loop)) }

            let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
            var original = rlimit()
            getrlimit(resource, &original)
            var lowered = original
            // No descriptor left: the limit is the lowest unused number (those open above it
            // go on working; new ones must be below the limit).
            let open = openDescriptors()
            lowered.rlim_cur = rlim_t((0...).first { !open.contains(Int32($0)) } ?? 3)
            #expect(setrlimit(resource, &lowered) == 0)
            var restored = false
            defer { if !restored { var back = original; setrlimit(resource, &back) } }

            for client in waiting { try await client.connect(to: server.localAddress, deadline: .now + .seconds(5)) }
            try await Task.sleep(for: .milliseconds(100))
            let cpuBefore = try loop.threadCPUTime()
            var trips = 0
            let start = ContinuousClock.now
            while seconds(since: start) < 0.5 {
                #expect(try await roundTrip(existing, [UInt8(trips)]) == [UInt8(trips)])
                trips += 1
                try await Task.sleep(for: .milliseconds(50))
            }
            let cpuUsed = try loop.threadCPUTime() - cpuBefore
            print("RELIABILITY EMFILE: \(trips) round trips of the existing client in 0.5 s at EMFILE; loop CPU \(cpuUsed)")
            #expect(cpuUsed < .milliseconds(100), "the loop used \(cpuUsed) of CPU in 0.5 s at EMFILE")
            #expect(server.connectionCount == 1, "a waiting client was accepted while at EMFILE")

            #expect(setrlimit(resource, &original) == 0)
            restored = true
            for (index, client) in waiting.enumerated() {
                #expect(try await roundTrip(client, [UInt8(index)]) == [UInt8(index)])
            }
            #expect(server.connectionCount == 5)
            for client in waiting + [existing] { try client.close() }
            server.shutdown(gracePeriod: .seconds(2))
            await running.value
        }
    }

    // MARK: Closing while in use, many senders

    /// Three threads blocked in `recv` on one socket all wake when another thread closes it,
    /// with "socket is closed"; async tasks waiting to receive and to send on one socket wake
    /// the same way.
    @Test func closeWakesBlockedCallers() async throws {
        let (one, other) = try Socket.pair(.unix, .stream)
        defer { try? other.close() }
        try one.set(.receiveTimeout, .seconds(10))
        let readers = (0..<3).map { _ in
            Background { () -> String in
                do throws(SocketError) {
                    _ = try one.receive(maxLength: 10)
                    return "returned"
                } catch {
                    return error.description
                }
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        let start = ContinuousClock.now
        try one.close()
        for reader in readers { #expect(try await reader.value == "recv: socket is closed") }
        #expect(seconds(since: start) < 1)

        try await withLoop { loop in
            let (left, right) = try AsyncSocket.pair(.unix, .stream, loop: loop)
            defer { try? right.close() }
            let waiter = Task(executorPreference: loop) { () async -> String in
                do throws(SocketError) {
                    _ = try await left.receive(maxLength: 10, deadline: .now + .seconds(10))
                    return "returned"
                } catch {
                    return error.description
                }
            }
            // A second task waits to send: the peer reads nothing and the buffer is full.
            try left.socket.set(.sendBufferSize, 4096)
            let sender = Task(executorPreference: loop) { () async -> String in
                do throws(SocketError) {
                    try await left.sendAll([UInt8](repeating: 1, count: 8 << 20), deadline: .now + .seconds(10))
                    return "returned"
                } catch {
                    return error.description
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            let closedAt = ContinuousClock.now
            try left.close()
            #expect(await waiter.value == "recv: socket is closed")
            #expect(await sender.value == "send: socket is closed")
            #expect(seconds(since: closedAt) < 1)
        }
    }

    /// Eight senders put 1,000 datagrams each on one UDP socket at once: every datagram
    /// arrives whole, once, with its contents intact. Sync: eight threads on one `Socket`.
    /// Async: eight tasks on one `AsyncSocket` with a 4 KiB send buffer, so that they wait for
    /// room together.
    @Test(.requiresReceiveBuffer(32 << 20), arguments: [false, true])
    func eightSendersOnOneUDPSocket(async useAsync: Bool) async throws {
        let receiver = try Socket(.inet, .datagram)
        defer { try? receiver.close() }
        try reserveReceiveBuffer(receiver, 32 << 20)
        try receiver.set(.receiveTimeout, .seconds(5))
        try receiver.bind(to: .ipv4(.loopback, port: 0))
        let sender = try Socket(.inet, .datagram)
        defer { try? sender.close() }
        try sender.connect(to: try receiver.localAddress())
        // Under a sanitizer (scripts/test-sanitizers.sh sets SOCKETS_SANITIZER) the eight
        // threads' sends run several times slower: a quarter of the datagrams, still all at once.
        let perThread = getenv("SOCKETS_SANITIZER") == nil ? 1000 : 250
        let collector = Background { () throws -> (count: Int, bad: Int, seen: Set<Int>) in
            var seen = Set<Int>()
            var bad = 0
            var count = 0
            while count < 8 * perThread {
                let bytes = try receiver.receive(maxLength: 2048)
                count += 1
                guard bytes.count >= 8 else { bad += 1; continue }
                let thread = Int(bytes[0]), sequence = Int(bytes[1]) << 8 | Int(bytes[2])
                let expected = Self.datagram(thread: thread, sequence: sequence)
                if bytes != expected || !seen.insert(thread * perThread + sequence).inserted { bad += 1 }
            }
            return (count, bad, seen)
        }
        if useAsync {
            try sender.set(.sendBufferSize, 4096)
            let asyncSender = try AsyncSocket(sender)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for thread in 0..<8 {
                    group.addTask {
                        for sequence in 0..<perThread {
                            _ = try await asyncSender.send(Self.datagram(thread: thread, sequence: sequence), deadline: .now + .seconds(10))
                        }
                    }
                }
                try await group.waitForAll()
            }
            try asyncSender.close()
        } else {
            let senders = (0..<8).map { thread in
                Background { () throws -> Void in
                    for sequence in 0..<perThread { _ = try sender.send(Self.datagram(thread: thread, sequence: sequence)) }
                }
            }
            for thread in senders { try await thread.value }
        }
        let (count, bad, seen) = try await collector.value
        #expect(count == 8 * perThread)
        #expect(bad == 0)
        #expect(seen.count == 8 * perThread)
    }

    /// Datagram `sequence` of `thread`: a header (thread, sequence) and a body whose length
    /// and bytes depend on both.
    static func datagram(thread: Int, sequence: Int) -> [UInt8] {
        let length = 8 + (thread * 131 + sequence * 17) % 1200
        return [UInt8(thread), UInt8(sequence >> 8), UInt8(sequence & 0xFF)]
            + (3..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ thread &* 7 &+ sequence) }
    }
}
