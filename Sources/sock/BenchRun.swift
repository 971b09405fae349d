import Foundation
import Sockets
import Synchronization

/// One `sock bench` run, whichever engine drives it (``AsyncBenchmark`` on event loops,
/// ``SyncBenchmark`` on threads): what it was asked to do, what its server and clients
/// counted, its first failure, and the result made of them.
final class BenchRun: Sendable {
    let transport: Bench.Transport
    let mode: Bench.Mode
    /// Bytes per message.
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
    private let stopTime = LockedValue<ContinuousClock.Instant?>(nil)

    /// What a server reads a stream into: a message or 256 KiB, whichever is larger.
    var streamBufferSize: Int { max(size, 256 * 1024) }
    /// What a UDP server reads a datagram into.
    static let datagramBufferSize = 65_536
    /// The UDP server's `SO_RCVBUF`, large enough for a burst of datagrams.
    static let datagramReceiveBufferSize = 4 * 1024 * 1024

    init(transport: Bench.Transport, mode: Bench.Mode, size: Int, connections: Int, duration: Duration) {
        self.transport = transport
        self.mode = mode
        self.size = size
        self.connections = connections
        self.duration = duration
    }

    /// Allocates a client's message buffer (the caller deallocates it): `size` bytes of a
    /// counting pattern, sent and echoed back into.
    func makeClientBuffer() -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        for index in 0..<size { buffer[index] = UInt8(truncatingIfNeeded: index) }
        return buffer
    }

    /// A path for the Unix listener, unique to this process and run.
    static func temporaryUnixPath() -> String {
        "/tmp/sock-bench-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max)).sock"
    }

    // MARK: Clock and failures

    /// Starts the clock at `start`; the clients stop at the instant returned.
    func start(at start: ContinuousClock.Instant) -> ContinuousClock.Instant {
        let stop = start.advanced(by: duration)
        stopTime.withLock { $0 = stop }
        return stop
    }

    /// When the clients stop; `nil` while they connect.
    var stop: ContinuousClock.Instant? { stopTime.withLock { $0 } }

    /// Whether an error now counts as a failure (after the stop, peers closing is normal).
    var isRunning: Bool {
        guard let stop else { return true }
        return ContinuousClock.now < stop
    }

    /// Keeps the first failure.
    func fail(_ error: any Error) {
        failure.withLock { $0 = $0 ?? ToolError(error) }
    }

    var firstFailure: ToolError? { failure.withLock { $0 } }

    static let connectFailure = ToolError.runtime("bench: clients could not connect within 30 s")
    static let finishFailure = ToolError.runtime("bench: clients did not finish within 30 s of the deadline")
    static let closedEarly = ToolError.runtime("bench: the server closed the connection early")

    // MARK: Counting

    /// A stream server read `count` bytes (throughput).
    func streamReceived(_ count: Int) {
        received.add(count, ordering: .relaxed)
        progressCount.add(count, ordering: .relaxed)
    }

    /// A stream server saw its client's end-of-file: the last bytes arrived now.
    func streamEnded() {
        let now = ContinuousClock.now
        lastArrival.withLock { $0 = max($0 ?? now, now) }
    }

    /// The UDP server received a datagram of `count` bytes.
    func datagramReceived(_ count: Int) {
        received.add(count, ordering: .relaxed)
        receivedMessages.add(1, ordering: .relaxed)
        if mode == .throughput { progressCount.add(count, ordering: .relaxed) }
    }

    /// A client sent a datagram (throughput): what never arrives is counted as lost.
    func datagramSent() {
        sentMessages.add(1, ordering: .relaxed)
    }

    /// A client's message came back (latency).
    func roundTripCompleted() {
        received.add(size, ordering: .relaxed)
        progressCount.add(1, ordering: .relaxed)
    }

    /// Adds one client's timings.
    func add(_ timings: ClientTimings) {
        samples.withLock { $0.append(contentsOf: timings.values) }
    }

    // MARK: Reporting

    /// How long to wait before the next progress line: a quarter second, or what is left.
    func progressPause(until stop: ContinuousClock.Instant) -> Duration {
        min(.milliseconds(250), max(.milliseconds(1), ContinuousClock.now.duration(to: stop)))
    }

    /// Rewrites the live progress line on standard error.
    func showProgress(since start: ContinuousClock.Instant) {
        let elapsed = start.duration(to: .now)
        let count = Double(progressCount.load(ordering: .relaxed))
        let rate = mode == .latency
            ? "\(Format.count(count / max(elapsed.seconds, 1e-9))) round trips/s" : Format.rate(count / max(elapsed.seconds, 1e-9))
        Console.errorRaw(String(format: "\r  %.1f s  ", elapsed.seconds) + rate + "\u{1B}[K")
    }

    /// Erases the progress line.
    static func clearProgress() {
        Console.errorRaw("\r\u{1B}[K")
    }

    /// What was measured since `start`. A stream throughput run ends when the last bytes
    /// arrived; the others after `duration`.
    func result(engine: BenchResult.Engine, start: ContinuousClock.Instant) -> BenchResult {
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
            engine: engine, transport: transport, mode: mode, connections: connections, size: size, elapsed: elapsed,
            bytes: bytes, messages: messages, lost: lost, samples: samples.withLock { $0.sorted() })
    }
}

/// One client's timings in microseconds (round trips in latency mode, sends in throughput
/// mode), at most ``limit`` so that long runs stay within memory.
struct ClientTimings {
    static let limit = 2_000_000
    private(set) var values: [Double] = []

    init() {
        values.reserveCapacity(100_000)
    }

    /// Records the time since `before`.
    mutating func record(since before: ContinuousClock.Instant, clock: ContinuousClock) {
        guard values.count < Self.limit else { return }
        values.append(before.duration(to: clock.now).seconds * 1e6)
    }
}
