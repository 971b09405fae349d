import Glibc

/// The end of a wait given as a timeout, so that a wait interrupted by a signal (`EINTR`) or
/// cut short by a system call's own limit can go on with the time left.
struct WaitDeadline {
    /// `nil`: wait for ever.
    let instant: ContinuousClock.Instant?

    /// The longest wait measured: about 34,800 years, far from overflowing an instant.
    static let longest = Duration.seconds(Int64(1) << 40)

    /// `timeout` `nil` waits for ever; zero or negative does not wait.
    init(timeout: Duration?) {
        instant = timeout.map { ContinuousClock.now.advanced(by: min(max($0, .zero), Self.longest)) }
    }

    /// The time left, never negative; `nil` for ever.
    func remaining() -> Duration? {
        guard let instant else { return nil }
        return max(ContinuousClock.now.duration(to: instant), .zero)
    }

    /// Whether a finite deadline has been reached.
    var hasPassed: Bool {
        guard let instant else { return false }
        return ContinuousClock.now >= instant
    }

    /// A duration as a `timespec`, rounded up to the nanosecond (a wait must not end early).
    static func timespec(_ duration: Duration) -> Glibc.timespec {
        let (seconds, attoseconds) = max(duration, .zero).components
        var nanoseconds = (attoseconds + 999_999_999) / 1_000_000_000
        var wholeSeconds = seconds
        if nanoseconds >= 1_000_000_000 {
            wholeSeconds += 1
            nanoseconds -= 1_000_000_000
        }
        return Glibc.timespec(tv_sec: Int(wholeSeconds), tv_nsec: Int(nanoseconds))
    }

    /// A duration as a `timeval`, rounded up to the microsecond.
    static func timeval(_ duration: Duration) -> Glibc.timeval {
        let (seconds, attoseconds) = max(duration, .zero).components
        var microseconds = (attoseconds + 999_999_999_999) / 1_000_000_000_000
        var wholeSeconds = seconds
        if microseconds >= 1_000_000 {
            wholeSeconds += 1
            microseconds -= 1_000_000
        }
        return Glibc.timeval(tv_sec: Int(wholeSeconds), tv_usec: Int(microseconds))
    }
}
