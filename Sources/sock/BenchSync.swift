import Foundation
import Sockets

/// Runs one benchmark on threads over the blocking core (`--sync`): a thread per socket.
final class SyncBenchmark: Sendable {
    let run: BenchRun

    /// Lets the clients start once all have connected.
    private let go = Latch()
    /// Each client thread leaves once; the main thread waits for all.
    private let finished = DispatchGroup()
    private let sockets = LockedValue<[Socket]>([])

    init(_ run: BenchRun) {
        self.run = run
    }

    private func track(_ socket: Socket) -> Socket {
        sockets.withLock { $0.append(socket) }
        return socket
    }

    func measure(showProgress: Bool) throws(ToolError) -> BenchResult {
        var unixPath: String?
        defer {
            for socket in sockets.withLock({ $0 }) { try? socket.close() }
            if let unixPath { try? FileManager.default.removeItem(atPath: unixPath) }
        }
        let serverAddress: SocketAddress
        do {
            switch run.transport {
            case .tcp, .unix:
                let listener: Socket
                if run.transport == .unix {
                    let path = BenchRun.temporaryUnixPath()
                    unixPath = path
                    listener = track(try Socket(.unix, .stream))
                    try listener.bind(to: .unix(path: path))
                } else {
                    listener = track(try Socket(.inet, .stream))
                    try listener.bind(to: .ipv4(.loopback, port: 0))
                }
                try listener.listen(backlog: 1024)
                serverAddress = try listener.localAddress()
                startThread("bench-accept") { self.acceptConnections(listener) }
            case .udp:
                let server = track(try Socket(.inet, .datagram))
                try server.bind(to: .ipv4(.loopback, port: 0))
                try? server.set(.receiveBufferSize, BenchRun.datagramReceiveBufferSize)
                serverAddress = try server.localAddress()
                startThread("bench-udp-server") { self.serveDatagrams(server) }
            }
        } catch {
            throw ToolError(error)
        }
        let connected = DispatchGroup()
        for index in 0..<run.connections {
            connected.enter()
            finished.enter()
            startThread("bench-client-\(index)") {
                self.client(serverAddress, connected: connected)
                self.finished.leave()
            }
        }
        guard connected.wait(timeout: .now() + 30) == .success else { throw BenchRun.connectFailure }
        if let failure = run.firstFailure { go.fire(); throw failure }
        let start = ContinuousClock.now
        let stop = run.start(at: start)
        go.fire()
        while ContinuousClock.now < stop {
            Thread.sleep(forTimeInterval: run.progressPause(until: stop).seconds)
            if showProgress { run.showProgress(since: start) }
        }
        if showProgress { BenchRun.clearProgress() }
        // Clients stop at the deadline; give them (and the data in flight) time to finish.
        if finished.wait(timeout: .now() + 30) != .success { throw BenchRun.finishFailure }
        if run.transport == .udp {
            // Let the last datagrams land before counting.
            Thread.sleep(forTimeInterval: 0.1)
        }
        if let failure = run.firstFailure { throw failure }
        return run.result(engine: .threads, start: start)
    }

    // MARK: Servers

    private func acceptConnections(_ listener: Socket) {
        for _ in 0..<run.connections {
            guard let (connection, _) = try? listener.accept() else { return }
            _ = track(connection)
            if run.transport == .tcp { try? connection.set(.tcpNoDelay, true) }
            startThread("bench-server") { self.serveStream(connection) }
        }
    }

    private func serveStream(_ connection: Socket) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: run.streamBufferSize, alignment: 16)
        defer { buffer.deallocate() }
        do {
            if run.mode == .throughput {
                while case let count = try connection.receive(into: buffer), count > 0 {
                    run.streamReceived(count)
                }
                run.streamEnded()
            } else {
                let message = UnsafeMutableRawBufferPointer(rebasing: buffer[..<run.size])
                while try connection.receive(exactly: message) == run.size {
                    try connection.sendAll(UnsafeRawBufferPointer(message))
                }
            }
            try? connection.shutdown(.write)
        } catch {
            if run.isRunning { run.fail(error) }
        }
    }

    private func serveDatagrams(_ server: Socket) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: BenchRun.datagramBufferSize, alignment: 16)
        defer { buffer.deallocate() }
        // Closing the socket at the end wakes this receive with an error.
        while let (count, sender) = try? server.receiveFrom(into: buffer) {
            run.datagramReceived(count)
            if run.mode == .latency, let sender {
                _ = try? server.send(UnsafeRawBufferPointer(rebasing: buffer[..<count]), to: sender)
            }
        }
    }

    // MARK: Clients

    /// Receives into `buffer`; `false` when `SO_RCVTIMEO` expired first.
    private static func receiveUnlessTimedOut(_ socket: Socket, into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Bool {
        do {
            _ = try socket.receive(into: buffer)
            return true
        } catch {
            if error.isWouldBlock { return false }
            throw error
        }
    }

    private func client(_ server: SocketAddress, connected: DispatchGroup) {
        let socket: Socket
        do {
            socket = track(try Socket(server.domain, run.transport == .udp ? .datagram : .stream))
            try socket.connect(to: server)
            if run.transport == .tcp { try socket.set(.tcpNoDelay, true) }
            if run.transport == .udp && run.mode == .latency { try socket.set(.receiveTimeout, .milliseconds(200)) }
        } catch {
            run.fail(error)
            connected.leave()
            return
        }
        connected.leave()
        _ = go.wait(timeout: .seconds(60))
        // Without a stop time the run failed before starting: send nothing.
        let stop = run.stop ?? .now
        let buffer = run.makeClientBuffer()
        defer { buffer.deallocate() }
        let message = UnsafeRawBufferPointer(buffer)
        var timings = ClientTimings()
        let clock = ContinuousClock()
        do {
            while clock.now < stop {
                let before = clock.now
                switch (run.mode, run.transport) {
                case (.throughput, .udp):
                    if (try? socket.send(message)) != nil { run.datagramSent() }
                case (.throughput, _):
                    try socket.sendAll(message)
                case (.latency, .udp):
                    _ = try socket.send(message)
                    // A lost datagram (the receive timed out) is not a round trip.
                    guard try Self.receiveUnlessTimedOut(socket, into: buffer) else { continue }
                    run.roundTripCompleted()
                case (.latency, _):
                    try socket.sendAll(message)
                    guard try socket.receive(exactly: buffer) == run.size else { throw BenchRun.closedEarly }
                    run.roundTripCompleted()
                }
                timings.record(since: before, clock: clock)
            }
            if run.transport != .udp {
                // Half-close, then wait for the server to finish reading and close.
                try socket.shutdown(.write)
                while try socket.receive(into: buffer) > 0 {}
            }
        } catch {
            run.fail(error)
        }
        run.add(timings)
    }
}
