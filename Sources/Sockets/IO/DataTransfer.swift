import Glibc
import SocketSyscalls
import SystemPackage

/// A datagram or message received with its sender and the kernel's flags.
public struct ReceivedMessage: Sendable {
    /// How many bytes were stored in the buffer(s).
    public var byteCount: Int
    /// The sender, for unconnected sockets; `nil` when the kernel gave none.
    public var sender: SocketAddress?
    /// Flags reported by the kernel: ``MessageFlags/truncated`` when the datagram was longer
    /// than the buffer, ``MessageFlags/controlTruncated``, ``MessageFlags/endOfRecord``, ...
    public var flags: MessageFlags
    /// The control (ancillary) data received, raw (`cmsghdr` records).
    public var control: [UInt8]

    public init(byteCount: Int, sender: SocketAddress?, flags: MessageFlags, control: [UInt8] = []) {
        self.byteCount = byteCount
        self.sender = sender
        self.flags = flags
        self.control = control
    }
}

extension Socket {
    // MARK: send

    /// Sends bytes: `send(2)` with `MSG_NOSIGNAL` added. Returns how many were sent, which on
    /// a stream socket can be fewer than asked (see ``sendAll(_:flags:)``).
    /// - Throws: ``SocketError``; on a non-blocking socket that would block,
    ///   ``SocketError/isWouldBlock`` is true.
    public func send(_ buffer: UnsafeRawBufferPointer, flags: MessageFlags = []) throws(SocketError) -> Int {
        guard let sent = try trySend(buffer, flags: flags) else { throw SocketError("send", errno: .resourceTemporarilyUnavailable) }
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
            guard waits == true else { throw SocketError("send", errno: .resourceTemporarilyUnavailable) }
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
            throw SocketError("sendto", address: address.description, errno: .resourceTemporarilyUnavailable)
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
        }).value else { throw SocketError("write", errno: .resourceTemporarilyUnavailable) }
        return sent
    }

    /// Writes bytes from an array; see ``write(_:)-(UnsafeRawBufferPointer)``.
    public func write(_ bytes: [UInt8]) throws(SocketError) -> Int {
        try bytes.withBytesTyped { (buffer) throws(SocketError) in try write(buffer) }
    }

    // MARK: receive

    /// Receives into a buffer: `recv(2)`. Returns the number of bytes stored; 0 means the
    /// peer closed the stream (end-of-file) or an empty datagram arrived.
    /// - Throws: ``SocketError`` (`ECONNRESET` when the peer reset the connection;
    ///   ``SocketError/isWouldBlock`` on a non-blocking socket with nothing to read).
    public func receive(into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []) throws(SocketError) -> Int {
        guard let count = try tryReceive(into: buffer, flags: flags) else { throw SocketError("recv", errno: .resourceTemporarilyUnavailable) }
        return count
    }

    /// Receives at most `maxLength` bytes into a new array (empty at end-of-file).
    public func receive(maxLength: Int, flags: MessageFlags = []) throws(SocketError) -> [UInt8] {
        let capacity = try Self.validLength(maxLength, operation: "recv")
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
    public func receiveAll(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        var offset = 0
        var waits: Bool?
        while offset < buffer.count {
            guard let count = try tryReceive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[offset...])) else {
                if waits == nil { waits = try isNonBlocking() }
                guard waits == true else { throw SocketError("recv", errno: .resourceTemporarilyUnavailable) }
                _ = try waitUntil(.readable, deadline: nil, operation: "recv")
                continue
            }
            if count == 0 { break }
            offset += count
        }
        return offset
    }

    /// Receives exactly `count` bytes into a new array; fewer only when the peer closed the
    /// stream first. See ``receiveAll(into:)``.
    public func receiveAll(count: Int) throws(SocketError) -> [UInt8] {
        let capacity = try Self.validLength(count, operation: "recv")
        return try [UInt8](unsafeUninitializedCapacity: capacity) { (buffer, initialized) throws(SocketError) in
            initialized = try receiveAll(into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    /// Receives a datagram and its sender: `recvfrom(2)`.
    /// - Returns: the bytes stored (the datagram's real length with ``MessageFlags/truncated``
    ///   passed in `flags`) and the sender (`nil` for a connected stream).
    public func receiveFrom(into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []) throws(SocketError) -> (byteCount: Int, sender: SocketAddress?) {
        guard let result = try tryReceiveFrom(into: buffer, flags: flags) else {
            throw SocketError("recvfrom", errno: .resourceTemporarilyUnavailable)
        }
        return result
    }

    /// Receives a datagram of at most `maxLength` bytes and its sender.
    public func receiveFrom(maxLength: Int, flags: MessageFlags = []) throws(SocketError) -> (bytes: [UInt8], sender: SocketAddress?) {
        let capacity = try Self.validLength(maxLength, operation: "recvfrom")
        var sender: SocketAddress?
        let bytes = try [UInt8](unsafeUninitializedCapacity: capacity) { (buffer, count) throws(SocketError) in
            let result = try receiveFrom(into: UnsafeMutableRawBufferPointer(buffer), flags: flags)
            count = min(result.byteCount, capacity)
            sender = result.sender
        }
        return (bytes, sender)
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
            throw SocketError("read", errno: .resourceTemporarilyUnavailable)
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

    // MARK: vectored and message I/O

    /// Gathers several buffers into one send: `sendmsg(2)` (`writev` semantics, with
    /// `MSG_NOSIGNAL`), optionally to an address and with raw control data.
    public func sendMessage(
        _ buffers: [UnsafeRawBufferPointer], to address: SocketAddress? = nil, control: [UInt8] = [], flags: MessageFlags = []
    ) throws(SocketError) -> Int {
        guard let sent = try trySendMessage(buffers, to: address, control: control, flags: flags) else {
            throw SocketError("sendmsg", address: address?.description, errno: .resourceTemporarilyUnavailable)
        }
        return sent
    }

    /// `sendmsg(2)` if the socket can take the message now; `nil` when it would block.
    public func trySendMessage(
        _ buffers: [UnsafeRawBufferPointer], to address: SocketAddress? = nil, control: [UInt8] = [], flags: MessageFlags = []
    ) throws(SocketError) -> Int? {
        guard buffers.count <= 1024 else {
            throw SocketError.invalid("sendmsg", nil, "\(buffers.count) buffers; the limit (IOV_MAX) is 1024")
        }
        let flags = flags.union(.noSignal).rawValue
        var vectors = buffers.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
        var storage = sockaddr_storage()
        let nameLength = address?.encode(into: &storage) ?? 0
        var control = control
        return try call("sendmsg", address: address?.description) { fd throws(Errno) in
            try vectors.withMutableBufferTyped { (iov) throws(Errno) in
                try control.withMutableBytesTyped { (controlBytes) throws(Errno) in
                    try withUnsafeMutablePointer(to: &storage) { (name) throws(Errno) in
                        var message = msghdr()
                        message.msg_name = address == nil ? nil : UnsafeMutableRawPointer(name)
                        message.msg_namelen = nameLength
                        message.msg_iov = iov.baseAddress
                        message.msg_iovlen = iov.count
                        message.msg_control = controlBytes.isEmpty ? nil : controlBytes.baseAddress
                        message.msg_controllen = controlBytes.count
                        return try Syscall.sendmsg(fd, &message, flags: flags)
                    }
                }
            }
        }.value
    }

    /// Scatters one receive into several buffers: `recvmsg(2)` (`readv` semantics), with the
    /// sender, the kernel's flags, and up to `controlCapacity` bytes of raw control data.
    public func receiveMessage(
        into buffers: [UnsafeMutableRawBufferPointer], controlCapacity: Int = 0, flags: MessageFlags = []
    ) throws(SocketError) -> ReceivedMessage {
        guard let message = try tryReceiveMessage(into: buffers, controlCapacity: controlCapacity, flags: flags) else {
            throw SocketError("recvmsg", errno: .resourceTemporarilyUnavailable)
        }
        return message
    }

    /// `recvmsg(2)` if a message is waiting; `nil` when it would block.
    public func tryReceiveMessage(
        into buffers: [UnsafeMutableRawBufferPointer], controlCapacity: Int = 0, flags: MessageFlags = []
    ) throws(SocketError) -> ReceivedMessage? {
        guard buffers.count <= 1024 else {
            throw SocketError.invalid("recvmsg", nil, "\(buffers.count) buffers; the limit (IOV_MAX) is 1024")
        }
        let controlCapacity = try Self.validLength(controlCapacity, operation: "recvmsg", limit: 1 << 20)
        var vectors = buffers.map { iovec(iov_base: $0.baseAddress, iov_len: $0.count) }
        var storage = sockaddr_storage()
        var control = [UInt8](repeating: 0, count: controlCapacity)
        var nameLength: socklen_t = 0
        var controlLength = 0
        var receivedFlags: Int32 = 0
        let result = try call("recvmsg") { fd throws(Errno) in
            try vectors.withMutableBufferTyped { (iov) throws(Errno) in
                try control.withMutableBytesTyped { (controlBytes) throws(Errno) in
                    try withUnsafeMutablePointer(to: &storage) { (name) throws(Errno) in
                        var message = msghdr()
                        message.msg_name = UnsafeMutableRawPointer(name)
                        message.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                        message.msg_iov = iov.baseAddress
                        message.msg_iovlen = iov.count
                        message.msg_control = controlBytes.isEmpty ? nil : controlBytes.baseAddress
                        message.msg_controllen = controlBytes.count
                        let result = try Syscall.recvmsg(fd, &message, flags: flags.rawValue)
                        nameLength = message.msg_namelen
                        controlLength = message.msg_controllen
                        receivedFlags = message.msg_flags
                        return result
                    }
                }
            }
        }
        guard let count = try checkReceived(result, "recvmsg") else { return nil }
        let sender = nameLength == 0 ? nil : withUnsafeBytes(of: &storage) { SocketAddress(sockaddr: $0.baseAddress!, length: nameLength) }
        control.removeSubrange(min(controlLength, control.count)...)
        return ReceivedMessage(byteCount: count, sender: sender, flags: MessageFlags(rawValue: receivedFlags), control: control)
    }

    /// Receives one message into a new array of at most `maxLength` bytes, with its sender
    /// and flags (``MessageFlags/truncated`` when the datagram did not fit).
    public func receiveMessage(maxLength: Int, flags: MessageFlags = []) throws(SocketError) -> (bytes: [UInt8], message: ReceivedMessage) {
        let capacity = try Self.validLength(maxLength, operation: "recvmsg")
        var message = ReceivedMessage(byteCount: 0, sender: nil, flags: [])
        let bytes = try [UInt8](unsafeUninitializedCapacity: capacity) { (buffer, count) throws(SocketError) in
            message = try receiveMessage(into: [UnsafeMutableRawBufferPointer(buffer)], flags: flags)
            count = min(message.byteCount, capacity)
        }
        return (bytes, message)
    }

    /// Rejects a negative or absurd buffer length before any allocation or system call.
    static func validLength(_ length: Int, operation: String, limit: Int = 1 << 30) throws(SocketError) -> Int {
        guard length >= 0, length <= limit else {
            throw SocketError.invalid(operation, nil, "length \(length) is outside 0...\(limit)")
        }
        return length
    }
}
