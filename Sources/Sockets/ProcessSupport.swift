import SocketSyscalls
import SystemPackage

/// Process-wide settings that programs built on sockets need around them: `SIGPIPE`, signals
/// taken by a waiting thread, and whether a stream is a terminal.
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
}
