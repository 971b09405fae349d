import SocketSyscalls
import SystemPackage

/// Process-wide settings that programs built on sockets need around them: `SIGPIPE`, signals
/// taken by a waiting thread, whether a stream is a terminal, and the limit on open descriptors.
public enum ProcessSupport {
    /// Ignores `SIGPIPE` for the whole process, so that writing to a pipe or socket whose
    /// reader is gone fails with `EPIPE` instead of killing the process.
    ///
    /// The corresponding C call is `signal(SIGPIPE, SIG_IGN)`. This library's sends never
    /// need it (they pass `MSG_NOSIGNAL`); `write(2)` to standard output does.
    public static func ignoreBrokenPipeSignal() {
        Syscall.ignoreBrokenPipeSignal()
    }

    /// Blocks signals in the calling thread and in every thread it starts afterwards, so that
    /// one thread can take them with ``waitForSignal(_:)``.
    ///
    /// The corresponding C function is `pthread_sigmask(3)` with `SIG_BLOCK`. Call it before
    /// starting threads.
    /// - Throws: ``SocketError`` with `EINVAL` for an empty list or a number that is not a signal.
    public static func blockSignals(_ signals: [Int32]) throws(SocketError) {
        do {
            try Syscall.blockSignals(signals)
        } catch {
            throw SocketError("pthread_sigmask", errno: error)
        }
    }

    /// Waits until one of the given blocked signals arrives and takes it.
    ///
    /// The corresponding C function is `sigwait(3)`.
    /// - Returns: the signal's number.
    /// - Throws: ``SocketError`` with `EINVAL` for an empty list or a number that is not a
    ///   signal (which would otherwise wait for ever).
    public static func waitForSignal(_ signals: [Int32]) throws(SocketError) -> Int32 {
        do {
            return try Syscall.waitForSignal(signals)
        } catch {
            throw SocketError("sigwait", errno: error)
        }
    }

    /// Whether a descriptor refers to a terminal. The corresponding C function is `isatty(3)`.
    public static func isTerminal(_ descriptor: Int32) -> Bool {
        Syscall.isTerminal(descriptor)
    }

    /// Raises this process's soft limit on open descriptors to its hard limit, and returns the
    /// new soft limit.
    ///
    /// Every socket is a descriptor. Many systems start programs with a soft limit of 1,024
    /// (for the sake of `select`, which cannot watch higher numbers) under a far higher hard
    /// limit, so a server fails with `EMFILE` near a thousand connections unless it asks for
    /// more. Any process may raise its soft limit up to the hard one, as Go's runtime does at
    /// start: call this once at start. Calling it again changes nothing. This library's
    /// `select` stays safe: it rejects descriptors at or above ``Socket/selectDescriptorLimit``
    /// with an error.
    ///
    /// The corresponding C functions are `getrlimit(2)`/`setrlimit(2)` with `RLIMIT_NOFILE`.
    /// Raising the hard limit itself needs `CAP_SYS_RESOURCE`, and this does not try.
    /// - Returns: the soft limit now in force (`Int.max` for none).
    /// - Throws: ``SocketError`` naming the call that failed and why.
    @discardableResult
    public static func raiseDescriptorLimit() throws(SocketError) -> Int {
        let limits: (soft: UInt64, hard: UInt64)
        do {
            limits = try Syscall.descriptorLimits()
        } catch {
            throw SocketError("getrlimit(RLIMIT_NOFILE)", errno: error)
        }
        guard limits.soft < limits.hard else { return Int(clamping: limits.soft) }
        do {
            try Syscall.setDescriptorLimits(soft: limits.hard, hard: limits.hard)
        } catch {
            throw SocketError("setrlimit(RLIMIT_NOFILE, \(limits.hard))", errno: error)
        }
        return Int(clamping: limits.hard)
    }
}
