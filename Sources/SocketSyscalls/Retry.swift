public import Glibc
// EINTR and EAGAIN can resolve to the shim module's copy of <errno.h>, depending on the order
// the compiler loads modules: import it here too, or the inlinable code below may not build.
public import CSocketShims
public import SystemPackage

/// The outcome of a call on a descriptor that may be non-blocking: either it completed, or the
/// kernel said it would block (`EAGAIN`/`EWOULDBLOCK`/`EINPROGRESS` for connect).
///
/// "Would block" is a normal result for non-blocking sockets, so it is a value, never a thrown error.
@frozen
public enum IOResult<Value> {
    case complete(Value)
    case wouldBlock

    /// The value, or `nil` when the call would have blocked.
    @inlinable
    public var value: Value? {
        if case .complete(let value) = self { return value }
        return nil
    }
}

extension IOResult: Sendable where Value: Sendable {}
extension IOResult: Equatable where Value: Equatable {}

/// Runs `body` until it stops failing with `EINTR`; any other failure throws its errno.
@inlinable @inline(__always)
func retryingInterrupts<T: FixedWidthInteger>(_ body: () -> T) throws(Errno) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code == EINTR { continue }
        throw Errno(rawValue: code)
    }
}

/// Like `retryingInterrupts`, but `EAGAIN`/`EWOULDBLOCK` become `.wouldBlock`.
@inlinable @inline(__always)
func retryingIO<T: FixedWidthInteger>(_ body: () -> T) throws(Errno) -> IOResult<T> {
    while true {
        let result = body()
        if result != -1 { return .complete(result) }
        let code = errno
        if code == EINTR { continue }
        if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
        throw Errno(rawValue: code)
    }
}
