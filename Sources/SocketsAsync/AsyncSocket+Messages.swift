public import Sockets

extension AsyncSocket {
    // MARK: Batches of datagrams

    /// Sends the batch's datagrams from entry `start` on: `sendmmsg(2)` with `MSG_NOSIGNAL`,
    /// waiting for room to send at least one.
    /// - Returns: how many were sent, which can be fewer than asked (call again from
    ///   `start + sent`); `sendAll` on a batch loops until all are sent.
    public func sendBatch(
        _ batch: DatagramBatch, from start: Int = 0, flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> Int {
        try await perform(.write, "sendmmsg", deadline: deadline) { _ throws(SocketError) in
            try socket.trySendBatch(batch, from: start, flags: flags)
        }
    }

    /// Sends every datagram of the batch, in as many `sendmmsg(2)` calls as the socket needs.
    public func sendAll(_ batch: DatagramBatch, deadline: ContinuousClock.Instant? = nil) async throws(SocketError) {
        var sent = 0
        while sent < batch.count {
            sent += try await sendBatch(batch, from: sent, deadline: deadline)
        }
    }

    /// Receives up to `DatagramBatch.capacity` datagrams in one `recvmmsg(2)` call (with
    /// `MSG_CMSG_CLOEXEC`), waiting for the first to arrive; those already queued behind it
    /// come in the same call.
    /// - Returns: the number received, also `DatagramBatch.count`.
    public func receiveBatch(
        into batch: DatagramBatch, flags: MessageFlags = .waitForOne, deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> Int {
        try await perform(.read, "recvmmsg", deadline: deadline) { (drained: inout Bool) throws(SocketError) -> Int? in
            guard let received = try socket.tryReceiveBatch(into: batch, flags: flags) else { return nil }
            // Fewer than the batch holds: the queue is empty now; wait for the next event.
            drained = received < batch.capacity
            return received
        }
    }
}

extension AsyncSocket {
    // MARK: Messages

    /// Gathers buffers into one message (`sendmsg(2)` with `MSG_NOSIGNAL`), optionally to an
    /// address and with control messages, waiting for room: descriptors
    /// (`ControlMessage.descriptors(_:)`), the source address of a reply
    /// (`ControlMessage.ipv4PacketInfo(_:)`), a GSO segment size, and so on.
    /// - Returns: the number of bytes sent.
    public func sendMessage(
        _ buffers: [UnsafeRawBufferPointer], to address: SocketAddress? = nil, controlMessages: [ControlMessage] = [],
        flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> Int {
        try await perform(.write, "sendmsg", address: address?.description, deadline: deadline) { _ throws(SocketError) in
            try socket.trySendMessage(buffers, to: address, controlMessages: controlMessages, flags: flags)
        }
    }

    /// Sends bytes as one message (see ``sendMessage(_:to:controlMessages:flags:deadline:)-(_,_,_,_,_)``).
    public func sendMessage(
        _ bytes: [UInt8], to address: SocketAddress? = nil, controlMessages: [ControlMessage] = [],
        flags: MessageFlags = [], deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> Int {
        try await perform(.write, "sendmsg", address: address?.description, deadline: deadline) { _ throws(SocketError) in
            try bytes.withBytesTyped { (buffer) throws(SocketError) in
                try socket.trySendMessage([buffer], to: address, controlMessages: controlMessages, flags: flags)
            }
        }
    }

    /// Receives one message (`recvmsg(2)`) into `buffers`, with its sender, flags and, when
    /// `controlBuffer` gives them room, its control messages (then with `MSG_CMSG_CLOEXEC`),
    /// waiting for one to arrive. Received descriptors are owned by the result: those that did
    /// not fit were closed by the kernel (the result says `ReceivedMessage.isControlTruncated`).
    public func receiveMessage(
        into buffers: [UnsafeMutableRawBufferPointer], controlBuffer: ControlMessageBuffer? = nil, flags: MessageFlags = [],
        deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> ReceivedMessage {
        try await perform(.read, "recvmsg", deadline: deadline) { _ throws(SocketError) in
            try socket.tryReceiveMessage(into: buffers, controlBuffer: controlBuffer, flags: flags)
        }
    }

    /// Receives one message of at most `maxLength` bytes into a new array, with its sender,
    /// flags and control messages (see ``receiveMessage(into:controlBuffer:flags:deadline:)``).
    public func receiveMessage(
        maxLength: Int, controlBuffer: ControlMessageBuffer? = nil, flags: MessageFlags = [],
        deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> (bytes: [UInt8], message: ReceivedMessage) {
        try await perform(.read, "recvmsg", deadline: deadline) { _ throws(SocketError) in
            try socket.tryReceiveMessage(maxLength: maxLength, controlBuffer: controlBuffer, flags: flags)
        }
    }

    // MARK: Descriptor passing

    /// Sends descriptors over a Unix socket (`sendmsg(2)` with `SCM_RIGHTS`), carried by
    /// `bytes`, waiting for room; on a stream socket all of `bytes` is sent. The descriptors
    /// stay open and owned by the caller: the receiver gets duplicates.
    /// - Throws: `SocketError.Reason.invalidArgument(_:)` for no descriptors, more than 253,
    ///   a negative one, or empty `bytes`.
    public func sendDescriptors(_ fds: [CInt], bytes: [UInt8] = [0], deadline: ContinuousClock.Instant? = nil) async throws(SocketError) {
        guard !bytes.isEmpty else {
            throw SocketError.invalid("sendmsg(SCM_RIGHTS)", nil, "at least one byte must carry the descriptors")
        }
        let sent = try await sendMessage(bytes, controlMessages: [.descriptors(fds)], deadline: deadline)
        // The descriptors went with the first part; a stream socket may take the rest later.
        if sent < bytes.count { try await sendAll(Array(bytes[sent...]), deadline: deadline) }
    }

    /// Receives descriptors sent over a Unix socket, with up to `maxLength` bytes that came
    /// with them, waiting for them to arrive: `Socket.receiveDescriptors(maxCount:maxLength:)`.
    public func receiveDescriptors(
        maxCount: Int, maxLength: Int = 4096, deadline: ContinuousClock.Instant? = nil
    ) async throws(SocketError) -> ReceivedDescriptors {
        try await perform(.read, "recvmsg", deadline: deadline) { _ throws(SocketError) in
            try socket.tryReceiveDescriptors(maxCount: maxCount, maxLength: maxLength)
        }
    }
}
