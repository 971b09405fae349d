import Foundation
import Sockets
import SocketsAsync

/// Runs one benchmark on event loops: the server and every client are tasks, each on the
/// loop of its socket. The listener (or the UDP server socket) is on loop 0; client `i` is on
/// loop `(i + 1) mod N` and the server's side of the `i`-th accepted connection on loop
/// `i mod N`, so with two or more loops the two ends of a connection are on different loops,
/// and with one loop everything runs on one thread.
final class AsyncBenchmark: Sendable {
    let run: BenchRun
    let loopCount: Int

    /// The server's side of each connection, closed at the end whatever state it is in.
    private let serverConnections = LockedValue<[AsyncSocket]>([])

    /// A client that never has to wait (UDP sends) lets the other tasks on its loop run
    /// after this many messages.
    private static let messagesBetweenYields = 32

    init(_ run: BenchRun, loopCount: Int) {
        self.run = run
        self.loopCount = loopCount
    }

    func measure(showProgress: Bool) async throws(ToolError) -> BenchResult {
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
            switch run.transport {
            case .tcp:
                server = try AsyncSocket.listen(on: .ipv4(.loopback, port: 0), loop: loops[0])
            case .unix:
                let path = BenchRun.temporaryUnixPath()
                unixPath = path
                server = try AsyncSocket.listen(on: .unix(path: path), loop: loops[0])
            case .udp:
                server = try AsyncSocket.bind(datagram: .ipv4(.loopback, port: 0), loop: loops[0])
                try? server.socket.set(.receiveBufferSize, BenchRun.datagramReceiveBufferSize)
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
            for index in 0..<run.connections {
                let client = try await AsyncSocket.connect(
                    to: serverAddress, type: run.transport == .udp ? .datagram : .stream, deadline: connectDeadline,
                    loop: loops[(index + 1) % loops.count])
                clients.append(client)
                if run.transport == .tcp { try client.socket.set(.tcpNoDelay, true) }
            }
        } catch {
            if error.isTimeout { throw BenchRun.connectFailure }
            throw ToolError(error)
        }

        let start = ContinuousClock.now
        let stop = run.start(at: start)
        await runClients(clients, start: start, stop: stop, showProgress: showProgress)
        if run.transport == .udp {
            // Let the last datagrams land before counting.
            try? await Task.sleep(for: .milliseconds(100))
        }
        // The servers' sides have seen end-of-file by now; closing them wakes any that has not.
        try? server.close()
        for connection in serverConnections.withLock({ $0 }) { try? connection.close() }
        await serverTask.value
        if let failure = run.firstFailure { throw failure }
        return run.result(engine: .eventLoops(loops.count), start: start)
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
                        run.fail(BenchRun.finishFailure)
                        group.cancelAll()
                    }
                case .progressDone:
                    break
                }
            }
        }
    }

    private func showProgress(start: ContinuousClock.Instant, stop: ContinuousClock.Instant) async {
        defer { BenchRun.clearProgress() }
        while ContinuousClock.now < stop {
            do {
                try await Task.sleep(for: run.progressPause(until: stop))
            } catch {
                return
            }
            run.showProgress(since: start)
        }
    }

    // MARK: Servers

    private func serve(_ server: AsyncSocket, loops: [EventLoop]) async {
        if run.transport == .udp {
            await serveDatagrams(server)
            return
        }
        await withDiscardingTaskGroup { group in
            for index in 0..<run.connections {
                guard let (connection, _) = try? await server.accept(loop: loops[index % loops.count]) else { return }
                serverConnections.withLock { $0.append(connection) }
                if run.transport == .tcp { try? connection.socket.set(.tcpNoDelay, true) }
                group.addTask(executorPreference: connection.loop) { await self.serveStream(connection) }
            }
        }
    }

    private func serveStream(_ connection: AsyncSocket) async {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: run.streamBufferSize, alignment: 16)
        defer { buffer.deallocate() }
        do throws(SocketError) {
            if run.mode == .throughput {
                while case let count = try await connection.receive(into: buffer), count > 0 {
                    run.streamReceived(count)
                }
                run.streamEnded()
            } else {
                let message = UnsafeMutableRawBufferPointer(rebasing: buffer[..<run.size])
                while try await connection.receive(exactly: message) == run.size {
                    try await connection.sendAll(UnsafeRawBufferPointer(message))
                }
            }
            try? connection.shutdown(.write)
        } catch {
            if run.isRunning { run.fail(error) }
        }
    }

    private func serveDatagrams(_ server: AsyncSocket) async {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: BenchRun.datagramBufferSize, alignment: 16)
        defer { buffer.deallocate() }
        // Closing the socket at the end wakes this receive with an error.
        while let (count, sender) = try? await server.receiveFrom(into: buffer) {
            run.datagramReceived(count)
            if run.mode == .latency, let sender {
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
        let buffer = run.makeClientBuffer()
        defer { buffer.deallocate() }
        let message = UnsafeRawBufferPointer(buffer)
        var timings = ClientTimings()
        let clock = ContinuousClock()
        var sinceYield = 0
        do {
            while clock.now < stop {
                let before = clock.now
                switch (run.mode, run.transport) {
                case (.throughput, .udp):
                    if (try? await socket.send(message)) != nil { run.datagramSent() }
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
                    run.roundTripCompleted()
                case (.latency, _):
                    try await socket.sendAll(message)
                    guard try await socket.receive(exactly: buffer) == run.size else { throw BenchRun.closedEarly }
                    run.roundTripCompleted()
                }
                timings.record(since: before, clock: clock)
            }
            if run.transport != .udp {
                // Half-close, then wait for the server to finish reading and close.
                try socket.shutdown(.write)
                while try await socket.receive(into: buffer) > 0 {}
            }
        } catch {
            run.fail(error)
        }
        run.add(timings)
    }
}
