public import Glibc
public import CSocketShims
public import SystemPackage

extension Syscall {
    /// The corresponding C function is `ppoll(2)`: `poll` with a nanosecond timeout (`nil`
    /// waits for ever) and, when `signalMask` is given, that signal mask for the duration of
    /// the wait. `EINTR` is returned to the caller as an error, so that a caller with a
    /// deadline can recompute the time left.
    @inlinable
    public static func ppoll(
        _ fds: UnsafeMutablePointer<pollfd>?, _ count: Int, timeout: UnsafePointer<timespec>?, signalMask: UnsafePointer<sigset_t>? = nil
    ) throws(Errno) -> Int {
        let result = cshim_ppoll(fds, nfds_t(count), timeout, signalMask)
        if result >= 0 { return Int(result) }
        throw Errno(rawValue: errno)
    }

    /// `fcntl(fd, F_DUPFD_CLOEXEC, minimum)`: a close-on-exec duplicate numbered `minimum` or
    /// above (the lowest free number there).
    @inlinable
    public static func duplicate(_ fd: CInt, atLeast minimum: CInt) throws(Errno) -> CInt {
        try retryingInterrupts { cshim_fcntl_set(fd, F_DUPFD_CLOEXEC, minimum) }
    }
}
