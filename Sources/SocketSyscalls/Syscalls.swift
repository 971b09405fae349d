public import Glibc
public import CSocketShims
public import SystemPackage

/// Thin wrappers over the socket system calls.
///
/// Each reads `errno` immediately, retries `EINTR`, and reports `EAGAIN` as ``IOResult/wouldBlock``
/// where a non-blocking descriptor can produce it. Nothing here allocates or adds policy: the
/// `Sockets` module builds the safe API on top.
public enum Syscall {
    // MARK: Lifecycle

    /// The corresponding C function is `socket(2)`.
    @inlinable
    public static func socket(domain: CInt, type: CInt, protocol: CInt) throws(Errno) -> CInt {
        try retryingInterrupts { Glibc.socket(domain, type, `protocol`) }
    }

    /// The corresponding C function is `socketpair(2)`.
    @inlinable
    public static func socketpair(domain: CInt, type: CInt, protocol: CInt) throws(Errno) -> (CInt, CInt) {
        var fds: (CInt, CInt) = (-1, -1)
        _ = try withUnsafeMutableBytes(of: &fds) { (raw) throws(Errno) -> CInt in
            let pointer = raw.baseAddress!.assumingMemoryBound(to: CInt.self)
            return try retryingInterrupts { Glibc.socketpair(domain, type, `protocol`, pointer) }
        }
        return fds
    }

    /// The corresponding C function is `close(2)`.
    ///
    /// `EINTR` is not retried: on Linux the descriptor is released even when close is
    /// interrupted, and closing it again could close a descriptor another thread just opened.
    @inlinable
    public static func close(_ fd: CInt) throws(Errno) {
        if Glibc.close(fd) == -1 {
            let code = errno
            if code == EINTR { return }
            throw Errno(rawValue: code)
        }
    }

    /// The corresponding C function is `shutdown(2)`.
    @inlinable
    public static func shutdown(_ fd: CInt, how: CInt) throws(Errno) {
        _ = try retryingInterrupts { Glibc.shutdown(fd, how) }
    }

    /// `fcntl(fd, F_DUPFD_CLOEXEC, 0)`: a duplicate that is closed on exec.
    @inlinable
    public static func duplicate(_ fd: CInt) throws(Errno) -> CInt {
        try retryingInterrupts { cshim_fcntl_set(fd, F_DUPFD_CLOEXEC, 0) }
    }

    /// `fcntl(fd, F_GETFL)`.
    @inlinable
    public static func fileStatusFlags(_ fd: CInt) throws(Errno) -> CInt {
        try retryingInterrupts { cshim_fcntl_get(fd, F_GETFL) }
    }

    /// `fcntl(fd, F_SETFL, flags)`.
    @inlinable
    public static func setFileStatusFlags(_ fd: CInt, _ flags: CInt) throws(Errno) {
        _ = try retryingInterrupts { cshim_fcntl_set(fd, F_SETFL, flags) }
    }

    /// `fcntl(fd, F_GETFD)`.
    @inlinable
    public static func descriptorFlags(_ fd: CInt) throws(Errno) -> CInt {
        try retryingInterrupts { cshim_fcntl_get(fd, F_GETFD) }
    }

    /// `fcntl(fd, F_SETFD, flags)`.
    @inlinable
    public static func setDescriptorFlags(_ fd: CInt, _ flags: CInt) throws(Errno) {
        _ = try retryingInterrupts { cshim_fcntl_set(fd, F_SETFD, flags) }
    }

    /// The corresponding C function is `ioctl(2)`, with a pointer argument.
    @inlinable
    public static func ioctl(_ fd: CInt, _ request: UInt, _ argument: UnsafeMutableRawPointer) throws(Errno) -> CInt {
        try retryingInterrupts { cshim_ioctl_pointer(fd, request, argument) }
    }

    // MARK: Connections

    /// The corresponding C function is `bind(2)`.
    @inlinable
    public static func bind(_ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) throws(Errno) {
        _ = try retryingInterrupts { Glibc.bind(fd, address, length) }
    }

    /// The corresponding C function is `listen(2)`.
    @inlinable
    public static func listen(_ fd: CInt, backlog: CInt) throws(Errno) {
        _ = try retryingInterrupts { Glibc.listen(fd, backlog) }
    }

    /// The corresponding C function is `connect(2)`.
    ///
    /// Returns `.wouldBlock` for `EINPROGRESS`: the connect is under way (a non-blocking
    /// socket, or a blocking one whose `SO_SNDTIMEO` ran out); wait for writability and read
    /// `SO_ERROR`. Everything else is thrown, including:
    /// - `EINTR`, not retried here: an interrupted TCP connect goes on in the kernel (calling
    ///   again gives `EALREADY`, then `EISCONN`), while an interrupted Unix connect did not
    ///   happen at all; the caller knows which.
    /// - `EAGAIN`, which is not "in progress": a Unix listener's backlog is full (or no local
    ///   port was free), and nothing is under way.
    @inlinable
    public static func connect(_ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) throws(Errno) -> IOResult<Void> {
        if Glibc.connect(fd, address, length) == 0 { return .complete(()) }
        let code = errno
        if code == EINPROGRESS { return .wouldBlock }
        throw Errno(rawValue: code)
    }

    /// The corresponding C function is `accept4(2)`. The peer's address is written to `address`.
    @inlinable
    public static func accept(
        _ fd: CInt, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?, flags: CInt
    ) throws(Errno) -> IOResult<CInt> {
        while true {
            let result = cshim_accept4(fd, address, length, flags)
            if result >= 0 { return .complete(result) }
            let code = errno
            // A connection that was reset while queued is not the listener's failure.
            if code == EINTR || code == ECONNABORTED { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
            throw Errno(rawValue: code)
        }
    }

    /// The corresponding C function is `getsockname(2)`.
    @inlinable
    public static func getsockname(_ fd: CInt, _ address: UnsafeMutablePointer<sockaddr>, _ length: UnsafeMutablePointer<socklen_t>) throws(Errno) {
        _ = try retryingInterrupts { Glibc.getsockname(fd, address, length) }
    }

    /// The corresponding C function is `getpeername(2)`.
    @inlinable
    public static func getpeername(_ fd: CInt, _ address: UnsafeMutablePointer<sockaddr>, _ length: UnsafeMutablePointer<socklen_t>) throws(Errno) {
        _ = try retryingInterrupts { Glibc.getpeername(fd, address, length) }
    }

    // MARK: Options

    /// The corresponding C function is `getsockopt(2)`.
    @inlinable
    public static func getsockopt(
        _ fd: CInt, level: CInt, name: CInt, _ value: UnsafeMutableRawPointer, _ length: UnsafeMutablePointer<socklen_t>
    ) throws(Errno) {
        _ = try retryingInterrupts { Glibc.getsockopt(fd, level, name, value, length) }
    }

    /// The corresponding C function is `setsockopt(2)`.
    @inlinable
    public static func setsockopt(_ fd: CInt, level: CInt, name: CInt, _ value: UnsafeRawPointer?, _ length: socklen_t) throws(Errno) {
        _ = try retryingInterrupts { Glibc.setsockopt(fd, level, name, value, length) }
    }

    // MARK: Data

    /// The corresponding C function is `send(2)`.
    @inlinable
    public static func send(_ fd: CInt, _ buffer: UnsafeRawPointer?, _ count: Int, flags: CInt) throws(Errno) -> IOResult<Int> {
        try retryingIO { Glibc.send(fd, buffer, count, flags) }
    }

    /// The corresponding C function is `recv(2)`.
    @inlinable
    public static func recv(_ fd: CInt, _ buffer: UnsafeMutableRawPointer?, _ count: Int, flags: CInt) throws(Errno) -> IOResult<Int> {
        try retryingIO { Glibc.recv(fd, buffer, count, flags) }
    }

    /// The corresponding C function is `sendto(2)`.
    @inlinable
    public static func sendto(
        _ fd: CInt, _ buffer: UnsafeRawPointer?, _ count: Int, flags: CInt, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO { Glibc.sendto(fd, buffer, count, flags, address, length) }
    }

    /// The corresponding C function is `recvfrom(2)`.
    @inlinable
    public static func recvfrom(
        _ fd: CInt, _ buffer: UnsafeMutableRawPointer?, _ count: Int, flags: CInt,
        _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO { Glibc.recvfrom(fd, buffer, count, flags, address, length) }
    }

    /// The corresponding C function is `sendmsg(2)`.
    @inlinable
    public static func sendmsg(_ fd: CInt, _ message: UnsafePointer<msghdr>, flags: CInt) throws(Errno) -> IOResult<Int> {
        try retryingIO { Glibc.sendmsg(fd, message, flags) }
    }

    /// The corresponding C function is `recvmsg(2)`.
    @inlinable
    public static func recvmsg(_ fd: CInt, _ message: UnsafeMutablePointer<msghdr>, flags: CInt) throws(Errno) -> IOResult<Int> {
        try retryingIO { Glibc.recvmsg(fd, message, flags) }
    }

    /// The corresponding C function is `read(2)`.
    @inlinable
    public static func read(_ fd: CInt, _ buffer: UnsafeMutableRawPointer?, _ count: Int) throws(Errno) -> IOResult<Int> {
        try retryingIO { Glibc.read(fd, buffer, count) }
    }

    /// The corresponding C function is `write(2)`. Sockets use ``send(_:_:_:flags:)`` with
    /// `MSG_NOSIGNAL` instead, so that a closed peer cannot raise `SIGPIPE`.
    @inlinable
    public static func write(_ fd: CInt, _ buffer: UnsafeRawPointer?, _ count: Int) throws(Errno) -> IOResult<Int> {
        try retryingIO { Glibc.write(fd, buffer, count) }
    }

    // MARK: Readiness

    /// The corresponding C function is `poll(2)`. `EINTR` is returned to the caller as an
    /// error, so that a caller with a deadline can recompute the time left.
    @inlinable
    public static func poll(_ fds: UnsafeMutablePointer<pollfd>?, _ count: Int, timeoutMilliseconds: CInt) throws(Errno) -> Int {
        let result = Glibc.poll(fds, nfds_t(count), timeoutMilliseconds)
        if result >= 0 { return Int(result) }
        throw Errno(rawValue: errno)
    }

    /// The corresponding C function is `select(2)`. `EINTR` is returned as an error (see `poll`).
    @inlinable
    public static func select(
        _ count: CInt, _ read: UnsafeMutablePointer<fd_set>?, _ write: UnsafeMutablePointer<fd_set>?,
        _ except: UnsafeMutablePointer<fd_set>?, _ timeout: UnsafeMutablePointer<timeval>?
    ) throws(Errno) -> Int {
        let result = Glibc.select(count, read, write, except, timeout)
        if result >= 0 { return Int(result) }
        throw Errno(rawValue: errno)
    }

    /// The corresponding C function is `epoll_create1(2)`, always with `EPOLL_CLOEXEC`.
    @inlinable
    public static func epollCreate() throws(Errno) -> CInt {
        try retryingInterrupts { epoll_create1(CInt(EPOLL_CLOEXEC)) }
    }

    /// The corresponding C function is `epoll_ctl(2)`.
    @inlinable
    public static func epollControl(_ epfd: CInt, _ operation: CInt, _ fd: CInt, _ event: UnsafeMutablePointer<epoll_event>?) throws(Errno) {
        _ = try retryingInterrupts { epoll_ctl(epfd, operation, fd, event) }
    }

    /// The corresponding C function is `epoll_wait(2)`. `EINTR` is returned as an error.
    @inlinable
    public static func epollWait(
        _ epfd: CInt, _ events: UnsafeMutablePointer<epoll_event>, _ capacity: CInt, timeoutMilliseconds: CInt
    ) throws(Errno) -> Int {
        let result = epoll_wait(epfd, events, capacity, timeoutMilliseconds)
        if result >= 0 { return Int(result) }
        throw Errno(rawValue: errno)
    }

    /// The corresponding C function is `eventfd(2)`, always with `EFD_CLOEXEC`.
    @inlinable
    public static func eventfd(initialValue: UInt32, flags: CInt) throws(Errno) -> CInt {
        try retryingInterrupts { CSocketShims.eventfd(initialValue, flags | CInt(EFD_CLOEXEC)) }
    }

    // MARK: Signals

    /// Sets `SIGPIPE` to be ignored for the whole process.
    ///
    /// Socket sends use `MSG_NOSIGNAL`, so this is only needed before calls that cannot take
    /// that flag (`sendfile`, `splice`, `write` on a socket).
    public static func ignoreBrokenPipeSignal() {
        _ = Glibc.signal(SIGPIPE, SIG_IGN)
    }
}
