public import Sockets

// The safe forms of the async data calls (see the core's SpanTransfer.swift): bytes to send as
// a `RawSpan`, received bytes appended to an array. (The core's receive into an
// `OutputSpan<UInt8>` has no async twin: arrays lend their output span only to synchronous
// code, so an async caller could not hold one.)

extension AsyncSocket {
    // MARK: Sending spans

    /// Sends bytes: `send(2)` with `MSG_NOSIGNAL`, waiting while the socket cannot take any.
    /// - Returns: how many were sent: on a stream socket possibly fewer than asked (see
    ///   ``sendAll(_:flags:deadline:)-(RawSpan,_,_)``).
    public func send(_ bytes: RawSpan, flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil) async throws(SocketError) -> Int {
        try await send(Self.lent(bytes), flags: flags, deadline: deadline)
    }

    /// Sends all of `bytes`, waiting for room as needed.
    ///
    /// ```swift
    /// try await connection.sendAll(reply.span.bytes)
    /// ```
    public func sendAll(_ bytes: RawSpan, flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil) async throws(SocketError) {
        try await sendAll(Self.lent(bytes), flags: flags, deadline: deadline)
    }

    /// Sends a datagram to an address: `sendto(2)` with `MSG_NOSIGNAL`.
    public func send(
        _ bytes: RawSpan, to address: SocketAddress, flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> Int {
        try await send(Self.lent(bytes), to: address, flags: flags, deadline: deadline)
    }

    /// The memory of a span lent to one of these calls. A span parameter is borrowed for the
    /// whole call, awaits included, so its memory stays valid until the call returns; the
    /// pointer never outlives the call.
    private static func lent(_ bytes: RawSpan) -> UnsafeRawBufferPointer {
        bytes.withUnsafeBytes { $0 }
    }

    // MARK: Receiving into spans and arrays

    /// Receives at most `maxLength` bytes and appends them to `bytes`, waiting while there is
    /// nothing to read, in capacity the array already has when it has enough: a buffer reused
    /// across receives allocates nothing and is never zero-filled. Returns how many arrived;
    /// 0 at end-of-file.
    ///
    /// ```swift
    /// var buffer: [UInt8] = []
    /// buffer.reserveCapacity(4096)
    /// while try await connection.receive(appendingTo: &buffer, maxLength: 4096) > 0 {
    ///     try await connection.sendAll(buffer.span.bytes)
    ///     buffer.removeAll(keepingCapacity: true)
    /// }
    /// ```
    public func receive(
        appendingTo bytes: inout [UInt8], maxLength: Int, flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> Int {
        let stream = isStream && !flags.contains(.peek)
        return try await perform(.read, "recv", deadline: deadline) { (drained: inout Bool) throws(SocketError) -> Int? in
            guard let count = try socket.tryReceive(appendingTo: &bytes, maxLength: maxLength, flags: flags) else { return nil }
            // A short stream read emptied the receive queue (see receive(into:)).
            drained = stream && count > 0 && count < maxLength
            return count
        }
    }
}
