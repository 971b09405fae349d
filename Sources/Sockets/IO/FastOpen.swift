import Glibc
import SocketSyscalls
import SystemPackage

extension Socket {
    // MARK: TCP Fast Open

    /// Connects a TCP socket and sends `buffer` with the connection, in the SYN when it can:
    /// `sendto(2)` with `MSG_FASTOPEN` (and `MSG_NOSIGNAL`) on a socket not yet connected.
    ///
    /// When the kernel holds a Fast Open cookie for the server (given by the server on an
    /// earlier connection that asked for one, as this call does), the bytes ride the SYN and
    /// the server can accept and read them before the handshake ends. Without a cookie the SYN
    /// asks for one and the bytes follow the handshake. The client needs bit 0x1 of
    /// `net.ipv4.tcp_fastopen` (the default); the server needs ``SocketOption/tcpFastOpen`` on
    /// its listener and bit 0x2 in its own network namespace. Afterwards
    /// ``TCPInfo/Options/synData`` in `get(.tcpInfo)` says whether the server took the bytes
    /// in the SYN.
    ///
    /// A blocking socket returns once connected, having sent the bytes as `send` would (all of
    /// a small buffer). A non-blocking one returns at once with the bytes that went in the
    /// SYN, or 0 when there was no cookie and nothing was sent; either way the connection is
    /// under way: wait for writability and call ``finishConnect()`` before sending more.
    ///
    /// Only TCP (and MPTCP) know the flag: a UDP socket sends a datagram as with
    /// ``send(_:to:flags:)-(UnsafeRawBufferPointer,_,_)``, and a Unix stream socket refuses
    /// the address.
    /// - Returns: the number of bytes sent.
    /// - Throws: ``SocketError`` naming the address: ``SocketError/Reason/timedOut`` when a
    ///   blocking connect outlasts `SO_SNDTIMEO`, `EISCONN` or `EALREADY` for a socket already
    ///   connected or connecting, `EPIPE` after a refused SYN, `EOPNOTSUPP` from a Unix stream
    ///   socket, ...
    public func sendFastOpen(_ buffer: UnsafeRawBufferPointer, to address: SocketAddress) throws(SocketError) -> Int {
        do throws(SocketError) {
            guard let sent = try trySend(buffer, to: address, flags: .fastOpen) else {
                throw wouldBlockError("sendto", address: address.description, flags: .fastOpen, timeout: .send)
            }
            return sent
        } catch where error.reason == .system(.nowInProgress) {
            // The connect is under way and no byte went in the SYN. A blocking socket says
            // so only when its SO_SNDTIMEO ran out, as `connect` does.
            guard try isNonBlocking() else { throw SocketError("sendto", address: address.description, reason: .timedOut) }
            return 0
        }
    }

    /// Connects with TCP Fast Open, sending bytes from an array (see
    /// ``sendFastOpen(_:to:)-(UnsafeRawBufferPointer,_)``).
    public func sendFastOpen(_ bytes: [UInt8], to address: SocketAddress) throws(SocketError) -> Int {
        try bytes.withBytesTyped { (buffer) throws(SocketError) in try sendFastOpen(buffer, to: address) }
    }
}
