import Glibc
import Sockets
import SocketsAsync
import Synchronization
import Testing

/// Runs `body` with a fresh event loop, shut down afterwards (its descriptors closed).
func withLoop<T>(_ body: (EventLoop) async throws -> T) async throws -> T {
    let loop = try EventLoop(name: "test")
    do {
        let result = try await body(loop)
        loop.shutdown()
        return result
    } catch {
        loop.shutdown()
        throw error
    }
}

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

/// Echoes a stream connection until end-of-file, with a buffer allocated once.
func echoStream(_ connection: AsyncSocket) async throws {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 1)
    defer { buffer.deallocate() }
    while true {
        let count = try await connection.receive(into: buffer)
        if count == 0 { return }
        try await connection.sendAll(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
    }
}

/// Sends `payload` and reads the same number of bytes back, concurrently (so that a payload
/// larger than the socket buffers cannot deadlock).
func roundTrip(_ connection: AsyncSocket, _ payload: [UInt8]) async throws -> [UInt8] {
    async let sent: Void = connection.sendAll(payload)
    let received = try await connection.receive(exactly: payload.count)
    try await sent
    return received
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

/// Runs a program to completion (`posix_spawn`, its output through a pipe) and returns its
/// standard output as text. (Foundation's `Process` would leave Dispatch's descriptors open.)
func runProcess(_ executable: String, _ arguments: [String]) throws -> String {
    var pipeEnds: [CInt] = [-1, -1]
    guard pipe(&pipeEnds) == 0 else { throw SocketError("pipe2", errno: .init(rawValue: errno)) }
    defer { close(pipeEnds[0]) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    let code = posix_spawn(&pid, executable, &actions, nil, argv, environ)
    close(pipeEnds[1])
    guard code == 0 else { throw SocketError("posix_spawn", errno: .init(rawValue: code)) }
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(pipeEnds[0], &chunk, chunk.count)
        if count > 0 { output += chunk[..<count]; continue }
        if count < 0 && errno == EINTR { continue }
        break
    }
    var status: CInt = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return String(decoding: output, as: UTF8.self)
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
