import SystemPackage

// The safe forms of the data calls: bytes to send as a `RawSpan` (any contiguous bytes an
// array, a slice or a span of your own lends), and received bytes written into an
// `OutputSpan<UInt8>` or appended to an array, in capacity it already has. They copy no more
// than the forms that take `Unsafe*BufferPointer`s, which they call.

extension Socket {
    // MARK: Sending spans

    /// Sends bytes: `send(2)` with `MSG_NOSIGNAL`. Returns how many were sent, which on a
    /// stream socket can be fewer than asked (see ``sendAll(_:flags:)-(RawSpan,_)``).
    ///
    /// ```swift
    /// let message: [UInt8] = Array("hello".utf8)
    /// let sent = try socket.send(message.span.bytes)
    /// ```
    public func send(_ bytes: RawSpan, flags: MessageFlags = []) throws(SocketError) -> Int {
        try bytes.withUnsafeBytes { (buffer) throws(SocketError) in try send(buffer, flags: flags) }
    }

    /// Sends bytes if the socket can take them now; `nil` when it would block.
    public func trySend(_ bytes: RawSpan, flags: MessageFlags = []) throws(SocketError) -> Int? {
        try bytes.withUnsafeBytes { (buffer) throws(SocketError) in try trySend(buffer, flags: flags) }
    }

    /// Sends all of `bytes`, calling `send` again after each partial write (see
    /// ``sendAll(_:flags:)-(UnsafeRawBufferPointer,_)``).
    public func sendAll(_ bytes: RawSpan, flags: MessageFlags = []) throws(SocketError) {
        try bytes.withUnsafeBytes { (buffer) throws(SocketError) in try sendAll(buffer, flags: flags) }
    }

    /// Sends a datagram to an address: `sendto(2)` with `MSG_NOSIGNAL`.
    public func send(_ bytes: RawSpan, to address: SocketAddress, flags: MessageFlags = []) throws(SocketError) -> Int {
        try bytes.withUnsafeBytes { (buffer) throws(SocketError) in try send(buffer, to: address, flags: flags) }
    }

    // MARK: Receiving into spans and arrays

    /// Receives into the free capacity of `output`: `recv(2)`, the bytes received appended to
    /// what `output` already holds. Returns how many arrived; 0 means end-of-file (or an empty
    /// datagram, or no free capacity).
    ///
    /// Arrays lend an `OutputSpan` for their spare capacity:
    ///
    /// ```swift
    /// var buffer: [UInt8] = []
    /// try buffer.append(addingCapacity: 4096) { output in
    ///     _ = try socket.receive(into: &output)
    /// }
    /// ```
    /// - Throws: ``SocketError``; ``SocketError/Reason/invalidArgument(_:)`` for
    ///   ``MessageFlags/truncated``, whose full length would not be what was stored.
    public func receive(into output: inout OutputSpan<UInt8>, flags: MessageFlags = []) throws(SocketError) -> Int {
        guard let count = try tryReceive(into: &output, flags: flags) else {
            throw wouldBlockError("recv", flags: flags, timeout: .receive)
        }
        return count
    }

    /// ``receive(into:flags:)-(OutputSpan<UInt8>,_)`` if there is something to read now; `nil`
    /// when it would block.
    public func tryReceive(into output: inout OutputSpan<UInt8>, flags: MessageFlags = []) throws(SocketError) -> Int? {
        try Self.rejectTruncateFlag(flags, operation: "recv")
        return try output.withUnsafeMutableBufferPointer { (buffer, initialized) throws(SocketError) -> Int? in
            let free = UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[initialized...]))
            guard let count = try tryReceive(into: free, flags: flags) else { return nil }
            initialized += count
            return count
        }
    }

    /// Receives at most `maxLength` bytes and appends them to `bytes`, in capacity the array
    /// already has when it has enough: a buffer reused across receives allocates nothing and
    /// is never zero-filled. Returns how many arrived; 0 at end-of-file.
    ///
    /// ```swift
    /// var buffer: [UInt8] = []
    /// buffer.reserveCapacity(4096)
    /// while try socket.receive(appendingTo: &buffer, maxLength: 4096) > 0 {
    ///     try socket.sendAll(buffer.span.bytes)
    ///     buffer.removeAll(keepingCapacity: true)
    /// }
    /// ```
    public func receive(appendingTo bytes: inout [UInt8], maxLength: Int, flags: MessageFlags = []) throws(SocketError) -> Int {
        guard let count = try tryReceive(appendingTo: &bytes, maxLength: maxLength, flags: flags) else {
            throw wouldBlockError("recv", flags: flags, timeout: .receive)
        }
        return count
    }

    /// ``receive(appendingTo:maxLength:flags:)`` if there is something to read now; `nil` when
    /// it would block (and `bytes` is unchanged).
    public func tryReceive(appendingTo bytes: inout [UInt8], maxLength: Int, flags: MessageFlags = []) throws(SocketError) -> Int? {
        let capacity = try Self.validLength(maxLength, operation: "recv")
        var received: Int?
        try bytes.append(addingCapacity: capacity) { (output) throws(SocketError) in
            received = try tryReceive(into: &output, flags: flags)
        }
        return received
    }
}
