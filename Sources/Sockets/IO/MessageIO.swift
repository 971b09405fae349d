import Glibc
import CSocketShims
import SocketSyscalls
import SystemPackage

/// A reusable, caller-owned buffer for the control data of `recvmsg(2)`, so that receiving
/// control messages in a loop allocates nothing for the raw bytes.
///
/// Size it with ``ControlMessage/space(forPayloadBytes:)`` and
/// ``ControlMessage/space(forDescriptors:)``: what does not fit is cut off by the kernel
/// (`MSG_CTRUNC`, and descriptors that did not fit are closed). Use one buffer per thread.
public final class ControlMessageBuffer {
    /// The raw storage, aligned for `cmsghdr`.
    let storage: UnsafeMutableRawBufferPointer

    /// The number of bytes the kernel may fill.
    public var capacity: Int { storage.count }

    /// Room for the common receive-side messages together: packet info, TTL or hop limit,
    /// TOS or traffic class, a timestamp, an extended error with its offender, and a
    /// `UDP_GRO` size.
    public static let defaultCapacity = 512

    /// A buffer of `capacity` bytes.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` for a negative capacity or one
    ///   over 1 MiB.
    public init(capacity: Int = ControlMessageBuffer.defaultCapacity) throws(SocketError) {
        let capacity = try Socket.validLength(capacity, operation: "make control message buffer", limit: 1 << 20)
        storage = .allocate(byteCount: capacity, alignment: MemoryLayout<cmsghdr>.alignment)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        storage.deallocate()
    }
}

/// A message received with `recvmsg(2)`: how many bytes, from whom, the kernel's flags, and
/// the control messages that came with it.
public struct ReceivedMessage: Sendable {
    /// How many bytes were stored in the buffer(s).
    public var byteCount: Int
    /// The sender, for unconnected sockets; `nil` when the kernel gave none.
    public var sender: SocketAddress?
    /// Flags reported by the kernel: ``MessageFlags/truncated`` when the data did not fit,
    /// ``MessageFlags/controlTruncated`` when control data did not (descriptors that did not
    /// fit were closed), ``MessageFlags/endOfRecord``, ...
    public var flags: MessageFlags
    /// The control messages, in the order the kernel gave them; descriptors among them are
    /// owned (``ControlMessage/receivedDescriptors(_:)``).
    public var controlMessages: [ControlMessage]

    public init(byteCount: Int, sender: SocketAddress?, flags: MessageFlags, controlMessages: [ControlMessage] = []) {
        self.byteCount = byteCount
        self.sender = sender
        self.flags = flags
        self.controlMessages = controlMessages
    }

    /// All descriptors received (`SCM_RIGHTS`), owned by this message's values.
    public var descriptors: [ReceivedDescriptor] {
        controlMessages.flatMap { message -> [ReceivedDescriptor] in
            if case .receivedDescriptors(let fds) = message { return fds }
            return []
        }
    }

    /// Whether the data was cut short (`MSG_TRUNC`): a datagram longer than the buffers.
    public var isTruncated: Bool { flags.contains(.truncated) }

    /// Whether control data was cut short (`MSG_CTRUNC`).
    public var isControlTruncated: Bool { flags.contains(.controlTruncated) }
}

/// Descriptors received over a Unix socket with the bytes that carried them.
public struct ReceivedDescriptors: Sendable {
    /// The bytes received with the descriptors.
    public var bytes: [UInt8]
    /// The descriptors, each owned by its value (closed when it goes away unless taken).
    public var descriptors: [ReceivedDescriptor]
    /// Whether more descriptors were sent than were asked for: the extra ones were closed
    /// (by the kernel, or here), never left open.
    public var wereTruncated: Bool
}

/// `SIGPIPE` ignored once for the whole process, before the first call that cannot take
/// `MSG_NOSIGNAL` (`sendfile`, `splice`). Lazily initialised globals run exactly once.
enum BrokenPipeSignal {
    static let ignored: Void = Syscall.ignoreBrokenPipeSignal()
}

extension Socket {
    // MARK: sendmsg

    /// Gathers buffers into one message: `sendmsg(2)` with `MSG_NOSIGNAL` (`writev` semantics
    /// on a stream), optionally to an address and with control messages, encoded with
    /// ``ControlMessage/encode(_:into:)``.
    ///
    /// For example, pass ``ControlMessage/ipv4PacketInfo(_:)`` to choose the source address
    /// of a reply, ``ControlMessage/descriptors(_:)`` to pass descriptors, or
    /// ``ControlMessage/segmentSize(_:)`` to let the kernel split one buffer into datagrams.
    /// - Returns: the number of bytes sent.
    /// - Throws: ``SocketError``; a message the kernel would refuse is rejected before the call.
    public func sendMessage(
        _ buffers: [UnsafeRawBufferPointer], to address: SocketAddress? = nil, controlMessages: [ControlMessage] = [],
        flags: MessageFlags = []
    ) throws(SocketError) -> Int {
        guard let sent = try trySendMessage(buffers, to: address, controlMessages: controlMessages, flags: flags) else {
            throw wouldBlockError("sendmsg", address: address?.description, flags: flags, timeout: .send)
        }
        return sent
    }

    /// Sends bytes as one message (see ``sendMessage(_:to:controlMessages:flags:)-(_,_,_,_)``).
    public func sendMessage(
        _ bytes: [UInt8], to address: SocketAddress? = nil, controlMessages: [ControlMessage] = [], flags: MessageFlags = []
    ) throws(SocketError) -> Int {
        try bytes.withBytesTyped { (buffer) throws(SocketError) in
            try sendMessage([buffer], to: address, controlMessages: controlMessages, flags: flags)
        }
    }

    /// `sendmsg(2)` if the socket can take the message now; `nil` when it would block.
    public func trySendMessage(
        _ buffers: [UnsafeRawBufferPointer], to address: SocketAddress? = nil, controlMessages: [ControlMessage] = [],
        flags: MessageFlags = []
    ) throws(SocketError) -> Int? {
        try Self.checkVectorCount(buffers.count, operation: "sendmsg")
        let control = controlMessages.isEmpty ? [] : try ControlMessage.encode(controlMessages)
        var vectors = buffers.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
        return try vectors.withMutableBufferTyped { (iov) throws(SocketError) in
            try control.withBytesTyped { (controlBytes) throws(SocketError) in
                try sendMessageHeader(vectors: iov.baseAddress, vectorCount: iov.count, to: address, control: controlBytes, flags: flags)
            }
        }
    }

    /// One `sendmsg(2)` (with `MSG_NOSIGNAL`): the `msghdr` setup that every message send shares.
    func sendMessageHeader(
        vectors: UnsafeMutablePointer<iovec>?, vectorCount: Int, to address: SocketAddress?, control: UnsafeRawBufferPointer,
        flags: MessageFlags
    ) throws(SocketError) -> Int? {
        var storage = sockaddr_storage()
        let nameLength = address?.encode(into: &storage) ?? 0
        let flags = flags.union(.noSignal).rawValue
        return try call("sendmsg", address: address?.description) { fd throws(Errno) in
            try withUnsafeMutablePointer(to: &storage) { (name) throws(Errno) in
                var message = msghdr()
                message.msg_name = address == nil ? nil : UnsafeMutableRawPointer(name)
                message.msg_namelen = nameLength
                message.msg_iov = vectors
                message.msg_iovlen = vectorCount
                message.msg_control = control.isEmpty ? nil : UnsafeMutableRawPointer(mutating: control.baseAddress)
                message.msg_controllen = control.count
                return try Syscall.sendmsg(fd, &message, flags: flags)
            }
        }.value
    }

    /// What one `recvmsg(2)` reported besides the bytes.
    struct MessageHeaderResult {
        /// The byte count `recvmsg` returned (with `MSG_TRUNC` passed in, a datagram's full length).
        var byteCount: Int
        var sender: SocketAddress?
        /// The kernel's flags, less the `MSG_CMSG_CLOEXEC` it echoes back.
        var flags: MessageFlags
        /// How many bytes of control data the kernel wrote, never more than the buffer held.
        var controlLength: Int
    }

    /// One `recvmsg(2)`: the `msghdr` setup that every message receive shares. With room for
    /// control data it passes `MSG_CMSG_CLOEXEC`, so that received descriptors are
    /// close-on-exec; without, not (no descriptor can arrive, and `AF_PACKET` refuses the flag). `nil` when it would block. A zero-byte result from a socket that ``close()``
    /// shut down under the call is ``SocketError/Reason/closed``, not a message.
    func receiveMessageHeader(
        vectors: UnsafeMutablePointer<iovec>?, vectorCount: Int, control: UnsafeMutableRawBufferPointer?, flags: MessageFlags
    ) throws(SocketError) -> MessageHeaderResult? {
        var storage = sockaddr_storage()
        var nameLength: socklen_t = 0
        var controlLength = 0
        var receivedFlags: Int32 = 0
        let flags = (control?.isEmpty ?? true ? flags : flags.union(.controlCloseOnExec)).rawValue
        let result = try call("recvmsg") { fd throws(Errno) in
            try withUnsafeMutablePointer(to: &storage) { (name) throws(Errno) in
                var message = msghdr()
                message.msg_name = UnsafeMutableRawPointer(name)
                message.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                message.msg_iov = vectors
                message.msg_iovlen = vectorCount
                let controlCapacity = control?.count ?? 0
                message.msg_control = controlCapacity == 0 ? nil : control?.baseAddress
                message.msg_controllen = controlCapacity
                let result = try Syscall.recvmsg(fd, &message, flags: flags)
                nameLength = message.msg_namelen
                controlLength = min(message.msg_controllen, controlCapacity)
                receivedFlags = message.msg_flags
                return result
            }
        }
        guard let count = try checkReceived(result, "recvmsg") else { return nil }
        let sender = nameLength == 0 ? nil : withUnsafeBytes(of: &storage) { SocketAddress(sockaddr: $0.baseAddress!, length: nameLength) }
        return MessageHeaderResult(
            byteCount: count, sender: sender,
            // The kernel echoes MSG_CMSG_CLOEXEC, which this library passes, not the sender.
            flags: MessageFlags(rawValue: receivedFlags).subtracting(.controlCloseOnExec),
            controlLength: controlLength)
    }

    // MARK: recvmsg

    /// Receives one message: `recvmsg(2)` scattered into `buffers` (`readv` semantics), with
    /// its sender, the kernel's flags, and its control messages when `controlBuffer` gives
    /// them room (then always with `MSG_CMSG_CLOEXEC`).
    ///
    /// Descriptors (`SCM_RIGHTS`) come back as ``ControlMessage/receivedDescriptors(_:)``,
    /// owned: each is closed when its value goes away unless taken. Descriptors that did not
    /// fit in `controlBuffer` are closed by the kernel and ``MessageFlags/controlTruncated``
    /// is set; none is left open.
    /// - Throws: ``SocketError``; ``SocketError/isWouldBlock`` on a non-blocking socket with
    ///   nothing to read.
    public func receiveMessage(
        into buffers: [UnsafeMutableRawBufferPointer], controlBuffer: ControlMessageBuffer? = nil, flags: MessageFlags = []
    ) throws(SocketError) -> ReceivedMessage {
        guard let message = try tryReceiveMessage(into: buffers, controlBuffer: controlBuffer, flags: flags) else {
            throw wouldBlockError("recvmsg", flags: flags, timeout: .receive)
        }
        return message
    }

    /// Receives one message of at most `maxLength` bytes into a new array, with its sender,
    /// flags (``MessageFlags/truncated`` when the datagram did not fit) and control messages
    /// (see ``receiveMessage(into:controlBuffer:flags:)``).
    /// - Throws: ``SocketError``; ``SocketError/Reason/invalidArgument(_:)`` when `flags` holds
    ///   ``MessageFlags/truncated`` (the message's flags report the cut by themselves).
    public func receiveMessage(
        maxLength: Int, controlBuffer: ControlMessageBuffer? = nil, flags: MessageFlags = []
    ) throws(SocketError) -> (bytes: [UInt8], message: ReceivedMessage) {
        guard let received = try tryReceiveMessage(maxLength: maxLength, controlBuffer: controlBuffer, flags: flags) else {
            throw wouldBlockError("recvmsg", flags: flags, timeout: .receive)
        }
        return received
    }

    /// ``receiveMessage(maxLength:controlBuffer:flags:)`` if a message is waiting; `nil` when
    /// it would block.
    public func tryReceiveMessage(
        maxLength: Int, controlBuffer: ControlMessageBuffer? = nil, flags: MessageFlags = []
    ) throws(SocketError) -> (bytes: [UInt8], message: ReceivedMessage)? {
        let capacity = try Self.validLength(maxLength, operation: "recvmsg")
        try Self.rejectTruncateFlag(flags, operation: "recvmsg")
        var message: ReceivedMessage?
        let bytes = try [UInt8](unsafeUninitializedCapacity: capacity) { (buffer, count) throws(SocketError) in
            message = try tryReceiveMessage(into: [UnsafeMutableRawBufferPointer(buffer)], controlBuffer: controlBuffer, flags: flags)
            count = min(message?.byteCount ?? 0, capacity)
        }
        guard let message else { return nil }
        return (bytes, message)
    }

    /// `recvmsg(2)` if a message is waiting; `nil` when it would block. See
    /// ``receiveMessage(into:controlBuffer:flags:)``.
    public func tryReceiveMessage(
        into buffers: [UnsafeMutableRawBufferPointer], controlBuffer: ControlMessageBuffer? = nil, flags: MessageFlags = []
    ) throws(SocketError) -> ReceivedMessage? {
        try Self.checkVectorCount(buffers.count, operation: "recvmsg")
        var vectors = buffers.map { iovec(iov_base: $0.baseAddress, iov_len: $0.count) }
        let control = controlBuffer?.storage
        let received = try vectors.withMutableBufferTyped { (iov) throws(SocketError) in
            try receiveMessageHeader(vectors: iov.baseAddress, vectorCount: iov.count, control: control, flags: flags)
        }
        guard let received else { return nil }
        guard let control, received.controlLength > 0 else {
            return ReceivedMessage(byteCount: received.byteCount, sender: received.sender, flags: received.flags)
        }
        let controlMessages = try ControlMessage.decodeReceived(UnsafeRawBufferPointer(rebasing: control[..<received.controlLength]))
        return ReceivedMessage(
            byteCount: received.byteCount, sender: received.sender, flags: received.flags, controlMessages: controlMessages)
    }

    // MARK: Descriptor passing

    /// Sends descriptors over a Unix socket (`sendmsg(2)` with `SCM_RIGHTS`), carried by
    /// `bytes`; on a stream socket all of `bytes` is sent.
    ///
    /// The descriptors stay open and owned by the caller: the receiver gets duplicates.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` for no descriptors, more than 253,
    ///   a negative one, or empty `bytes` (a stream socket drops descriptors sent with no data).
    public func sendDescriptors(_ fds: [CInt], bytes: [UInt8] = [0]) throws(SocketError) {
        guard !bytes.isEmpty else {
            throw SocketError.invalid("sendmsg(SCM_RIGHTS)", nil, "at least one byte must carry the descriptors")
        }
        try bytes.withBytesTyped { (buffer) throws(SocketError) in
            var sent = 0
            while sent == 0 {
                if let count = try trySendMessage([buffer], controlMessages: [.descriptors(fds)]) {
                    sent = count
                } else {
                    _ = try waitUntil(.writable, deadline: nil, operation: "sendmsg")
                }
            }
            // The descriptors went with the first part; a stream socket may take the rest later.
            if sent < buffer.count { try sendAll(UnsafeRawBufferPointer(rebasing: buffer[sent...])) }
        }
    }

    /// Sends open sockets over a Unix socket (see ``sendDescriptors(_:bytes:)-(_,_)``). Each
    /// socket is held open during the call and stays owned by the caller.
    public func sendDescriptors(_ sockets: [Socket], bytes: [UInt8] = [0]) throws(SocketError) {
        var entered: [Socket] = []
        defer { for socket in entered { socket.handle.leave() } }
        for socket in sockets {
            guard socket.handle.enter() else { throw SocketError("sendmsg(SCM_RIGHTS)", reason: .closed) }
            entered.append(socket)
        }
        try sendDescriptors(sockets.map(\.fd), bytes: bytes)
    }

    /// Receives descriptors sent over a Unix socket (`recvmsg(2)` with `SCM_RIGHTS` and
    /// `MSG_CMSG_CLOEXEC`), with up to `maxLength` bytes that came with them.
    ///
    /// At most `maxCount` descriptors are returned; if more were sent, the rest are closed
    /// (none is leaked) and ``ReceivedDescriptors/wereTruncated`` is true. Other control
    /// messages (such as the credentials that `SO_PASSCRED` adds) are dropped.
    public func receiveDescriptors(maxCount: Int, maxLength: Int = 4096) throws(SocketError) -> ReceivedDescriptors {
        guard let received = try tryReceiveDescriptors(maxCount: maxCount, maxLength: maxLength) else {
            throw wouldBlockError("recvmsg", timeout: .receive)
        }
        return received
    }

    /// ``receiveDescriptors(maxCount:maxLength:)`` if a message is waiting; `nil` when it
    /// would block.
    public func tryReceiveDescriptors(maxCount: Int, maxLength: Int = 4096) throws(SocketError) -> ReceivedDescriptors? {
        guard (1...ControlMessageCode.maximumDescriptors).contains(maxCount) else {
            throw SocketError.invalid("recvmsg(SCM_RIGHTS)", nil, "maxCount \(maxCount) is outside 1...\(ControlMessageCode.maximumDescriptors)")
        }
        // Room for credentials too: with SO_PASSCRED set they come with every message, and
        // a buffer without room for them would cut the descriptors off.
        let capacity = ControlMessage.space(forDescriptors: maxCount) + ControlMessage.space(forPayloadBytes: 12)
        let buffer = try ControlMessageBuffer(capacity: capacity)
        guard let (bytes, message) = try tryReceiveMessage(maxLength: maxLength, controlBuffer: buffer) else { return nil }
        var descriptors = message.descriptors
        var truncated = message.isControlTruncated
        if descriptors.count > maxCount {
            // Alignment padding can make room for one more than asked: close the extras.
            for extra in descriptors[maxCount...] { try? extra.close() }
            descriptors.removeSubrange(maxCount...)
            truncated = true
        }
        return ReceivedDescriptors(bytes: bytes, descriptors: descriptors, wereTruncated: truncated)
    }
}

extension ControlMessage {
    /// Decodes control data just received, taking ownership of every `SCM_RIGHTS`
    /// descriptor first, so that any failure closes them instead of leaking them.
    static func decodeReceived(_ buffer: UnsafeRawBufferPointer) throws(SocketError) -> [ControlMessage] {
        var messages: [ControlMessage] = []
        try forEachRecord(in: buffer) { level, type, payload throws(SocketError) in
            if level == ControlMessageCode.socketLevel && type == ControlMessageCode.rights {
                let size = MemoryLayout<CInt>.size
                messages.append(.receivedDescriptors((0..<(payload.count / size)).map {
                    ReceivedDescriptor(adopting: payload.loadUnaligned(fromByteOffset: $0 * size, as: CInt.self))
                }))
            } else {
                messages.append(decodeRecord(level: level, type: type, payload: payload))
            }
        }
        return messages
    }
}
