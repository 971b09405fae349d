import Glibc
import SocketSyscalls
import SystemPackage

/// A descriptor received from another process (`SCM_RIGHTS`), owned by this value.
///
/// It was received with `MSG_CMSG_CLOEXEC`, so it is close-on-exec. It is closed by
/// ``close()`` or when the last reference goes away, unless ownership is moved out with
/// ``takeDescriptor()`` or ``makeSocket()``. Like ``Socket``, a close during a call in another
/// thread is deferred until that call leaves ``withDescriptor(_:)``.
public final class ReceivedDescriptor: Sendable, Equatable, CustomStringConvertible {
    let handle: OwnedDescriptor

    /// Takes ownership of an open descriptor.
    public init(adopting descriptor: CInt) {
        handle = OwnedDescriptor(descriptor)
    }

    /// The descriptor number while it is owned here; `-1` once closed or taken.
    ///
    /// Only valid while this value is alive and open: prefer ``withDescriptor(_:)``.
    public var descriptor: CInt { handle.isClosed ? -1 : handle.fd }

    /// Whether it was closed or taken.
    public var isClosed: Bool { handle.isClosed }

    /// Runs `body` with the descriptor, which stays open until `body` returns.
    /// - Throws: ``SocketError/Reason/closed`` when already closed or taken, else what
    ///   `body` throws.
    public func withDescriptor<R>(_ body: (CInt) throws -> R) throws -> R {
        guard handle.enter() else { throw SocketError("use received descriptor", reason: .closed) }
        defer { handle.leave() }
        return try body(handle.fd)
    }

    /// Gives up ownership and returns the descriptor, which the caller must now close.
    /// - Throws: ``SocketError/Reason/closed`` when already closed or taken.
    public func takeDescriptor() throws(SocketError) -> CInt {
        guard handle.release() else { throw SocketError("take received descriptor", reason: .closed) }
        return handle.fd
    }

    /// Moves the descriptor into a ``Socket``, which owns it from now on.
    /// - Throws: ``SocketError/Reason/closed`` when already closed or taken.
    public func makeSocket() throws(SocketError) -> Socket {
        Socket(adopting: try takeDescriptor())
    }

    /// Closes the descriptor (`close(2)`). Calling it again does nothing.
    public func close() throws(SocketError) {
        do {
            try handle.close { _ in }
        } catch {
            throw SocketError("close received descriptor", errno: error)
        }
    }

    public static func == (lhs: ReceivedDescriptor, rhs: ReceivedDescriptor) -> Bool { lhs === rhs }

    public var description: String {
        let fd = descriptor
        return fd >= 0 ? "ReceivedDescriptor(fd: \(fd))" : "ReceivedDescriptor(closed)"
    }
}
