public import Sockets

extension AsyncSocket {
    // MARK: Receiving

    /// Receives into a buffer: `recv(2)`, waiting while there is nothing to read.
    /// - Returns: the bytes stored; 0 at end-of-file (or for an empty datagram).
    /// - Throws: `SocketError`: `ECONNRESET` when the peer reset the connection,
    ///   `SocketError.Reason.timedOut`, `ECANCELED`, `SocketError.Reason.closed`.
    public func receive(
        into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> Int {
        let stream = isStream && !flags.contains(.peek)
        return try await perform(.read, "recv", deadline: deadline) { (drained: inout Bool) throws(SocketError) -> Int? in
            guard let count = try socket.tryReceive(into: buffer, flags: flags) else { return nil }
            // A short stream read emptied the receive queue: wait for the next event rather
            // than try a recv that would return EAGAIN. (End-of-file stays readable.)
            drained = stream && count > 0 && count < buffer.count
            return count
        }
    }

    /// Receives at most `maxLength` bytes into a new array (empty at end-of-file).
    public func receive(
        maxLength: Int, flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> [UInt8] {
        let capacity = try validLength(maxLength, "recv")
        var bytes = [UInt8](repeating: 0, count: capacity)
        let stream = isStream && !flags.contains(.peek)
        let count = try await perform(.read, "recv", deadline: deadline) { (drained: inout Bool) throws(SocketError) -> Int? in
            guard let count = try bytes.withMutableBytesTyped({ (buffer) throws(SocketError) in
                try socket.tryReceive(into: buffer, flags: flags)
            }) else { return nil }
            drained = stream && count > 0 && count < capacity
            return count
        }
        bytes.removeSubrange(min(count, capacity)...)
        return bytes
    }

    /// Receives exactly `buffer.count` bytes, waiting as needed.
    /// - Returns: the bytes received: `buffer.count`, or fewer only when the peer closed the
    ///   stream first.
    public func receive(
        exactly buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> Int {
        var offset = 0
        while offset < buffer.count {
            let count = try await receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[offset...]), deadline: deadline)
            if count == 0 { break }
            offset += count
        }
        return offset
    }

    /// Receives exactly `count` bytes into a new array; fewer only when the peer closed the
    /// stream first.
    public func receive(exactly count: Int, deadline: ContinuousClock.Instant? = nil) async throws(SocketError) -> [UInt8] {
        let capacity = try validLength(count, "recv")
        var bytes = [UInt8](repeating: 0, count: capacity)
        var offset = 0
        while offset < capacity {
            let stream = isStream
            let received = try await perform(.read, "recv", deadline: deadline) { (drained: inout Bool) throws(SocketError) -> Int? in
                guard let received = try bytes.withMutableBytesTyped({ (buffer) throws(SocketError) in
                    try socket.tryReceive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[offset...]))
                }) else { return nil }
                drained = stream && received > 0 && received < capacity - offset
                return received
            }
            if received == 0 { break }
            offset += received
        }
        bytes.removeSubrange(offset...)
        return bytes
    }

    /// `read(2)` semantics: receives into a buffer, 0 at end-of-file. The same as
    /// ``receive(into:flags:deadline:)`` without flags.
    public func read(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant? = nil) async throws(SocketError) -> Int {
        try await receive(into: buffer, deadline: deadline)
    }

    /// `read(2)` of at most `maxLength` bytes into a new array (empty at end-of-file). The
    /// same as ``receive(maxLength:flags:deadline:)`` without flags.
    public func read(maxLength: Int, deadline: ContinuousClock.Instant? = nil) async throws(SocketError) -> [UInt8] {
        try await receive(maxLength: maxLength, deadline: deadline)
    }

    // MARK: Sending

    /// Sends bytes: `send(2)` with `MSG_NOSIGNAL`, waiting while the socket cannot take any.
    /// - Returns: how many were sent: on a stream socket possibly fewer than asked (see
    ///   ``sendAll(_:flags:deadline:)-(UnsafeRawBufferPointer,_,_)``).
    @inline(__always)  // into sendAll: one async frame less per message
    public func send(
        _ buffer: UnsafeRawBufferPointer, flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> Int {
        let stream = isStream
        return try await perform(.write, "send", deadline: deadline) { (drained: inout Bool) throws(SocketError) -> Int? in
            guard let sent = try socket.trySend(buffer, flags: flags) else { return nil }
            // A short stream write filled the send buffer.
            drained = stream && sent < buffer.count
            return sent
        }
    }

    /// Sends bytes from an array; see ``send(_:flags:deadline:)-(UnsafeRawBufferPointer,_,_)``.
    public func send(_ bytes: [UInt8], flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil) async throws(SocketError) -> Int {
        let stream = isStream
        return try await perform(.write, "send", deadline: deadline) { (drained: inout Bool) throws(SocketError) -> Int? in
            guard let sent = try bytes.withBytesTyped({ (buffer) throws(SocketError) in try socket.trySend(buffer, flags: flags) }) else {
                return nil
            }
            drained = stream && sent < bytes.count
            return sent
        }
    }

    /// Sends all of `buffer`, waiting for room as often as needed.
    /// - Throws: on the first failure; some bytes may have been sent by then.
    public func sendAll(
        _ buffer: UnsafeRawBufferPointer, flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) {
        var offset = 0
        repeat {
            offset += try await send(UnsafeRawBufferPointer(rebasing: buffer[offset...]), flags: flags, deadline: deadline)
        } while offset < buffer.count
    }

    /// Sends all of `bytes`; see ``sendAll(_:flags:deadline:)-(UnsafeRawBufferPointer,_,_)``.
    public func sendAll(_ bytes: [UInt8], flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil) async throws(SocketError) {
        var offset = 0
        let stream = isStream
        repeat {
            offset += try await perform(.write, "send", deadline: deadline) { (drained: inout Bool) throws(SocketError) -> Int? in
                guard let sent = try bytes.withBytesTyped({ (buffer) throws(SocketError) in
                    try socket.trySend(UnsafeRawBufferPointer(rebasing: buffer[offset...]), flags: flags)
                }) else { return nil }
                drained = stream && sent < bytes.count - offset
                return sent
            }
        } while offset < bytes.count
    }

    /// Sends the UTF-8 bytes of a string, all of them.
    public func sendAll(_ text: String, deadline: ContinuousClock.Instant? = nil) async throws(SocketError) {
        try await sendAll(Array(text.utf8), deadline: deadline)
    }

    /// `write(2)` semantics: the same as ``send(_:flags:deadline:)-(UnsafeRawBufferPointer,_,_)``
    /// without flags (`MSG_NOSIGNAL` is still added).
    public func write(_ buffer: UnsafeRawBufferPointer, deadline: ContinuousClock.Instant? = nil) async throws(SocketError) -> Int {
        try await send(buffer, deadline: deadline)
    }

    /// `write(2)` semantics for an array: the same as ``send(_:flags:deadline:)-([UInt8],_,_)``
    /// without flags.
    public func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant? = nil) async throws(SocketError) -> Int {
        try await send(bytes, deadline: deadline)
    }

    // MARK: Datagrams

    /// Sends a datagram to an address: `sendto(2)` with `MSG_NOSIGNAL`.
    public func send(
        _ buffer: UnsafeRawBufferPointer, to address: SocketAddress, flags: MessageFlags = [],
        deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> Int {
        try await perform(.write, "sendto", address: address.description, deadline: deadline) { _ throws(SocketError) in
            try socket.trySend(buffer, to: address, flags: flags)
        }
    }

    /// Sends a datagram from an array to an address.
    public func send(
        _ bytes: [UInt8], to address: SocketAddress, flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> Int {
        try await perform(.write, "sendto", address: address.description, deadline: deadline) { _ throws(SocketError) in
            try bytes.withBytesTyped { (buffer) throws(SocketError) in try socket.trySend(buffer, to: address, flags: flags) }
        }
    }

    /// Receives a datagram and its sender: `recvfrom(2)`.
    /// - Returns: the bytes stored (the datagram's full length when `flags` holds
    ///   `MessageFlags.truncated`) and the sender (`nil` when the kernel gives none).
    public func receiveFrom(
        into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> (byteCount: Int, sender: SocketAddress?) {
        try await perform(.read, "recvfrom", deadline: deadline) { _ throws(SocketError) in
            try socket.tryReceiveFrom(into: buffer, flags: flags)
        }
    }

    /// Receives one datagram of at most `maxLength` bytes (longer ones are cut, and say so):
    /// `recvmsg(2)`, waiting for one to arrive.
    public func receiveDatagram(maxLength: Int = 65_536, deadline: ContinuousClock.Instant? = nil) async throws(SocketError) -> Datagram {
        try await perform(.read, "recvmsg", deadline: deadline) { _ throws(SocketError) in
            try socket.tryReceiveDatagram(maxLength: maxLength)
        }
    }

    /// The datagrams arriving on this socket, as they come; the sequence ends when the
    /// socket is closed.
    ///
    /// ```swift
    /// for try await datagram in socket.datagrams() {
    ///     _ = try await socket.send(datagram.bytes, to: datagram.sender!)
    /// }
    /// ```
    public func datagrams(maxLength: Int = 65_536) -> Datagrams {
        Datagrams(socket: self, maxLength: maxLength)
    }

    func validLength(_ length: Int, _ operation: String) throws(SocketError) -> Int {
        guard length >= 0, length <= 1 << 30 else {
            throw SocketError.invalid(operation, nil, "length \(length) is outside 0...\(1 << 30)")
        }
        return length
    }
}

/// The datagrams arriving on a socket: an `AsyncSequence` that ends when the socket is closed
/// and throws the other errors.
public struct Datagrams: AsyncSequence, Sendable {
    public typealias Element = Datagram
    public typealias Failure = SocketError

    let socket: AsyncSocket
    let maxLength: Int

    /// An iterator that receives the next datagram on each call.
    public func makeAsyncIterator() -> Iterator {
        Iterator(socket: socket, maxLength: maxLength)
    }

    /// Receives datagrams one by one.
    public struct Iterator: AsyncIteratorProtocol {
        let socket: AsyncSocket
        let maxLength: Int

        /// The next datagram; `nil` once the socket is closed.
        public mutating func next() async throws(SocketError) -> Datagram? {
            do throws(SocketError) {
                return try await socket.receiveDatagram(maxLength: maxLength)
            } catch where error.reason == .closed {
                return nil
            }
        }

        /// The next datagram; `nil` once the socket is closed.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(SocketError) -> Datagram? {
            try await next()
        }
    }
}
