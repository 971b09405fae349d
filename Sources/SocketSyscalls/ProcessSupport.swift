import Glibc
public import SystemPackage

// Process-level calls that a program built on sockets needs around them: whether a stream is a
// terminal (to decide on live progress lines), signals handled by a waiting thread (so that
// a listener can remove its socket file when interrupted), and the limit on open descriptors
// (one per connection).

extension Syscall {
    /// The corresponding C function is `isatty(3)`: whether the descriptor is a terminal.
    public static func isTerminal(_ fd: CInt) -> Bool {
        Glibc.isatty(fd) == 1
    }

    /// Blocks the given signals in the calling thread, and so in every thread it creates
    /// afterwards: `pthread_sigmask(SIG_BLOCK)`. Call it before starting threads, then take
    /// the signals with ``waitForSignal(_:)`` in one thread.
    public static func blockSignals(_ signals: [CInt]) throws(Errno) {
        var set = try signalSet(signals)
        let result = pthread_sigmask(SIG_BLOCK, &set, nil)
        // pthread_sigmask returns the error number rather than setting errno.
        if result != 0 { throw Errno(rawValue: result) }
    }

    /// Waits until one of the given (blocked) signals is pending and takes it: `sigwait(3)`.
    /// - Returns: the signal's number.
    /// - Throws: `EINVAL` for no signals or a number that is not a signal.
    public static func waitForSignal(_ signals: [CInt]) throws(Errno) -> CInt {
        var set = try signalSet(signals)
        var received: CInt = 0
        while true {
            let result = sigwait(&set, &received)
            if result == 0 { return received }
            if result != EINTR { throw Errno(rawValue: result) }
        }
    }

    /// The set of the given signals; `EINVAL` for an empty list or a number that is not a
    /// signal (an empty set would make `sigwait` wait for ever).
    private static func signalSet(_ signals: [CInt]) throws(Errno) -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        guard !signals.isEmpty else { throw Errno.invalidArgument }
        for signal in signals where sigaddset(&set, signal) != 0 {
            throw Errno.invalidArgument
        }
        return set
    }

    /// The soft and hard limits on this process's open descriptors: `getrlimit(RLIMIT_NOFILE)`.
    /// `RLIM_INFINITY` reads as `UInt64.max`.
    public static func descriptorLimits() throws(Errno) -> (soft: UInt64, hard: UInt64) {
        var limits = rlimit()
        _ = try retryingInterrupts { getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limits) }
        return (UInt64(limits.rlim_cur), UInt64(limits.rlim_max))
    }

    /// Sets the soft and hard limits on this process's open descriptors:
    /// `setrlimit(RLIMIT_NOFILE)`. Anyone may lower either, or raise the soft limit up to the
    /// hard one; raising the hard limit needs `CAP_SYS_RESOURCE`.
    /// - Throws: `EPERM` for a hard limit above the current one without that capability,
    ///   `EINVAL` for a soft limit above the hard one or a hard limit above `fs.nr_open`.
    public static func setDescriptorLimits(soft: UInt64, hard: UInt64) throws(Errno) {
        var limits = rlimit(rlim_cur: rlim_t(soft), rlim_max: rlim_t(hard))
        _ = try retryingInterrupts { setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limits) }
    }
}

extension Syscall {
    /// Runs `body` so that a `SIGPIPE` it raises in this thread (as `sendfile(2)`, `splice(2)`
    /// and `tee(2)` do on a broken pipe or socket, having no `MSG_NOSIGNAL`) is never
    /// delivered: the signal is blocked in the calling thread for the call, and one that became
    /// pending meanwhile is taken with `sigtimedwait(2)` before the old mask comes back (a
    /// call that moved some bytes and then hit the broken pipe raises it too, without failing).
    /// The process's `SIGPIPE` disposition is left alone.
    ///
    /// A thread that already blocks `SIGPIPE` is left as it is: a pending signal is its own.
    /// Otherwise nothing can be pending before the call (it would have been delivered), so
    /// one `sigpending` after it tells whether the call raised it.
    public static func withBrokenPipeSuppressed<R>(_ body: () throws(Errno) -> R) throws(Errno) -> R {
        var pipeOnly = sigset_t()
        sigemptyset(&pipeOnly)
        sigaddset(&pipeOnly, SIGPIPE)
        var previousMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeOnly, &previousMask)
        if sigismember(&previousMask, SIGPIPE) == 1 { return try body() }
        defer {
            var pending = sigset_t()
            sigemptyset(&pending)
            sigpending(&pending)
            if sigismember(&pending, SIGPIPE) == 1 {
                var none = timespec(tv_sec: 0, tv_nsec: 0)
                while sigtimedwait(&pipeOnly, nil, &none) == -1 && errno == EINTR {}
            }
            pthread_sigmask(SIG_SETMASK, &previousMask, nil)
        }
        return try body()
    }
}
