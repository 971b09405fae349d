import Glibc
import CSocketShims
import SocketSyscalls
public import SystemPackage
import Synchronization

// Just enough netlink framing to talk to the kernel through an AF_NETLINK socket: message
// headers (`nlmsghdr`) and attributes (`rtattr`/`nlattr`), both 4-byte aligned. Like the
// control-message decoder, the decoders check every length against the bytes left.

/// `nlmsg_flags` (`NLM_F_*`).
public struct NetlinkMessageFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `NLM_F_REQUEST`: a request (every message to the kernel).
    public static let request = NetlinkMessageFlags(rawValue: UInt16(NLM_F_REQUEST))
    /// `NLM_F_MULTI`: part of a multipart reply, ended by `NLMSG_DONE`.
    public static let multipart = NetlinkMessageFlags(rawValue: UInt16(NLM_F_MULTI))
    /// `NLM_F_ACK`: ask for an acknowledgement.
    public static let acknowledge = NetlinkMessageFlags(rawValue: UInt16(NLM_F_ACK))
    /// `NLM_F_ECHO`: echo this request.
    public static let echo = NetlinkMessageFlags(rawValue: UInt16(NLM_F_ECHO))
    /// `NLM_F_DUMP_INTR`: the dump was interrupted by a change; it may be inconsistent.
    public static let dumpInterrupted = NetlinkMessageFlags(rawValue: UInt16(NLM_F_DUMP_INTR))
    /// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`): return every object of the kind asked for.
    public static let dump = NetlinkMessageFlags(rawValue: UInt16(NLM_F_DUMP))
}

/// One netlink message: an `nlmsghdr` and its payload.
public struct NetlinkMessage: Hashable, Sendable {
    /// The type (`nlmsg_type`): ``done``, ``error``, or a family's own, such as
    /// `RTM_NEWLINK` (16) or `RTM_GETLINK` (18) for `NETLINK_ROUTE`.
    public var type: UInt16
    /// The flags (`nlmsg_flags`).
    public var flags: NetlinkMessageFlags
    /// The sequence number, echoed in replies (`nlmsg_seq`).
    public var sequence: UInt32
    /// The sender's port id (`nlmsg_pid`): 0 from the kernel.
    public var portID: UInt32
    /// The payload after the header.
    public var payload: [UInt8]

    public init(type: UInt16, flags: NetlinkMessageFlags = .request, sequence: UInt32 = 0, portID: UInt32 = 0, payload: [UInt8] = []) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
        self.payload = payload
    }

    /// `NLMSG_NOOP`.
    public static let noop = UInt16(NLMSG_NOOP)
    /// `NLMSG_ERROR`: an error, or with error 0 an acknowledgement.
    public static let error = UInt16(NLMSG_ERROR)
    /// `NLMSG_DONE`: the end of a multipart reply.
    public static let done = UInt16(NLMSG_DONE)

    static let headerLength = MemoryLayout<nlmsghdr>.size

    /// For an ``error`` message, the errno it reports: `nil` for an acknowledgement (0) or
    /// for another type.
    public var errorCode: Errno? {
        guard type == Self.error, payload.count >= 4 else { return nil }
        let code = payload.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
        // The kernel sends the negated errno.
        return code == 0 ? nil : Errno(rawValue: CInt(clamping: code.magnitude))
    }

    /// The message in the kernel's layout, padded to 4 bytes.
    public var encoded: [UInt8] {
        let length = Self.headerLength + payload.count
        var header = nlmsghdr(
            nlmsg_len: UInt32(truncatingIfNeeded: length), nlmsg_type: type, nlmsg_flags: flags.rawValue,
            nlmsg_seq: sequence, nlmsg_pid: portID)
        var bytes = withUnsafeBytes(of: &header) { Array($0) } + payload
        bytes += Array(repeating: 0, count: netlinkAligned(length) - length)
        return bytes
    }

    /// Splits a datagram received from a netlink socket into its messages.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` when a length is shorter than the
    ///   header or runs past the end; nothing outside `buffer` is read.
    public static func decode(_ buffer: UnsafeRawBufferPointer) throws(SocketError) -> [NetlinkMessage] {
        var messages: [NetlinkMessage] = []
        var offset = 0
        while offset < buffer.count {
            let left = buffer.count - offset
            guard left >= headerLength else {
                throw SocketError.invalid("decode netlink messages", nil, "\(left) bytes at offset \(offset) are too few for an nlmsghdr")
            }
            let header = buffer.loadUnaligned(fromByteOffset: offset, as: nlmsghdr.self)
            let length = Int(header.nlmsg_len)
            guard length >= headerLength, length <= left else {
                throw SocketError.invalid("decode netlink messages", nil, "nlmsg_len \(length) at offset \(offset) does not fit the \(left) bytes left")
            }
            messages.append(NetlinkMessage(
                type: header.nlmsg_type, flags: NetlinkMessageFlags(rawValue: header.nlmsg_flags),
                sequence: header.nlmsg_seq, portID: header.nlmsg_pid,
                payload: Array(buffer[(offset + headerLength)..<(offset + length)])))
            offset += min(netlinkAligned(length), left)
        }
        return messages
    }

    /// Splits netlink messages held in an array (see ``decode(_:)-(UnsafeRawBufferPointer)``).
    public static func decode(_ bytes: [UInt8]) throws(SocketError) -> [NetlinkMessage] {
        try bytes.withBytesTyped { (buffer) throws(SocketError) in try decode(buffer) }
    }
}

/// A netlink attribute (`struct rtattr` / `struct nlattr`): a type and a payload.
public struct NetlinkAttribute: Hashable, Sendable {
    /// The attribute type, such as `IFLA_IFNAME` (3) in a link message.
    public var type: UInt16
    /// The payload.
    public var payload: [UInt8]

    public init(type: UInt16, payload: [UInt8]) {
        self.type = type
        self.payload = payload
    }

    /// The payload as a NUL-terminated string.
    public var stringValue: String {
        String(decoding: payload.prefix(while: { $0 != 0 }), as: UTF8.self)
    }

    /// The payload as a host-order 32-bit number, when it is 4 bytes.
    public var uint32Value: UInt32? {
        payload.count == 4 ? payload.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } : nil
    }

    /// The attribute in the kernel's layout, padded to 4 bytes.
    public var encoded: [UInt8] {
        let length = 4 + payload.count
        let header: [UInt8] = [UInt8(truncatingIfNeeded: length), UInt8(truncatingIfNeeded: length >> 8),
                               UInt8(truncatingIfNeeded: type), UInt8(truncatingIfNeeded: type >> 8)]
        return header + payload + Array(repeating: 0, count: netlinkAligned(length) - length)
    }

    /// Splits attributes, such as those after an `ifinfomsg`.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` when a length is shorter than the
    ///   header or runs past the end.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(SocketError) -> [NetlinkAttribute] {
        var attributes: [NetlinkAttribute] = []
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let left = bytes.endIndex - offset
            guard left >= 4 else {
                throw SocketError.invalid("decode netlink attributes", nil, "\(left) bytes at the end are too few for an attribute header")
            }
            let length = Int(UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8)
            let type = UInt16(bytes[offset + 2]) | UInt16(bytes[offset + 3]) << 8
            guard length >= 4, length <= left else {
                throw SocketError.invalid("decode netlink attributes", nil, "attribute length \(length) does not fit the \(left) bytes left")
            }
            // The top two bits of the type are flags (NLA_F_NESTED, NLA_F_NET_BYTEORDER).
            attributes.append(NetlinkAttribute(type: type & 0x3FFF, payload: Array(bytes[(offset + 4)..<(offset + length)])))
            offset += min(netlinkAligned(length), left)
        }
        return attributes
    }

    /// Splits attributes held in an array.
    public static func decode(_ bytes: [UInt8]) throws(SocketError) -> [NetlinkAttribute] {
        try decode(bytes[...])
    }
}

/// `NLMSG_ALIGN` / `RTA_ALIGN`: rounded up to 4 bytes.
func netlinkAligned(_ length: Int) -> Int { (length + 3) & ~3 }

extension Socket {
    /// Sends a request to the kernel on a netlink socket and collects the replies: all
    /// parts of a multipart (dump) reply up to `NLMSG_DONE`, or the single reply or
    /// acknowledgement.
    ///
    /// The request gets ``NetlinkMessageFlags/request`` and, when its sequence number is 0,
    /// a fresh one; replies with other sequence numbers are skipped.
    /// - Returns: the reply messages, without `NLMSG_DONE` and acknowledgements.
    /// - Throws: the errno of an `NLMSG_ERROR` reply, naming the request type; or
    ///   ``SocketError`` from `sendto`/`recvfrom`.
    public func netlinkRequest(_ request: NetlinkMessage, maxReplies: Int = 100_000) throws(SocketError) -> [NetlinkMessage] {
        var request = request
        request.flags.insert(.request)
        if request.sequence == 0 { request.sequence = Self.nextNetlinkSequence() }
        _ = try send(request.encoded, to: .netlink(.kernel))
        var replies: [NetlinkMessage] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 8)
        defer { buffer.deallocate() }
        while replies.count < maxReplies {
            let (count, _) = try receiveFrom(into: buffer, flags: .truncated)
            guard count <= buffer.count else {
                throw SocketError.invalid("netlink request", nil, "a reply of \(count) bytes did not fit the 64 KiB buffer")
            }
            for message in try NetlinkMessage.decode(UnsafeRawBufferPointer(rebasing: buffer[..<count])) where message.sequence == request.sequence {
                if message.type == NetlinkMessage.done { return replies }
                if message.type == NetlinkMessage.error {
                    if let code = message.errorCode {
                        throw SocketError("netlink request (type \(request.type))", errno: code)
                    }
                    return replies
                }
                replies.append(message)
                if !message.flags.contains(.multipart) && !request.flags.contains(.acknowledge) { return replies }
            }
        }
        throw SocketError.invalid("netlink request", nil, "more than \(maxReplies) replies")
    }

    private static let netlinkSequence = NetlinkSequence()

    static func nextNetlinkSequence() -> UInt32 { netlinkSequence.next() }
}

/// Sequence numbers for netlink requests, unique within the process.
private final class NetlinkSequence: Sendable {
    private let counter = Atomic<UInt32>(0)
    func next() -> UInt32 { counter.wrappingAdd(1, ordering: .relaxed).newValue }
}
