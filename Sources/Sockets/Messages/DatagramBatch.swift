import Glibc
import CSocketShims
import SocketSyscalls
import SystemPackage

/// Reusable buffers for sending or receiving many datagrams in one system call
/// (`sendmmsg(2)`, `recvmmsg(2)`).
///
/// All memory (the datagrams, their addresses, their control data and the `mmsghdr` vector)
/// is allocated once, when the batch is made; filling, sending and receiving allocate nothing,
/// so a loop of ``Socket/receiveBatch(into:flags:)`` and ``Socket/sendBatch(_:from:flags:)``
/// runs without per-datagram allocation.
///
/// To send, ``append(_:to:controlMessages:)-([UInt8],_,_)`` datagrams, then
/// call ``Socket/sendBatch(_:from:flags:)``; ``removeAll()`` empties the batch for reuse.
/// After ``Socket/receiveBatch(into:flags:)``, the first ``count`` entries hold the datagrams,
/// read with ``withBytes(at:_:)``, ``address(at:)``, ``flags(at:)`` and
/// ``controlMessages(at:)``. A received batch can be sent straight back: each entry is
/// addressed to its sender (an echo).
///
/// A batch is used by one thread at a time.
public final class DatagramBatch {
    /// How many datagrams the batch holds (at most 1024, the kernel's `UIO_MAXIOV`).
    public let capacity: Int
    /// The largest datagram an entry holds; longer received datagrams are truncated and
    /// flagged ``MessageFlags/truncated``.
    public let maximumDatagramSize: Int
    /// The control-data room of each entry (0 for none).
    public let controlCapacity: Int
    /// How many entries are filled: appended for sending, or received.
    public private(set) var count = 0

    let headers: UnsafeMutablePointer<cshim_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private let names: UnsafeMutablePointer<sockaddr_storage>
    private let payload: UnsafeMutableRawPointer
    private let control: UnsafeMutableRawPointer
    /// The control bytes received per entry (the headers' lengths are reset so that a
    /// received batch can be sent back without its control data).
    private let receivedControlLengths: UnsafeMutablePointer<Int>

    /// The most entries one `sendmmsg`/`recvmmsg` takes (`UIO_MAXIOV`).
    public static let maximumCapacity = 1024

    /// Allocates a batch of `capacity` entries of `maximumDatagramSize` bytes, each with
    /// `controlCapacity` bytes for control messages.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` for a capacity outside 1...1024,
    ///   a datagram size outside 1...1 MiB, a control capacity outside 0...64 KiB, or a total
    ///   over 256 MiB.
    public init(capacity: Int, maximumDatagramSize: Int = 2048, controlCapacity: Int = 0) throws(SocketError) {
        guard (1...Self.maximumCapacity).contains(capacity) else {
            throw SocketError.invalid("make datagram batch", nil, "capacity \(capacity) is outside 1...\(Self.maximumCapacity)")
        }
        guard (1...(1 << 20)).contains(maximumDatagramSize) else {
            throw SocketError.invalid("make datagram batch", nil, "datagram size \(maximumDatagramSize) is outside 1...\(1 << 20)")
        }
        guard (0...(1 << 16)).contains(controlCapacity) else {
            throw SocketError.invalid("make datagram batch", nil, "control capacity \(controlCapacity) is outside 0...\(1 << 16)")
        }
        guard capacity * (maximumDatagramSize + controlCapacity) <= 1 << 28 else {
            throw SocketError.invalid("make datagram batch", nil, "\(capacity) entries of \(maximumDatagramSize + controlCapacity) bytes exceed 256 MiB")
        }
        self.capacity = capacity
        self.maximumDatagramSize = maximumDatagramSize
        self.controlCapacity = controlCapacity
        headers = .allocate(capacity: capacity)
        headers.initialize(repeating: cshim_mmsghdr(), count: capacity)
        vectors = .allocate(capacity: capacity)
        vectors.initialize(repeating: iovec(), count: capacity)
        names = .allocate(capacity: capacity)
        names.initialize(repeating: sockaddr_storage(), count: capacity)
        payload = .allocate(byteCount: capacity * maximumDatagramSize, alignment: 16)
        payload.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * maximumDatagramSize)
        control = .allocate(byteCount: max(1, capacity * controlCapacity), alignment: MemoryLayout<cmsghdr>.alignment)
        control.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, capacity * controlCapacity))
        receivedControlLengths = .allocate(capacity: capacity)
        receivedControlLengths.initialize(repeating: 0, count: capacity)
    }

    deinit {
        headers.deallocate()
        vectors.deallocate()
        names.deallocate()
        payload.deallocate()
        control.deallocate()
        receivedControlLengths.deallocate()
    }

    // MARK: Filling for send

    /// Empties the batch (keeping its memory) to fill it again.
    public func removeAll() {
        count = 0
    }

    /// Adds a datagram of `byteCount` bytes written in place by `fill`, without a copy.
    /// - Parameters:
    ///   - byteCount: the datagram's length, at most ``maximumDatagramSize``.
    ///   - address: the destination; `nil` on a connected socket.
    ///   - controlMessages: control messages for this datagram only (for example
    ///     ``ControlMessage/segmentSize(_:)`` or ``ControlMessage/ipv4PacketInfo(_:)``).
    ///   - fill: writes the datagram's bytes into the buffer it is given.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` when the batch is full, the
    ///   datagram is larger than ``maximumDatagramSize``, or the control messages do not fit
    ///   in ``controlCapacity``.
    public func append(
        byteCount: Int, to address: SocketAddress? = nil, controlMessages: [ControlMessage] = [],
        _ fill: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(SocketError) {
        let index = try nextIndex(byteCount: byteCount, controlMessages: controlMessages)
        fill(UnsafeMutableRawBufferPointer(start: payload + index * maximumDatagramSize, count: byteCount))
        try commit(index, byteCount: byteCount, to: address, controlMessages: controlMessages)
    }

    /// Adds a copy of a datagram (see ``append(byteCount:to:controlMessages:_:)``).
    public func append(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress? = nil, controlMessages: [ControlMessage] = []) throws(SocketError) {
        let index = try nextIndex(byteCount: bytes.count, controlMessages: controlMessages)
        if let base = bytes.baseAddress, !bytes.isEmpty {
            (payload + index * maximumDatagramSize).copyMemory(from: base, byteCount: bytes.count)
        }
        try commit(index, byteCount: bytes.count, to: address, controlMessages: controlMessages)
    }

    /// Adds a copy of a datagram from an array.
    public func append(_ bytes: [UInt8], to address: SocketAddress? = nil, controlMessages: [ControlMessage] = []) throws(SocketError) {
        try bytes.withBytesTyped { (buffer) throws(SocketError) in try append(buffer, to: address, controlMessages: controlMessages) }
    }

    private func nextIndex(byteCount: Int, controlMessages: [ControlMessage]) throws(SocketError) -> Int {
        guard count < capacity else {
            throw SocketError.invalid("append to datagram batch", nil, "the batch is full (\(capacity) datagrams)")
        }
        guard (0...maximumDatagramSize).contains(byteCount) else {
            throw SocketError.invalid("append to datagram batch", nil, "datagram of \(byteCount) bytes; entries hold 0...\(maximumDatagramSize)")
        }
        if !controlMessages.isEmpty {
            let space = ControlMessage.encodedSpace(of: controlMessages)
            guard space <= controlCapacity else {
                throw SocketError.invalid("append to datagram batch", nil, "control messages need \(space) bytes; entries hold \(controlCapacity)")
            }
        }
        return count
    }

    private func commit(_ index: Int, byteCount: Int, to address: SocketAddress?, controlMessages: [ControlMessage]) throws(SocketError) {
        var controlLength = 0
        if !controlMessages.isEmpty {
            let area = UnsafeMutableRawBufferPointer(start: control + index * controlCapacity, count: controlCapacity)
            controlLength = try ControlMessage.encode(controlMessages, into: area)
        }
        vectors[index] = iovec(iov_base: payload + index * maximumDatagramSize, iov_len: byteCount)
        var header = msghdr()
        if let address {
            header.msg_name = UnsafeMutableRawPointer(names + index)
            header.msg_namelen = address.encode(into: &names[index])
        }
        header.msg_iov = vectors + index
        header.msg_iovlen = 1
        header.msg_control = controlLength == 0 ? nil : control + index * controlCapacity
        header.msg_controllen = controlLength
        headers[index] = cshim_mmsghdr(msg_hdr: header, msg_len: 0)
        receivedControlLengths[index] = 0
        count = index + 1
    }

    // MARK: Receiving

    /// Points every entry at its full buffers before `recvmmsg`.
    func prepareForReceive() {
        for index in 0..<capacity {
            vectors[index] = iovec(iov_base: payload + index * maximumDatagramSize, iov_len: maximumDatagramSize)
            var header = msghdr()
            header.msg_name = UnsafeMutableRawPointer(names + index)
            header.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            header.msg_iov = vectors + index
            header.msg_iovlen = 1
            header.msg_control = controlCapacity == 0 ? nil : control + index * controlCapacity
            header.msg_controllen = controlCapacity
            headers[index] = cshim_mmsghdr(msg_hdr: header, msg_len: 0)
        }
        count = 0
    }

    /// Records `received` entries after `recvmmsg`: lengths for reading (and for sending
    /// back), control lengths kept aside, and any descriptors closed.
    func finishReceive(_ received: Int) {
        for index in 0..<received {
            let length = min(Int(headers[index].msg_len), maximumDatagramSize)
            vectors[index].iov_len = length
            let controlLength = min(headers[index].msg_hdr.msg_controllen, controlCapacity)
            receivedControlLengths[index] = controlLength
            headers[index].msg_hdr.msg_control = nil
            headers[index].msg_hdr.msg_controllen = 0
            // A batch cannot hand descriptors out: close any that arrived (SCM_RIGHTS).
            let area = UnsafeRawBufferPointer(start: control + index * controlCapacity, count: controlLength)
            try? ControlMessage.forEachRecord(in: area) { level, type, payload throws(SocketError) in
                guard level == ControlMessageCode.socketLevel, type == ControlMessageCode.rights else { return }
                let size = MemoryLayout<CInt>.size
                for offset in stride(from: 0, to: payload.count - size + 1, by: size) {
                    try? Syscall.close(payload.loadUnaligned(fromByteOffset: offset, as: CInt.self))
                }
            }
        }
        count = received
    }

    // MARK: Reading entries

    private func check(_ index: Int, _ operation: String) throws(SocketError) {
        guard (0..<count).contains(index) else {
            throw SocketError.invalid(operation, nil, "index \(index) is outside the batch's 0..<\(count) datagrams")
        }
    }

    /// The number of bytes in entry `index`.
    public func byteCount(at index: Int) throws(SocketError) -> Int {
        try check(index, "read datagram batch")
        return vectors[index].iov_len
    }

    /// Calls `body` with the bytes of entry `index`, in place (valid only inside `body`).
    public func withBytes<R>(at index: Int, _ body: (UnsafeRawBufferPointer) throws(SocketError) -> R) throws(SocketError) -> R {
        try check(index, "read datagram batch")
        return try body(UnsafeRawBufferPointer(start: payload + index * maximumDatagramSize, count: vectors[index].iov_len))
    }

    /// A copy of the bytes of entry `index`.
    public func bytes(at index: Int) throws(SocketError) -> [UInt8] {
        try check(index, "read datagram batch")
        return Array(UnsafeRawBufferPointer(start: payload + index * maximumDatagramSize, count: vectors[index].iov_len))
    }

    /// The address of entry `index`: after a receive, the sender; before a send, the
    /// destination (`nil` when none).
    public func address(at index: Int) throws(SocketError) -> SocketAddress? {
        try check(index, "read datagram batch")
        let header = headers[index].msg_hdr
        guard header.msg_name != nil, header.msg_namelen > 0 else { return nil }
        return SocketAddress(sockaddr: UnsafeRawPointer(names + index), length: header.msg_namelen)
    }

    /// The kernel's flags for received entry `index` (``MessageFlags/truncated`` when the
    /// datagram was longer than ``maximumDatagramSize``).
    public func flags(at index: Int) throws(SocketError) -> MessageFlags {
        try check(index, "read datagram batch")
        // The kernel echoes MSG_CMSG_CLOEXEC, which this library passes, not the sender.
        return MessageFlags(rawValue: headers[index].msg_hdr.msg_flags).subtracting(.controlCloseOnExec)
    }

    /// The control messages received with entry `index`. Descriptors (`SCM_RIGHTS`) are not
    /// returned: a batch closes them on arrival.
    public func controlMessages(at index: Int) throws(SocketError) -> [ControlMessage] {
        try check(index, "read datagram batch")
        let area = UnsafeRawBufferPointer(start: control + index * controlCapacity, count: receivedControlLengths[index])
        var messages: [ControlMessage] = []
        try ControlMessage.forEachRecord(in: area) { level, type, payload throws(SocketError) in
            if level == ControlMessageCode.socketLevel && type == ControlMessageCode.rights { return }
            messages.append(ControlMessage.decodeRecord(level: level, type: type, payload: payload))
        }
        return messages
    }
}

extension Socket {
    /// Sends the batch's datagrams from entry `start` on in one call: `sendmmsg(2)` with
    /// `MSG_NOSIGNAL`.
    /// - Returns: how many datagrams were sent, which can be fewer than asked (call again
    ///   from `start + sent`); on a non-blocking socket that would block, throws
    ///   ``SocketError/isWouldBlock``.
    public func sendBatch(_ batch: DatagramBatch, from start: Int = 0, flags: MessageFlags = []) throws(SocketError) -> Int {
        guard let sent = try trySendBatch(batch, from: start, flags: flags) else {
            throw wouldBlockError("sendmmsg", flags: flags, timeout: .send)
        }
        return sent
    }

    /// `sendmmsg(2)` if the socket can take a datagram now; `nil` when it would block.
    public func trySendBatch(_ batch: DatagramBatch, from start: Int = 0, flags: MessageFlags = []) throws(SocketError) -> Int? {
        guard (0...batch.count).contains(start) else {
            throw SocketError.invalid("sendmmsg", nil, "start \(start) is outside 0...\(batch.count)")
        }
        if start == batch.count { return 0 }
        let flags = flags.union(.noSignal).rawValue
        return try call("sendmmsg") { fd throws(Errno) in
            try Syscall.sendmmsg(fd, batch.headers + start, batch.count - start, flags: flags)
        }.value
    }

    /// Sends every datagram of the batch, in as many `sendmmsg(2)` calls as the socket needs
    /// (on a blocking socket each waits for room).
    public func sendAll(_ batch: DatagramBatch) throws(SocketError) {
        var sent = 0
        while sent < batch.count {
            sent += try sendBatch(batch, from: sent)
        }
    }

    /// Receives up to ``DatagramBatch/capacity`` datagrams in one call: `recvmmsg(2)` with
    /// `MSG_CMSG_CLOEXEC`.
    ///
    /// The default `flags`, ``MessageFlags/waitForOne``, wait for the first datagram and then
    /// take only those already queued; pass `[]` to wait until the batch is full.
    /// - Returns: the number received, also ``DatagramBatch/count``.
    public func receiveBatch(into batch: DatagramBatch, flags: MessageFlags = .waitForOne) throws(SocketError) -> Int {
        guard let received = try tryReceiveBatch(into: batch, flags: flags) else {
            throw wouldBlockError("recvmmsg", flags: flags, timeout: .receive)
        }
        return received
    }

    /// `recvmmsg(2)` if a datagram is waiting; `nil` when it would block.
    public func tryReceiveBatch(into batch: DatagramBatch, flags: MessageFlags = .waitForOne) throws(SocketError) -> Int? {
        batch.prepareForReceive()
        let flags = flags.union(.controlCloseOnExec).rawValue
        let result = try call("recvmmsg") { fd throws(Errno) in
            try Syscall.recvmmsg(fd, batch.headers, batch.capacity, flags: flags)
        }
        guard case .complete(var received) = result else { return nil }
        if handle.wasClosed, received > 0, batch.headers[received - 1].msg_len == 0 {
            // close() shut the socket down under a waiting recvmmsg: its wake-up counts as one
            // empty datagram, which no peer sent.
            received -= 1
            if received == 0 {
                batch.finishReceive(0)
                throw SocketError("recvmmsg", reason: .closed)
            }
        }
        batch.finishReceive(received)
        return received
    }
}
