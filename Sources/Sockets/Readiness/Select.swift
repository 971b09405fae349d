import Glibc
import CSocketShims
import SocketSyscalls
import SystemPackage

/// What `Socket.select(forReading:forWriting:forExceptions:timeout:)` found ready: the
/// descriptors (or sockets) of each set that are, in the order they were given.
public struct SelectResult<Element: Sendable>: Sendable {
    /// Ready to read: data, a pending connection, end-of-file, or a pending error.
    public var readable: [Element]
    /// Ready to write, or a non-blocking connect has finished.
    public var writable: [Element]
    /// With an exceptional condition: for TCP sockets, urgent (out-of-band) data.
    public var exceptional: [Element]

    public init(readable: [Element], writable: [Element], exceptional: [Element]) {
        self.readable = readable
        self.writable = writable
        self.exceptional = exceptional
    }

    /// Whether nothing was ready (the time ran out).
    public var isEmpty: Bool { readable.isEmpty && writable.isEmpty && exceptional.isEmpty }
}

extension Socket {
    /// The number of descriptors an `fd_set` holds (`FD_SETSIZE`, 1024 with glibc): `select`
    /// cannot wait on a descriptor numbered this or higher. Use `poll` or ``Epoll`` then.
    public static var selectDescriptorLimit: CInt { cshim_fd_setsize() }

    // Disfavoured (below) so that a call with only empty array literals, such as the plain
    // wait `select(forReading: [], timeout: .milliseconds(10))`, picks the form for sockets.
    /// Waits until some descriptors are ready: `select(2)`.
    ///
    /// A wait interrupted by a signal (`EINTR`) goes on with the time left. Prefer
    /// ``poll(_:timeout:)-swift.type.method`` or ``Epoll``: `select` is limited to descriptors below
    /// ``selectDescriptorLimit``.
    ///
    /// - Parameters:
    ///   - reading: descriptors to watch for readability.
    ///   - writing: descriptors to watch for writability.
    ///   - exceptions: descriptors to watch for exceptional conditions (urgent data).
    ///   - timeout: `nil` waits until something is ready; `.zero` (or less) only checks.
    /// - Returns: the ready descriptors of each set; all empty when the time ran out.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)``, before any call, for a negative
    ///   descriptor, one not below ``selectDescriptorLimit`` (which `FD_SET` would write past
    ///   the set), or no descriptors and no timeout; `EBADF` for a descriptor that is not open.
    @_disfavoredOverload
    public static func select(
        forReading reading: [CInt], forWriting writing: [CInt] = [], forExceptions exceptions: [CInt] = [], timeout: Duration?
    ) throws(SocketError) -> SelectResult<CInt> {
        let (readable, writable, exceptional) = try selectDescriptors(reading, writing, exceptions, timeout: timeout)
        return SelectResult(
            readable: reading.indices.filter { readable[$0] }.map { reading[$0] },
            writable: writing.indices.filter { writable[$0] }.map { writing[$0] },
            exceptional: exceptions.indices.filter { exceptional[$0] }.map { exceptions[$0] })
    }

    /// Waits until some sockets are ready: `select(2)` on their descriptors, each held open
    /// for the wait, like the form that takes descriptor numbers.
    ///
    /// - Returns: the ready sockets of each set, the same objects that were passed in.
    /// - Throws: ``SocketError/Reason/closed`` if a socket is closed; the errors of the
    ///   descriptor form otherwise.
    public static func select(
        forReading reading: [Socket], forWriting writing: [Socket] = [], forExceptions exceptions: [Socket] = [], timeout: Duration?
    ) throws(SocketError) -> SelectResult<Socket> {
        let all = reading + writing + exceptions
        var enteredCount = 0
        defer { for socket in all.prefix(enteredCount) { socket.handle.leave() } }
        for socket in all {
            guard socket.handle.enter() else { throw SocketError("select", address: socket.description, reason: .closed) }
            enteredCount += 1
        }
        let (readable, writable, exceptional) = try selectDescriptors(
            reading.map(\.fd), writing.map(\.fd), exceptions.map(\.fd), timeout: timeout)
        return SelectResult(
            readable: reading.indices.filter { readable[$0] }.map { reading[$0] },
            writable: writing.indices.filter { writable[$0] }.map { writing[$0] },
            exceptional: exceptions.indices.filter { exceptional[$0] }.map { exceptions[$0] })
    }

    /// Checks the descriptors, fills three `fd_set`s, runs `select` with the time left until
    /// it reports or the time is up, and says which positions of each list are ready.
    private static func selectDescriptors(
        _ reading: [CInt], _ writing: [CInt], _ exceptions: [CInt], timeout: Duration?
    ) throws(SocketError) -> ([Bool], [Bool], [Bool]) {
        let limit = cshim_fd_setsize()
        // FD_SET on a descriptor outside 0..<FD_SETSIZE writes outside the set: refuse first.
        for fd in reading + writing + exceptions where fd < 0 || fd >= limit {
            throw SocketError.invalid(
                "select", "fd \(fd)",
                fd < 0
                    ? "a negative descriptor cannot be in an fd_set"
                    : "descriptor \(fd) is not below FD_SETSIZE (\(limit)); use poll or epoll for descriptors this high")
        }
        let highest = (reading + writing + exceptions).max()
        if highest == nil && timeout == nil {
            throw SocketError.invalid("select", nil, "no descriptors and no timeout: the wait would never end")
        }
        let count = (highest ?? -1) + 1

        var readSet = fd_set()
        var writeSet = fd_set()
        var exceptSet = fd_set()
        let deadline = WaitDeadline(timeout: timeout)
        let ready = try waitForReadiness(operation: "select", deadline: deadline) { (left) throws(Errno) -> Int in
            // select rewrites the sets (and leaves them undefined after EINTR): refill each time.
            fill(&readSet, reading)
            fill(&writeSet, writing)
            fill(&exceptSet, exceptions)
            guard let left else { return try Syscall.select(count, &readSet, &writeSet, &exceptSet, nil) }
            var limit = WaitDeadline.timeval(left)
            return try Syscall.select(count, &readSet, &writeSet, &exceptSet, &limit)
        }
        // After EINTR the sets are undefined; with nothing ready there is nothing to read.
        if ready == 0 {
            return (reading.map { _ in false }, writing.map { _ in false }, exceptions.map { _ in false })
        }
        return (
            reading.map { cshim_fd_isset($0, &readSet) != 0 },
            writing.map { cshim_fd_isset($0, &writeSet) != 0 },
            exceptions.map { cshim_fd_isset($0, &exceptSet) != 0 })
    }

    /// Empties `set` and adds `descriptors`, which the caller has checked are in range.
    private static func fill(_ set: inout fd_set, _ descriptors: [CInt]) {
        cshim_fd_zero(&set)
        for fd in descriptors { cshim_fd_set(fd, &set) }
    }
}
