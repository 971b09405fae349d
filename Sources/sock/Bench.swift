import ArgumentParser
import Foundation
import Sockets
import SocketsAsync
import Synchronization

/// `sock bench`: a server and clients on loopback, measuring throughput or latency.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput or latency over loopback (server and clients in this process).",
        usage: """
            sock bench [tcp|udp|unix] [--mode throughput|latency] [--size BYTES]
                       [--connections N] [--duration SECS] [--loops N | --sync] [--json]
            """,
        discussion: """
            throughput: each connection sends messages of --size bytes as fast as it can; \
            the server counts what arrives. latency: each connection sends --size bytes and \
            waits for the server to echo them (one in flight), timing each round trip. Prints \
            bytes/s, messages/s and latency percentiles (p50, p99; per send in throughput \
            mode); --json prints one JSON object. A live progress line appears when standard \
            error is a terminal.

            The server and the clients are tasks on SocketsAsync event loops (--loops, one per \
            processor by default; client i runs on loop i mod N and the server's side of the \
            i-th connection on the next loop). --sync runs them instead on threads over the \
            blocking core, a thread per socket, for comparison. Threads run where the \
            scheduler puts them: pin with taskset for repeatable numbers.

            Examples:
              sock bench
              sock bench unix --mode latency --duration 5
              sock bench udp --size 1400 --connections 4 --json
              sock bench tcp --mode latency --loops 1     (client and server on one thread)
              sock bench tcp --mode latency --sync        (the same on blocking threads)
            """
    )

    enum Transport: String, ExpressibleByArgument, CaseIterable, Sendable {
        case tcp, udp, unix
    }

    enum Mode: String, ExpressibleByArgument, CaseIterable, Sendable {
        case throughput, latency
    }

    @Argument(help: "tcp, udp or unix.")
    var transport: Transport = .tcp

    @Option(help: "throughput or latency.")
    var mode: Mode = .throughput

    @Option(help: ArgumentHelp("Bytes per message (default: 131072 for throughput over streams, 1400 over UDP, 64 for latency).", valueName: "BYTES"))
    var size: Int?

    @Option(help: "Concurrent connections (1...1000).")
    var connections = 1

    @Option(help: ArgumentHelp("Seconds to run (0.1...3600).", valueName: "SECS"))
    var duration = 3.0

    @Option(help: ArgumentHelp("Event loops to run on (1...64; default: one per processor).", valueName: "N"))
    var loops: Int?

    @Flag(help: "Use threads over the blocking core instead of the event loop, for comparison.")
    var sync = false

    @Flag(help: "Print JSON.")
    var json = false

    var messageSize: Int {
        if let size { return size }
        if mode == .latency { return 64 }
        return transport == .udp ? 1400 : 128 * 1024
    }

    func validate() throws {
        guard (1...1000).contains(connections) else { throw ValidationError("--connections \(connections) is outside 1...1000") }
        let largest = transport == .udp ? 65_507 : 16 * 1024 * 1024
        guard (1...largest).contains(messageSize) else { throw ValidationError("--size \(messageSize) is outside 1...\(largest) for \(transport.rawValue)") }
        if let loops {
            guard (1...64).contains(loops) else { throw ValidationError("--loops \(loops) is outside 1...64") }
            if sync { throw ValidationError("--loops and --sync cannot be used together") }
        }
    }

    func run() async throws {
        let runTime = try seconds(duration, option: "--duration", minimum: 0.1, maximum: 3600)
        let showProgress = Console.errorIsTerminal && !json
        let result: BenchResult
        if sync {
            let benchmark = Benchmark(transport: transport, mode: mode, size: messageSize, connections: connections, duration: runTime)
            result = try benchmark.run(showProgress: showProgress)
        } else {
            let benchmark = AsyncBenchmark(
                transport: transport, mode: mode, size: messageSize, connections: connections, duration: runTime,
                loopCount: loops ?? max(1, min(EventLoopGroup.processorCount, 64)))
            result = try await benchmark.run(showProgress: showProgress)
        }
        try Console.out(json ? result.json : result.table)
    }
}

/// What a benchmark measured.
struct BenchResult {
    /// What ran it: "event loop" (with the number of loops) or "threads".
    var engine: Engine
    var transport: Bench.Transport
    var mode: Bench.Mode
    var connections: Int
    var size: Int
    var elapsed: Duration
    var bytes: Int
    var messages: Int
    /// Datagrams sent that never arrived (UDP).
    var lost: Int
    /// Microseconds: round trips (latency mode) or sends (throughput mode).
    var samples: [Double]

    enum Engine {
        case eventLoops(Int)
        case threads

        var name: String {
            switch self {
            case .eventLoops: return "async"
            case .threads: return "threads"
            }
        }

        var label: String {
            switch self {
            case .eventLoops(let count): return "event loop\(count == 1 ? "" : "s") (\(count)), async/await"
            case .threads: return "a thread per socket, blocking calls (--sync)"
            }
        }
    }

    var bytesPerSecond: Double { Double(bytes) / max(elapsed.seconds, 1e-9) }
    var messagesPerSecond: Double { Double(messages) / max(elapsed.seconds, 1e-9) }
    var sampleKind: String { mode == .latency ? "round trip" : "send" }

    func percentile(_ fraction: Double) -> Double? {
        guard !samples.isEmpty else { return nil }
        let index = min(samples.count - 1, max(0, Int((Double(samples.count) * fraction).rounded(.up)) - 1))
        return samples[index]
    }

    private func microseconds(_ value: Double?) -> String {
        guard let value else { return "n/a" }
        return value >= 1000 ? String(format: "%.2f ms", value / 1000) : String(format: "%.1f µs", value)
    }

    var table: String {
        let plural = connections == 1 ? "" : "s"
        var rows: [[String]] = [
            ["throughput", "\(Format.rate(bytesPerSecond)) (\(String(format: "%.2f", bytesPerSecond * 8 / 1e9)) Gbit/s)"],
            ["messages", "\(Format.count(messagesPerSecond)) /s (\(Format.count(Double(messages))) in \(Format.duration(elapsed)))"],
            ["\(sampleKind) p50", microseconds(percentile(0.5))],
            ["\(sampleKind) p99", microseconds(percentile(0.99))],
            ["\(sampleKind) min / max", "\(microseconds(samples.first)) / \(microseconds(samples.last))"],
        ]
        if transport == .udp { rows.append(["lost datagrams", Format.count(Double(lost))]) }
        rows.append(["engine", engine.label])
        return "sock bench: \(transport.rawValue) \(mode.rawValue), \(connections) connection\(plural), \(size)-byte messages\n\n"
            + Format.table(["metric", "value"], rows)
    }

    private var loopCountJSON: String {
        if case .eventLoops(let count) = engine { return String(count) }
        return "null"
    }

    var json: String {
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "null" }
            return String(format: "%.3f", value)
        }
        return """
            {"engine": "\(engine.name)", "event_loops": \(loopCountJSON), "transport": "\(transport.rawValue)", "mode": "\(mode.rawValue)", "connections": \(connections), \
            "message_size": \(size), "duration_seconds": \(number(elapsed.seconds)), "bytes": \(bytes), \
            "messages": \(messages), "lost": \(lost), "bytes_per_second": \(number(bytesPerSecond)), \
            "messages_per_second": \(number(messagesPerSecond)), "latency_us": {"kind": "\(sampleKind)", \
            "samples": \(samples.count), "p50": \(number(percentile(0.5))), "p99": \(number(percentile(0.99))), \
            "min": \(number(samples.first)), "max": \(number(samples.last))}}

            """
    }
}

/// Runs one benchmark: servers and clients on threads of this process (`--sync`).
final class Benchmark: Sendable {
    let transport: Bench.Transport
    let mode: Bench.Mode
    let size: Int
    let connections: Int
    let duration: Duration

    /// Bytes the server received (throughput) or round trips completed (latency).
    private let progressCount = Atomic<Int>(0)
    private let received = Atomic<Int>(0)
    private let receivedMessages = Atomic<Int>(0)
    private let sentMessages = Atomic<Int>(0)
    private let samples = LockedValue<[Double]>([])
    private let lastArrival = LockedValue<ContinuousClock.Instant?>(nil)
    private let failure = LockedValue<ToolError?>(nil)
    private let go = Latch()
    private let deadline = LockedValue<ContinuousClock.Instant>(.now)
    /// Each client thread leaves once; the main thread waits for all.
    private let finished = DispatchGroup()
    private let sockets = LockedValue<[Socket]>([])

    /// Most samples kept per client, so that long runs stay within memory.
    private static let sampleLimit = 2_000_000

    init(transport: Bench.Transport, mode: Bench.Mode, size: Int, connections: Int, duration: Duration) {
        self.transport = transport
        self.mode = mode
        self.size = size
        self.connections = connections
        self.duration = duration
    }

    private func fail(_ error: any Error) {
        failure.withLock { $0 = $0 ?? ToolError(error) }
    }

    private func track(_ socket: Socket) -> Socket {
        sockets.withLock { $0.append(socket) }
        return socket
    }

    func run(showProgress: Bool) throws(ToolError) -> BenchResult {
        var unixPath: String?
        defer {
            for socket in sockets.withLock({ $0 }) { try? socket.close() }
            if let unixPath { try? FileManager.default.removeItem(atPath: unixPath) }
        }
        let serverAddress: SocketAddress
        do {
            switch transport {
            case .tcp, .unix:
                let listener: Socket
                if transport == .unix {
                    let path = "/tmp/sock-bench-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max)).sock"
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
                try? server.set(.receiveBufferSize, 4 * 1024 * 1024)
                serverAddress = try server.localAddress()
                startThread("bench-udp-server") { self.serveDatagrams(server) }
            }
        } catch {
            throw ToolError(error)
        }
        let connected = DispatchGroup()
        for index in 0..<connections {
            connected.enter()
            finished.enter()
            startThread("bench-client-\(index)") {
                self.client(serverAddress, connected: connected)
                self.finished.leave()
            }
        }
        guard connected.wait(timeout: .now() + 30) == .success else {
            throw ToolError.runtime("bench: clients could not connect within 30 s")
        }
        if let failure = failure.withLock({ $0 }) { go.fire(); throw failure }
        let start = ContinuousClock.now
        deadline.withLock { $0 = start.advanced(by: duration) }
        go.fire()
        while ContinuousClock.now < start.advanced(by: duration) {
            Thread.sleep(forTimeInterval: min(0.25, max(0.001, ContinuousClock.now.duration(to: start.advanced(by: duration)).seconds)))
            if showProgress {
                let elapsed = start.duration(to: .now)
                let count = Double(progressCount.load(ordering: .relaxed))
                let rate = mode == .latency ? "\(Format.count(count / max(elapsed.seconds, 1e-9))) round trips/s" : Format.rate(count / max(elapsed.seconds, 1e-9))
                Console.errorRaw(String(format: "\r  %.1f s  ", elapsed.seconds) + rate + "\u{1B}[K")
            }
        }
        if showProgress { Console.errorRaw("\r\u{1B}[K") }
        // Clients stop at the deadline; give them (and the data in flight) time to finish.
        if finished.wait(timeout: .now() + 30) != .success {
            throw ToolError.runtime("bench: clients did not finish within 30 s of the deadline")
        }
        if transport == .udp {
            // Let the last datagrams land before counting.
            Thread.sleep(forTimeInterval: 0.1)
        }
        if let failure = failure.withLock({ $0 }) { throw failure }
        var elapsed = duration
        if mode == .throughput && transport != .udp, let last = lastArrival.withLock({ $0 }) {
            elapsed = start.duration(to: last)
        }
        let bytes = received.load(ordering: .relaxed)
        let messages = mode == .latency ? progressCount.load(ordering: .relaxed)
            : (transport == .udp ? receivedMessages.load(ordering: .relaxed) : bytes / size)
        let lost = transport == .udp && mode == .throughput ? max(0, sentMessages.load(ordering: .relaxed) - receivedMessages.load(ordering: .relaxed)) : 0
        return BenchResult(
            engine: .threads, transport: transport, mode: mode, connections: connections, size: size, elapsed: elapsed,
            bytes: bytes, messages: messages, lost: lost, samples: samples.withLock { $0.sorted() })
    }

    // MARK: Servers

    private func acceptConnections(_ listener: Socket) {
        for _ in 0..<connections {
            guard let (connection, _) = try? listener.accept() else { return }
            _ = track(connection)
            if transport == .tcp { try? connection.set(.tcpNoDelay, true) }
            startThread("bench-server") { self.serveStream(connection) }
        }
    }

    private func serveStream(_ connection: Socket) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 256 * 1024), alignment: 16)
        defer { buffer.deallocate() }
        do {
            if mode == .throughput {
                while true {
                    let count = try connection.receive(into: buffer)
                    if count == 0 { break }
                    received.add(count, ordering: .relaxed)
                    progressCount.add(count, ordering: .relaxed)
                }
                let now = ContinuousClock.now
                lastArrival.withLock { $0 = max($0 ?? now, now) }
            } else {
                let message = UnsafeMutableRawBufferPointer(rebasing: buffer[..<size])
                while true {
                    let count = try connection.receiveAll(into: message)
                    if count < size { break }
                    try connection.sendAll(UnsafeRawBufferPointer(message))
                }
            }
            try? connection.shutdown(.write)
        } catch {
            if !go.isFired || ContinuousClock.now < deadline.withLock({ $0 }) { fail(error) }
        }
    }

    private func serveDatagrams(_ server: Socket) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            // Closing the socket at the end wakes this receive with an error.
            guard let (count, sender) = try? server.receiveFrom(into: buffer) else { return }
            received.add(count, ordering: .relaxed)
            receivedMessages.add(1, ordering: .relaxed)
            if mode == .throughput {
                progressCount.add(count, ordering: .relaxed)
            } else if let sender {
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
            socket = track(try Socket(server.domain, transport == .udp ? .datagram : .stream))
            try socket.connect(to: server)
            if transport == .tcp { try socket.set(.tcpNoDelay, true) }
            if transport == .udp && mode == .latency { try socket.set(.receiveTimeout, .milliseconds(200)) }
        } catch {
            fail(error)
            connected.leave()
            return
        }
        connected.leave()
        _ = go.wait(timeout: .seconds(60))
        let end = deadline.withLock { $0 }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        for index in 0..<size { buffer[index] = UInt8(truncatingIfNeeded: index) }
        let message = UnsafeRawBufferPointer(buffer)
        var local: [Double] = []
        local.reserveCapacity(100_000)
        let clock = ContinuousClock()
        do {
            while clock.now < end {
                let before = clock.now
                switch (mode, transport) {
                case (.throughput, .udp):
                    if (try? socket.send(message)) != nil { sentMessages.add(1, ordering: .relaxed) }
                case (.throughput, _):
                    try socket.sendAll(message)
                case (.latency, .udp):
                    _ = try socket.send(message)
                    // A lost datagram (the receive timed out) is not a round trip.
                    guard try Self.receiveUnlessTimedOut(socket, into: buffer) else { continue }
                    received.add(size, ordering: .relaxed)
                    progressCount.add(1, ordering: .relaxed)
                case (.latency, _):
                    try socket.sendAll(message)
                    guard try socket.receiveAll(into: buffer) == size else {
                        throw ToolError.runtime("bench: the server closed the connection early")
                    }
                    received.add(size, ordering: .relaxed)
                    progressCount.add(1, ordering: .relaxed)
                }
                if local.count < Self.sampleLimit {
                    let elapsed = before.duration(to: clock.now)
                    local.append(elapsed.seconds * 1e6)
                }
            }
            if transport != .udp {
                // Half-close, then wait for the server to finish reading and close.
                try socket.shutdown(.write)
                while try socket.receive(into: buffer) > 0 {}
            }
        } catch {
            fail(error)
        }
        samples.withLock { $0.append(contentsOf: local) }
    }
}
