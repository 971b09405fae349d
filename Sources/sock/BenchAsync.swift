import Foundation
import Sockets
import SocketsAsync
import Synchronization

/// Runs one benchmark on event loops: the server and every client are tasks, each on the
/// loop of its socket. The listener (or the UDP server socket) is on loop 0; client `i` is on
/// loop `(i + 1) mod N` and the server's side of the `i`-th accepted connection on loop
/// `i mod N`, so with two or more loops the two ends of a connection are on different loops,
/// and with one loop everything runs on one thread.
final class AsyncBenchmark: Sendable {
    let transport: Bench.Transport
    let mode: Bench.Mode
    let size: Int
    let connections: Int
    let duration: Duration
    let loopCount: Int

    /// Bytes the server received (throughput) or round trips completed (latency).
    private let progressCount = Atomic<Int>(0)
    private let received = Atomic<Int>(0)
    private let receivedMessages = Atomic<Int>(0)
    private let sentMessages = Atomic<Int>(0)
    private let samples = LockedValue<[Double]>([])
    private let lastArrival = LockedValue<ContinuousClock.Instant?>(nil)
    private let failure = LockedValue<ToolError?>(nil)
    /// When the clients stop; `nil` while they connect. Server errors before it are failures.
    private let end = LockedValue<ContinuousClock.Instant?>(nil)
    /// The server's side of each connection, closed at the end whatever state it is in.
    private let serverConnections = LockedValue<[AsyncSocket]>([])

    /// Most samples kept per client, so that long runs stay within memory.
    private static let sampleLimit = 2_000_000
    /// A client that never has to wait (UDP sends) lets the other tasks on its loop run
    /// after this many messages.
    private static let messagesBetweenYields = 32

    init(transport: Bench.Transport, mode: Bench.Mode, size: Int, connections: Int, duration: Duration, loopCount: Int) {
        self.transport = transport
        self.mode = mode
        self.size = size
        self.connections = connections
        self.duration = duration
        self.loopCount = loopCount
    }

    private func fail(_ error: any Error) {
        failure.withLock { $0 = $0 ?? ToolError(error) }
    }

    /// Whether an error now counts as a failure (after the deadline, peers closing is normal).
    private var running: Bool {
        guard let end = end.withLock({ $0 }) else { return true }
        return ContinuousClock.now < end
    }

    func run(showProgress: Bool) async throws(ToolError) -> BenchResult {
        let group: EventLoopGroup
        do {
            group = try EventLoopGroup(loopCount: loopCount, name: "bench")
        } catch {
            throw ToolError(error)
        }
        defer { group.shutdown() }
        let loops = group.loops
        var unixPath: String?
        defer { if let unixPath { try? FileManager.default.removeItem(atPath: unixPath) } }

        let server: AsyncSocket
        do {
            switch transport {
            case .tcp:
                server = try AsyncSocket.listen(on: .ipv4(.loopback, port: 0), loop: loops[0])
            case .unix:
                let path = "/tmp/sock-bench-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max)).sock"
                unixPath = path
                server = try AsyncSocket.listen(on: .unix(path: path), loop: loops[0])
            case .udp:
                server = try AsyncSocket.bind(datagram: .ipv4(.loopback, port: 0), loop: loops[0])
                try? server.socket.set(.receiveBufferSize, 4 * 1024 * 1024)
            }
        } catch {
            throw ToolError(error)
        }
        defer { try? server.close() }
        let serverAddress: SocketAddress
        do {
            serverAddress = try server.localAddress()
        } catch {
            throw ToolError(error)
        }
        let serverTask = Task(executorPreference: loops[0]) { await self.serve(server, loops: loops) }

        // Connect every client before the clock starts.
        var clients: [AsyncSocket] = []
        defer { for client in clients { try? client.close() } }
        do throws(SocketError) {
            let connectDeadline = ContinuousClock.now.advanced(by: .seconds(30))
            for index in 0..<connections {
                let client = try await AsyncSocket.connect(
                    to: serverAddress, type: transport == .udp ? .datagram : .stream, deadline: connectDeadline,
                    loop: loops[(index + 1) % loops.count])
                clients.append(client)
                if transport == .tcp { try client.socket.set(.tcpNoDelay, true) }
            }
        } catch {
            if error.isTimeout { throw ToolError.runtime("bench: clients could not connect within 30 s") }
            throw ToolError(error)
        }

        let start = ContinuousClock.now
        let stop = start.advanced(by: duration)
        end.withLock { $0 = stop }
        await runClients(clients, start: start, stop: stop, showProgress: showProgress)
        if transport == .udp {
            // Let the last datagrams land before counting.
            try? await Task.sleep(for: .milliseconds(100))
        }
        // The servers' sides have seen end-of-file by now; closing them wakes any that has not.
        try? server.close()
        for connection in serverConnections.withLock({ $0 }) { try? connection.close() }
        await serverTask.value
        if let failure = failure.withLock({ $0 }) { throw failure }

        var elapsed = duration
        if mode == .throughput && transport != .udp, let last = lastArrival.withLock({ $0 }) {
            elapsed = start.duration(to: last)
        }
        let bytes = received.load(ordering: .relaxed)
        let messages = mode == .latency ? progressCount.load(ordering: .relaxed)
            : (transport == .udp ? receivedMessages.load(ordering: .relaxed) : bytes / size)
        let lost = transport == .udp && mode == .throughput
            ? max(0, sentMessages.load(ordering: .relaxed) - receivedMessages.load(ordering: .relaxed)) : 0
        return BenchResult(
            engine: .eventLoops(loops.count), transport: transport, mode: mode, connections: connections, size: size,
            elapsed: elapsed, bytes: bytes, messages: messages, lost: lost, samples: samples.withLock { $0.sorted() })
    }

    private enum ChildOutcome: Sendable {
        case clientDone
        case watchdog(fired: Bool)
        case progressDone
    }

    /// Runs the clients until `stop`, with a progress line and a watchdog: clients still
    /// running 30 s after `stop` are cancelled and the run fails.
    private func runClients(_ clients: [AsyncSocket], start: ContinuousClock.Instant, stop: ContinuousClock.Instant, showProgress: Bool) async {
        await withTaskGroup(of: ChildOutcome.self) { group in
            for client in clients {
                group.addTask(executorPreference: client.loop) {
                    await self.client(client, until: stop)
                    return .clientDone
                }
            }
            group.addTask {
                do {
                    try await Task.sleep(until: stop.advanced(by: .seconds(30)), clock: .continuous)
                    return .watchdog(fired: true)
                } catch {
                    return .watchdog(fired: false)
                }
            }
            if showProgress {
                group.addTask {
                    await self.showProgress(start: start, stop: stop)
                    return .progressDone
                }
            }
            var finished = 0
            while let outcome = await group.next() {
                switch outcome {
                case .clientDone:
                    finished += 1
                    if finished == clients.count { group.cancelAll() }
                case .watchdog(let fired):
                    if fired {
                        failure.withLock { $0 = $0 ?? ToolError.runtime("bench: clients did not finish within 30 s of the deadline") }
                        group.cancelAll()
                    }
                case .progressDone:
                    break
                }
            }
        }
    }

    private func showProgress(start: ContinuousClock.Instant, stop: ContinuousClock.Instant) async {
        defer { Console.errorRaw("\r\u{1B}[K") }
        while ContinuousClock.now < stop {
            let pause = min(Duration.milliseconds(250), max(.milliseconds(1), ContinuousClock.now.duration(to: stop)))
            do {
                try await Task.sleep(for: pause)
            } catch {
                return
            }
            let elapsed = start.duration(to: .now)
            let count = Double(progressCount.load(ordering: .relaxed))
            let rate = mode == .latency
                ? "\(Format.count(count / max(elapsed.seconds, 1e-9))) round trips/s" : Format.rate(count / max(elapsed.seconds, 1e-9))
            Console.errorRaw(String(format: "\r  %.1f s  ", elapsed.seconds) + rate + "\u{1B}[K")
        }
    }

    // MARK: Servers

    private func serve(_ server: AsyncSocket, loops: [EventLoop]) async {
        if transport == .udp {
            await serveDatagrams(server)
            return
        }
        await withDiscardingTaskGroup { group in
            for index in 0..<connections {
                guard let (connection, _) = try? await server.accept(loop: loops[index % loops.count]) else { return }
                serverConnections.withLock { $0.append(connection) }
                if transport == .tcp { try? connection.socket.set(.tcpNoDelay, true) }
                group.addTask(executorPreference: connection.loop) { await self.serveStream(connection) }
            }
        }
    }

    private func serveStream(_ connection: AsyncSocket) async {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 256 * 1024), alignment: 16)
        defer { buffer.deallocate() }
        do throws(SocketError) {
            if mode == .throughput {
                while true {
                    let count = try await connection.receive(into: buffer)
                    if count == 0 { break }
                    received.add(count, ordering: .relaxed)
                    progressCount.add(count, ordering: .relaxed)
                }
                let now = ContinuousClock.now
                lastArrival.withLock { $0 = max($0 ?? now, now) }
            } else {
                let message = UnsafeMutableRawBufferPointer(rebasing: buffer[..<size])
                while true {
                    let count = try await connection.receive(exactly: message)
                    if count < size { break }
                    try await connection.sendAll(UnsafeRawBufferPointer(message))
                }
            }
            try? connection.shutdown(.write)
        } catch {
            if running { fail(error) }
        }
    }

    private func serveDatagrams(_ server: AsyncSocket) async {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            // Closing the socket at the end wakes this receive with an error.
            guard let (count, sender) = try? await server.receiveFrom(into: buffer) else { return }
            received.add(count, ordering: .relaxed)
            receivedMessages.add(1, ordering: .relaxed)
            if mode == .throughput {
                progressCount.add(count, ordering: .relaxed)
            } else if let sender {
                _ = try? await server.send(UnsafeRawBufferPointer(rebasing: buffer[..<count]), to: sender)
            }
        }
    }

    // MARK: Clients

    /// Receives into `buffer`; `false` when nothing came within 200 ms.
    private static func receiveUnlessTimedOut(_ socket: AsyncSocket, into buffer: UnsafeMutableRawBufferPointer) async throws(SocketError) -> Bool {
        do {
            _ = try await socket.receive(into: buffer, deadline: .now.advanced(by: .milliseconds(200)))
            return true
        } catch where error.isTimeout {
            return false
        }
    }

    private func client(_ socket: AsyncSocket, until stop: ContinuousClock.Instant) async {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        for index in 0..<size { buffer[index] = UInt8(truncatingIfNeeded: index) }
        let message = UnsafeRawBufferPointer(buffer)
        var local: [Double] = []
        local.reserveCapacity(100_000)
        let clock = ContinuousClock()
        var sinceYield = 0
        do {
            while clock.now < stop {
                let before = clock.now
                switch (mode, transport) {
                case (.throughput, .udp):
                    if (try? await socket.send(message)) != nil { sentMessages.add(1, ordering: .relaxed) }
                    sinceYield += 1
                    if sinceYield >= Self.messagesBetweenYields {
                        sinceYield = 0
                        await Task.yield()
                    }
                case (.throughput, _):
                    try await socket.sendAll(message)
                case (.latency, .udp):
                    _ = try await socket.send(message)
                    // A lost datagram (no reply within 200 ms) is not a round trip.
                    guard try await Self.receiveUnlessTimedOut(socket, into: buffer) else { continue }
                    received.add(size, ordering: .relaxed)
                    progressCount.add(1, ordering: .relaxed)
                case (.latency, _):
                    try await socket.sendAll(message)
                    guard try await socket.receive(exactly: buffer) == size else {
                        throw ToolError.runtime("bench: the server closed the connection early")
                    }
                    received.add(size, ordering: .relaxed)
                    progressCount.add(1, ordering: .relaxed)
                }
                if local.count < Self.sampleLimit {
                    local.append(before.duration(to: clock.now).seconds * 1e6)
                }
            }
            if transport != .udp {
                // Half-close, then wait for the server to finish reading and close.
                try socket.shutdown(.write)
                while try await socket.receive(into: buffer) > 0 {}
            }
        } catch {
            fail(error)
        }
        samples.withLock { $0.append(contentsOf: local) }
    }
}
