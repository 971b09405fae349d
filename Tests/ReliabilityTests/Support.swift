@_exported import SocketsTestSupport
import Foundation
import Glibc
import Sockets
import Synchronization
import Testing

// MARK: - Threads for blocking calls

/// Runs blocking code on a thread of its own (never on the cooperative pool, which has only
/// as many threads as processors); its result is taken with ``join(seconds:)`` or ``value``.
final class Background<T: Sendable>: Sendable {
    private let result = Mutex<Result<T, any Error>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () throws -> T) {
        let thread = Thread { [self] in
            let outcome = Result { try body() }
            result.withLock { $0 = outcome }
            done.signal()
        }
        thread.start()
    }

    /// Waits for the thread (blocking the caller) and returns what it returned.
    func join(seconds: Double = 60) throws -> T {
        guard done.wait(timeout: .now() + seconds) == .success else {
            throw CommandFailure("a background thread did not finish within \(seconds) s")
        }
        done.signal()
        guard let outcome = result.withLock({ $0 }) else { throw CommandFailure("no result") }
        return try outcome.get()
    }

    /// Waits for the thread without blocking a pool thread.
    var value: T {
        get async throws {
            let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, any Error>, Never>) in
                Thread { [self] in continuation.resume(returning: Result { try join(seconds: 120) }) }.start()
            }
            return try outcome.get()
        }
    }
}

// MARK: - Timing

/// Seconds since `start`, as a Double.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// Records an issue unless `actual` is within 10% of `asked` (both in seconds).
func expectWithinTenPercent(
    _ actual: Double, of asked: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    print("RELIABILITY \(what): \(String(format: "%.3f", actual)) s for \(asked) s asked")
    #expect(abs(actual - asked) <= asked * 0.1, "\(what): fired after \(actual) s, asked \(asked) s", sourceLocation: sourceLocation)
}

// MARK: - A stream of known bytes

/// A long, non-repeating-looking stream: byte `i` is `block[i % block.count]`, where `block` is
/// 1 MiB + 7 pseudo-random bytes from a seed. A receiver checks what it got at any offset
/// without keeping it (reordered, lost, duplicated or corrupted bytes all show).
struct PatternStream: Sendable {
    let block: [UInt8]

    init(seed: UInt64) {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        let words = (1 << 20) / 8 + 1
        var bytes = [UInt8]()
        bytes.reserveCapacity(words * 8)
        for _ in 0..<words {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            withUnsafeBytes(of: state) { bytes.append(contentsOf: $0) }
        }
        block = Array(bytes.prefix((1 << 20) + 7))
    }

    /// Whether `chunk` equals the stream's bytes from `offset` on.
    func matches(_ chunk: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        var done = 0
        return block.withUnsafeBytes { pattern in
            while done < chunk.count {
                let start = (offset + done) % pattern.count
                let length = min(chunk.count - done, pattern.count - start)
                guard memcmp(chunk.baseAddress! + done, pattern.baseAddress! + start, length) == 0 else { return false }
                done += length
            }
            return true
        }
    }

    /// Sends `count` bytes of the stream on `socket` (blocking, in chunks of up to 256 KiB).
    func send(_ count: Int, on socket: Socket) throws {
        var sent = 0
        try block.withUnsafeBytes { pattern in
            while sent < count {
                let start = sent % pattern.count
                let length = min(count - sent, pattern.count - start, 256 << 10)
                try socket.sendAll(UnsafeRawBufferPointer(rebasing: pattern[start..<(start + length)]))
                sent += length
            }
        }
    }

    /// Receives until end-of-file and returns how many bytes came and whether all matched.
    func receive(on socket: Socket) throws -> (count: Int, intact: Bool) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
        defer { buffer.deallocate() }
        var total = 0
        var intact = true
        while true {
            let count = try socket.receive(into: buffer)
            if count == 0 { return (total, intact) }
            if intact && !matches(UnsafeRawBufferPointer(rebasing: buffer[..<count]), at: total) { intact = false }
            total += count
        }
    }
}

// MARK: - A relay that holds data back

/// A TCP relay on loopback that holds every chunk for `delay` before passing it on (each way):
/// a slow path without `netem`. One connection; ``stop()`` closes everything.
final class DelayRelay: Sendable {
    let address: SocketAddress
    private let listener: Socket
    private let sockets = Mutex<[Socket]>([])
    private let threads = Mutex<[Background<Void>]>([])

    init(to target: SocketAddress, delay: Duration) throws {
        listener = try Socket(.inet, .stream)
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen()
        address = try listener.localAddress()
        let accepter = Background { [self] in
            guard let (inside, _) = try? listener.accept() else { return }
            let outside = try Socket(.inet, .stream)
            sockets.withLock { $0 += [inside, outside] }
            try outside.connect(to: target, timeout: .seconds(5))
            for (from, to) in [(inside, outside), (outside, inside)] {
                let pump = Background {
                    while let bytes = try? from.receive(maxLength: 65_536), !bytes.isEmpty {
                        Thread.sleep(forTimeInterval: Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
                        guard (try? to.sendAll(bytes)) != nil else { break }
                    }
                    try? to.shutdown(.write)
                }
                threads.withLock { $0.append(pump) }
            }
        }
        threads.withLock { $0.append(accepter) }
    }

    /// Closes the relay's sockets (which wakes its threads) and waits for its threads.
    func stop() throws {
        try? listener.close()
        for socket in sockets.withLock({ $0 }) { try? socket.close() }
        // The accepter may have added pumps meanwhile: wait for it first, then close again.
        while let first = threads.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
            _ = try? first.join(seconds: 10)
            for socket in sockets.withLock({ $0 }) { try? socket.close() }
        }
    }
}

extension NetworkNamespace {
    /// Stands for the test process's own namespace in ``listener(in:on:)``.
    static var host: NetworkNamespace? { nil }
}

/// Creates a socket with the calling thread inside `namespace` (`nil`: where it is).
func socket(in namespace: NetworkNamespace?, _ domain: SocketDomain = .inet, _ type: SocketType = .stream) throws -> Socket {
    guard let namespace else { return try Socket(domain, type) }
    return try namespace.enter { try Socket(domain, type) }
}

/// A listening TCP socket in `namespace` on `address`, port 0; returns it and its address.
func listener(in namespace: NetworkNamespace?, on address: String) throws -> (Socket, SocketAddress) {
    let socket = try socket(in: namespace)
    try socket.set(.reuseAddress, true)
    try socket.bind(to: SocketAddress("\(address):0"))
    try socket.listen(backlog: 64)
    return (socket, try socket.localAddress())
}
