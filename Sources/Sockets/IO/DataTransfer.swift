import Glibc
import SocketSyscalls
import SystemPackage

/// One datagram: its bytes, who sent it, and whether it was cut to fit.
///
/// Returned by ``Socket/receiveDatagram(maxLength:flags:)`` and by the async layer's
/// `receiveDatagram` and `datagrams()`.
public struct Datagram: Sendable, Hashable {
    /// The bytes (at most the maximum length asked for).
    public var bytes: [UInt8]
    /// Who sent it; `nil` when the kernel gave no address (a connected stream, an unnamed
    /// Unix socket).
    public var sender: SocketAddress?
    /// Whether it was longer than the maximum length and was cut (`MSG_TRUNC` in the
    /// kernel's flags): the rest of it is gone.
    public var isTruncated: Bool

    /// A datagram with its sender.
    public init(bytes: [UInt8], sender: SocketAddress?, isTruncated: Bool = false) {
        self.bytes = bytes
        self.sender = sender
        self.isTruncated = isTruncated
    }
}

extension Socket {
    // MARK: send

    /// Sends bytes: `send(2)` with `MSG_NOSIGNAL` added. Returns how many were sent, which on
    /// a stream socket can be fewer than asked (see
    /// ``sendAll(_:flags:)-(UnsafeRawBufferPointer,_)``).
    /// - Throws: ``SocketError``; on a non-blocking socket that would block,
    ///   ``SocketError/isWouldBlock`` is true.
    public func send(_ buffer: UnsafeRawBufferPointer, flags: MessageFlags = []) throws(SocketError) -> Int {
        guard let sent = try trySend(buffer, flags: flags) else { throw wouldBlockError("send", flags: flags, timeout: .send) }
        return sent
    }

    /// Sends bytes from an array. See ``send(_:flags:)-(UnsafeRawBufferPointer,_)``.
    public func send(_ bytes: [UInt8], flags: MessageFlags = []) throws(SocketError) -> Int {
        try bytes.withBytesTyped { (buffer) throws(SocketError) in try send(buffer, flags: flags) }
    }

    /// Sends bytes if the socket can take them now; `nil` when it would block.
    public func trySend(_ buffer: UnsafeRawBufferPointer, flags: MessageFlags = []) throws(SocketError) -> Int? {
        let flags = flags.union(.noSignal).rawValue
        return try call("send") { fd throws(Errno) in
            try Syscall.send(fd, buffer.baseAddress, buffer.count, flags: flags)
        }.value
    }

    /// Sends all of `buffer`, calling `send` again after each partial write. On a
    /// non-blocking socket (or with ``MessageFlags/dontWait``) it waits for writability with
    /// `poll(2)` between sends.
    /// - Throws: ``SocketError``; on a blocking socket whose `SO_SNDTIMEO` runs out, `EAGAIN`
    ///   (``SocketError/isWouldBlock``), part of the buffer having been sent.
    public func sendAll(_ buffer: UnsafeRawBufferPointer, flags: MessageFlags = []) throws(SocketError) {
        var offset = 0
        var waits = flags.contains(.dontWait) ? true : nil
        while offset < buffer.count {
            let rest = UnsafeRawBufferPointer(rebasing: buffer[offset...])
            if let sent = try trySend(rest, flags: flags) {
                offset += sent
                continue
            }
            // "Would block" on a blocking socket means its send timeout ran out: give up then,
            // rather than wait with no limit.
            if waits == nil { waits = try isNonBlocking() }
            guard waits == true else { throw wouldBlockError("send", flags: flags, timeout: .send) }
            _ = try waitUntil(.writable, deadline: nil, operation: "send")
        }
    }

    /// Sends all of `bytes`. See ``sendAll(_:flags:)-(UnsafeRawBufferPointer,_)``.
    public func sendAll(_ bytes: [UInt8], flags: MessageFlags = []) throws(SocketError) {
        try bytes.withBytesTyped { (buffer) throws(SocketError) in try sendAll(buffer, flags: flags) }
    }

    /// Sends the UTF-8 bytes of a string, all of them.
    public func sendAll(_ text: String) throws(SocketError) {
        try sendAll(Array(text.utf8))
    }

    /// Sends a datagram to an address: `sendto(2)` with `MSG_NOSIGNAL`.
    public func send(_ buffer: UnsafeRawBufferPointer, to address: SocketAddress, flags: MessageFlags = []) throws(SocketError) -> Int {
        guard let sent = try trySend(buffer, to: address, flags: flags) else {
            throw wouldBlockError("sendto", address: address.description, flags: flags, timeout: .send)
        }
        return sent
    }

    /// Sends a datagram from an array to an address.
    public func send(_ bytes: [UInt8], to address: SocketAddress, flags: MessageFlags = []) throws(SocketError) -> Int {
        try bytes.withBytesTyped { (buffer) throws(SocketError) in try send(buffer, to: address, flags: flags) }
    }

    /// `sendto(2)` if the socket can take the datagram now; `nil` when it would block.
    public func trySend(_ buffer: UnsafeRawBufferPointer, to address: SocketAddress, flags: MessageFlags = []) throws(SocketError) -> Int? {
        let flags = flags.union(.noSignal).rawValue
        return try call("sendto", address: address.description) { fd throws(Errno) in
            try address.withUnsafeSockaddr { (pointer, length) throws(Errno) in
                try Syscall.sendto(fd, buffer.baseAddress, buffer.count, flags: flags, pointer, length)
            }
        }.value
    }

    /// `write(2)` semantics on a socket. It is sent with `send(MSG_NOSIGNAL)`, which on a
    /// socket is the same call without the risk of `SIGPIPE`.
    public func write(_ buffer: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        guard let sent = try call("write", { fd throws(Errno) in
            try Syscall.send(fd, buffer.baseAddress, buffer.count, flags: MessageFlags.noSignal.rawValue)
        }).value else { throw wouldBlockError("write", timeout: .send) }
        return sent
    }

    /// Writes bytes from an array; see ``write(_:)-(UnsafeRawBufferPointer)``.
    public func write(_ bytes: [UInt8]) throws(SocketError) -> Int {
        try bytes.withBytesTyped { (buffer) throws(SocketError) in try write(buffer) }
    }

    // MARK: receive

    /// Receives into a buffer: `recv(2)`. Returns the number of bytes stored; 0 means the
    /// peer closed the stream (end-of-file) or an empty datagram arrived.
    ///
    /// With ``MessageFlags/truncated`` in `flags`, it returns what `recv(2)` does: a datagram's
    /// full length, which can be more than `buffer.count` (only `buffer.count` bytes were
    /// stored); on a TCP socket the bytes are discarded without being stored.
    /// - Throws: ``SocketError`` (`ECONNRESET` when the peer reset the connection;
    ///   ``SocketError/isWouldBlock`` on a non-blocking socket with nothing to read).
    public func receive(into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []) throws(SocketError) -> Int {
        guard let count = try tryReceive(into: buffer, flags: flags) else { throw wouldBlockError("recv", flags: flags, timeout: .receive) }
        return count
    }

    /// Receives at most `maxLength` bytes into a new array (empty at end-of-file).
    ///
    /// A datagram longer than `maxLength` is cut to fit; ``receiveDatagram(maxLength:flags:)``
    /// says when that happened.
    /// - Throws: ``SocketError``; ``SocketError/Reason/invalidArgument(_:)`` when `flags` holds
    ///   ``MessageFlags/truncated``, which makes the kernel report a datagram's full length
    ///   (more than the array holds) and discard stream data without copying it.
    public func receive(maxLength: Int, flags: MessageFlags = []) throws(SocketError) -> [UInt8] {
        let capacity = try Self.validLength(maxLength, operation: "recv")
        try Self.rejectTruncateFlag(flags, operation: "recv")
        return try [UInt8](unsafeUninitializedCapacity: capacity) { (buffer, count) throws(SocketError) in
            count = try receive(into: UnsafeMutableRawBufferPointer(buffer), flags: flags)
        }
    }

    /// `recv(2)` if there is something to read now; `nil` when it would block.
    public func tryReceive(into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []) throws(SocketError) -> Int? {
        try checkReceived(call("recv") { fd throws(Errno) in
            try Syscall.recv(fd, buffer.baseAddress, buffer.count, flags: flags.rawValue)
        }, "recv")
    }

    /// Receives exactly `buffer.count` bytes, looping on short reads. On a non-blocking socket
    /// it waits for readability with `poll(2)` between receives.
    /// - Returns: the bytes received, fewer only when the peer closed the stream first.
    /// - Throws: ``SocketError``; on a blocking socket whose `SO_RCVTIMEO` runs out, `EAGAIN`
    ///   (``SocketError/isWouldBlock``), what arrived so far being in the buffer.
    public func receive(exactly buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        var offset = 0
        var waits: Bool?
        while offset < buffer.count {
            guard let count = try tryReceive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[offset...])) else {
                if waits == nil { waits = try isNonBlocking() }
                guard waits == true else { throw wouldBlockError("recv", timeout: .receive) }
                _ = try waitUntil(.readable, deadline: nil, operation: "recv")
                continue
            }
            if count == 0 { break }
            offset += count
        }
        return offset
    }

    /// Receives exactly `count` bytes into a new array; fewer only when the peer closed the
    /// stream first. See ``receive(exactly:)-(UnsafeMutableRawBufferPointer)``.
    public func receive(exactly count: Int) throws(SocketError) -> [UInt8] {
        let capacity = try Self.validLength(count, operation: "recv")
        return try [UInt8](unsafeUninitializedCapacity: capacity) { (buffer, initialized) throws(SocketError) in
            initialized = try receive(exactly: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    /// Receives a datagram and its sender: `recvfrom(2)`.
    /// - Returns: the bytes stored (the datagram's real length with ``MessageFlags/truncated``
    ///   passed in `flags`) and the sender (`nil` for a connected stream).
    public func receiveFrom(into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []) throws(SocketError) -> (byteCount: Int, sender: SocketAddress?) {
        guard let result = try tryReceiveFrom(into: buffer, flags: flags) else {
            throw wouldBlockError("recvfrom", flags: flags, timeout: .receive)
        }
        return result
    }

    /// Receives one datagram of at most `maxLength` bytes, with its sender and whether it was
    /// cut to fit: `recvmsg(2)`, whose flags report the cut (`MSG_TRUNC`).
    ///
    /// On a stream socket it receives up to `maxLength` bytes (empty at end-of-file).
    /// - Throws: ``SocketError``; ``SocketError/Reason/invalidArgument(_:)`` when `flags` holds
    ///   ``MessageFlags/truncated`` (the result says so by itself).
    public func receiveDatagram(maxLength: Int = 65_536, flags: MessageFlags = []) throws(SocketError) -> Datagram {
        guard let datagram = try tryReceiveDatagram(maxLength: maxLength, flags: flags) else {
            throw wouldBlockError("recvmsg", flags: flags, timeout: .receive)
        }
        return datagram
    }

    /// ``receiveDatagram(maxLength:flags:)`` if a datagram is waiting; `nil` when it would block.
    public func tryReceiveDatagram(maxLength: Int = 65_536, flags: MessageFlags = []) throws(SocketError) -> Datagram? {
        let capacity = try Self.validLength(maxLength, operation: "recvmsg")
        try Self.rejectTruncateFlag(flags, operation: "recvmsg")
        var received: MessageHeaderResult?
        let bytes = try [UInt8](unsafeUninitializedCapacity: capacity) { (buffer, count) throws(SocketError) in
            var vector = iovec(iov_base: buffer.baseAddress, iov_len: capacity)
            received = try receiveMessageHeader(vectors: &vector, vectorCount: 1, control: nil, flags: flags)
            // Without MSG_TRUNC in flags, recvmsg never reports more than it stored.
            count = min(received?.byteCount ?? 0, capacity)
        }
        guard let received else { return nil }
        return Datagram(bytes: bytes, sender: received.sender, isTruncated: received.flags.contains(.truncated))
    }

    /// `recvfrom(2)` if a datagram is waiting; `nil` when it would block.
    public func tryReceiveFrom(into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []) throws(SocketError) -> (byteCount: Int, sender: SocketAddress?)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = try call("recvfrom") { fd throws(Errno) in
            try withUnsafeMutablePointer(to: &storage) { (pointer) throws(Errno) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(Errno) in
                    try Syscall.recvfrom(fd, buffer.baseAddress, buffer.count, flags: flags.rawValue, address, &length)
                }
            }
        }
        guard let count = try checkReceived(result, "recvfrom") else { return nil }
        let sender = length == 0 ? nil : withUnsafeBytes(of: &storage) { SocketAddress(sockaddr: $0.baseAddress!, length: length) }
        return (count, sender)
    }

    /// `read(2)`: receives into a buffer; 0 at end-of-file.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        guard let count = try checkReceived(call("read", { fd throws(Errno) in try Syscall.read(fd, buffer.baseAddress, buffer.count) }), "read") else {
            throw wouldBlockError("read", timeout: .receive)
        }
        return count
    }

    /// `read(2)` of at most `maxLength` bytes into a new array.
    public func read(maxLength: Int) throws(SocketError) -> [UInt8] {
        let capacity = try Self.validLength(maxLength, operation: "read")
        return try [UInt8](unsafeUninitializedCapacity: capacity) { (buffer, count) throws(SocketError) in
            count = try read(into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    /// Rejects `MSG_TRUNC` for a receive into a new array: with it, `recv` reports a datagram's
    /// full length (more than the array holds) and a TCP socket discards the bytes without
    /// storing them, so the array would claim bytes it never received.
    static func rejectTruncateFlag(_ flags: MessageFlags, operation: String) throws(SocketError) {
        guard flags.contains(.truncated) else { return }
        throw SocketError.invalid(
            operation, nil,
            "MSG_TRUNC cannot fill an array: use receiveDatagram(maxLength:), whose isTruncated says a datagram was cut, or receive(into:flags:) for the full length")
    }

    /// Rejects more buffers than one `sendmsg`/`recvmsg` takes (`IOV_MAX`).
    static func checkVectorCount(_ count: Int, operation: String) throws(SocketError) {
        guard count <= 1024 else {
            throw SocketError.invalid(operation, nil, "\(count) buffers; the limit (IOV_MAX) is 1024")
        }
    }

    /// Rejects a negative or absurd buffer length before any allocation or system call.
    static func validLength(_ length: Int, operation: String, limit: Int = 1 << 30) throws(SocketError) -> Int {
        guard length >= 0, length <= limit else {
            throw SocketError.invalid(operation, nil, "length \(length) is outside 0...\(limit)")
        }
        return length
    }
}
