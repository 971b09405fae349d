import Glibc
import Sockets
import SocketsAsync
import Synchronization
import Testing

/// A unique Unix socket path under /tmp, removed before use.
func uniqueSocketPath(_ tag: String) -> String {
    let path = "/tmp/sockets-async-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    unlink(path)
    return path
}

/// Deterministic pseudo-random bytes, different per seed.
func testBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}

/// The milliseconds since `start`.
func milliseconds(since start: ContinuousClock.Instant) -> Int {
    let elapsed = ContinuousClock.now - start
    return Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
}

/// Sets `SO_LINGER` to {on, 0}: closing then resets the connection.
func setZeroLinger(_ socket: Socket) throws {
    try socket.set(.linger, .zero)
}

/// Sets a small `SO_SNDBUF`, so that a send fills the buffer quickly.
func setSendBuffer(_ socket: Socket, _ size: Int) throws {
    try socket.set(.sendBufferSize, size)
}

/// The `SocketError` a task failed with, or `nil` when it succeeded or failed otherwise.
func failure<T>(_ result: Result<T, any Error>) -> SocketError? {
    if case .failure(let error) = result { return error as? SocketError }
    return nil
}

/// Waits (bounded: up to 5 s) until `count` operations wait on `socket`.
func untilWaiting(_ socket: AsyncSocket, _ count: Int = 1) async throws {
    for _ in 0..<5000 {
        if socket.waitingOperationCount >= count { return }
        try await Task.sleep(for: .milliseconds(1))
    }
    Issue.record("\(count) operation(s) never started waiting on \(socket)")
}
