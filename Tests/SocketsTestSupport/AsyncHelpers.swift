public import SocketsAsync

// Helpers for tests of the async layer, shared by its test targets.

/// Runs `body` with a fresh event loop, shut down afterwards (its descriptors closed).
public func withLoop<T>(_ body: (EventLoop) async throws -> T) async throws -> T {
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

/// Echoes a stream connection until end-of-file, with a buffer allocated once.
public func echoStream(_ connection: AsyncSocket) async throws {
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
public func roundTrip(_ connection: AsyncSocket, _ payload: [UInt8]) async throws -> [UInt8] {
    async let sent: Void = connection.sendAll(payload)
    let received = try await connection.receive(exactly: payload.count)
    try await sent
    return received
}
