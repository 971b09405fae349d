public import Glibc
public import CSocketShims
public import SystemPackage

// Wrappers for advanced I/O: batched messages, zero-copy transfers, and the few file calls
// that sending a file needs.

extension Syscall {
    // MARK: Batched messages

    /// The corresponding C function is `sendmmsg(2)`.
    @inlinable
    public static func sendmmsg(
        _ fd: CInt, _ vector: UnsafeMutablePointer<cshim_mmsghdr>, _ count: Int, flags: CInt
    ) throws(Errno) -> IOResult<Int> {
        let count = CUnsignedInt(clamping: count)
        return try retryingIO { Int(cshim_sendmmsg(fd, vector, count, flags)) }
    }

    /// The corresponding C function is `recvmmsg(2)`, without its timeout (the kernel checks
    /// it only after each datagram arrives, so it cannot bound a wait).
    @inlinable
    public static func recvmmsg(
        _ fd: CInt, _ vector: UnsafeMutablePointer<cshim_mmsghdr>, _ count: Int, flags: CInt
    ) throws(Errno) -> IOResult<Int> {
        let count = CUnsignedInt(clamping: count)
        return try retryingIO { Int(cshim_recvmmsg(fd, vector, count, flags, nil)) }
    }

    // MARK: Zero-copy

    /// The corresponding C function is `sendfile(2)`. With an `offset`, the file position is
    /// left alone and `offset` is advanced by the bytes sent.
    ///
    /// There is no `MSG_NOSIGNAL` for this call: ignore `SIGPIPE` first
    /// (``ignoreBrokenPipeSignal()``).
    @inlinable
    public static func sendfile(
        _ out: CInt, _ input: CInt, _ offset: UnsafeMutablePointer<off_t>?, _ count: Int
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO { Glibc.sendfile(out, input, offset, count) }
    }

    /// The corresponding C function is `splice(2)`. One of the two descriptors must be a pipe;
    /// an offset may only be given for the side that is not a pipe.
    ///
    /// There is no `MSG_NOSIGNAL` for this call: ignore `SIGPIPE` first
    /// (``ignoreBrokenPipeSignal()``).
    @inlinable
    public static func splice(
        _ input: CInt, _ inputOffset: UnsafeMutablePointer<Int64>?,
        _ output: CInt, _ outputOffset: UnsafeMutablePointer<Int64>?,
        _ count: Int, flags: CUnsignedInt
    ) throws(Errno) -> IOResult<Int> {
        try retryingIO { cshim_splice(input, inputOffset, output, outputOffset, count, flags) }
    }

    /// The corresponding C function is `tee(2)`: copies pipe data to another pipe without
    /// consuming it.
    @inlinable
    public static func tee(_ input: CInt, _ output: CInt, _ count: Int, flags: CUnsignedInt) throws(Errno) -> IOResult<Int> {
        try retryingIO { cshim_tee(input, output, count, flags) }
    }

    /// The corresponding C function is `pipe2(2)`, always with `O_CLOEXEC`.
    /// - Returns: the read end and the write end.
    @inlinable
    public static func pipe(flags: CInt) throws(Errno) -> (read: CInt, write: CInt) {
        var fds: (CInt, CInt) = (-1, -1)
        _ = try withUnsafeMutableBytes(of: &fds) { (raw) throws(Errno) -> CInt in
            let pointer = raw.baseAddress!.assumingMemoryBound(to: CInt.self)
            return try retryingInterrupts { cshim_pipe2(pointer, flags | O_CLOEXEC) }
        }
        return (fds.0, fds.1)
    }

    // MARK: Files

    /// The corresponding C function is `open(2)`, always with `O_CLOEXEC`.
    @inlinable
    public static func open(_ path: String, flags: CInt, mode: mode_t = 0o600) throws(Errno) -> CInt {
        try retryingInterrupts { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    /// The size of an open file, from `fstat(2)`.
    @inlinable
    public static func fileSize(_ fd: CInt) throws(Errno) -> Int64 {
        var status = stat()
        _ = try retryingInterrupts { Glibc.fstat(fd, &status) }
        return Int64(status.st_size)
    }

    /// The corresponding C function is `fchmod(2)`. On an unbound Unix socket it sets the
    /// mode its file gets at `bind(2)` (less the umask).
    @inlinable
    public static func fchmod(_ fd: CInt, _ mode: mode_t) throws(Errno) {
        _ = try retryingInterrupts { Glibc.fchmod(fd, mode) }
    }

    /// The type and permission bits (`st_mode`) of what `path` names, not following a final
    /// symbolic link: `lstat(2)`. The path is bytes, which need not be UTF-8.
    @inlinable
    public static func linkMode(_ path: [UInt8]) throws(Errno) -> mode_t {
        var status = stat()
        _ = try withPath(path) { (cPath) throws(Errno) in try retryingInterrupts { Glibc.lstat(cPath, &status) } }
        return status.st_mode
    }

    /// Sets the permissions of the socket file at `path` (`chmod(2)`), but only if `path`
    /// names a socket itself, not a symbolic link or anything else: it is opened with
    /// `O_PATH | O_NOFOLLOW`, checked with `fstat(2)`, and changed through `/proc/self/fd`.
    /// - Throws: `ENOTSOCK` when the path is not a socket, else the calls' errors.
    @inlinable
    public static func changeSocketFileMode(_ path: [UInt8], _ mode: mode_t) throws(Errno) {
        let fd = try withPath(path) { (cPath) throws(Errno) in
            try retryingInterrupts { Glibc.open(cPath, CSHIM_O_PATH | O_NOFOLLOW | O_CLOEXEC) }
        }
        defer { try? close(fd) }
        var status = stat()
        _ = try retryingInterrupts { Glibc.fstat(fd, &status) }
        guard status.st_mode & S_IFMT == S_IFSOCK else { throw Errno.notSocket }
        _ = try retryingInterrupts { Glibc.chmod("/proc/self/fd/\(fd)", mode) }
    }

    /// Removes the socket file at `path` (`unlink(2)`), but only if it is a socket, not a
    /// symbolic link or anything else (checked with `lstat(2)` first).
    /// - Throws: `ENOTSOCK` when the path is not a socket, else the calls' errors.
    @inlinable
    public static func removeSocketFile(_ path: [UInt8]) throws(Errno) {
        guard try linkMode(path) & S_IFMT == S_IFSOCK else { throw Errno.notSocket }
        _ = try withPath(path) { (cPath) throws(Errno) in try retryingInterrupts { Glibc.unlink(cPath) } }
    }

    /// Calls `body` with `path` as a NUL-terminated C string; the bytes need not be UTF-8.
    @inlinable
    static func withPath<R>(_ path: [UInt8], _ body: (UnsafePointer<CChar>) throws(Errno) -> R) throws(Errno) -> R {
        let terminated = path.map { CChar(bitPattern: $0) } + [0]
        return try terminated.withUnsafeBufferPointer { (buffer) in
            Result { () throws(Errno) -> R in try body(buffer.baseAddress!) }
        }.get()
    }

    // MARK: Process identity

    /// This process's id, real user id and real group id: `getpid(2)`, `getuid(2)`, `getgid(2)`.
    @inlinable
    public static func processCredentials() -> (pid: pid_t, uid: uid_t, gid: gid_t) {
        (Glibc.getpid(), Glibc.getuid(), Glibc.getgid())
    }
}
