import Glibc
import CSocketShims
import SocketSyscalls
public import SystemPackage
import Synchronization

/// An open socket: the owner of one descriptor.
///
/// - Created with `SOCK_CLOEXEC`, so no child process inherits it.
/// - Closed by ``close()`` (idempotent) or when the last reference goes away.
/// - Safe to share between threads: each call holds the descriptor open while it runs, and
///   ``close()`` during a blocked call shuts the socket down to wake that call, which then
///   fails with ``SocketError/Reason/closed``; the descriptor number is released only once
///   no call is using it, so it can never be reused under a running call.
/// - Every send passes `MSG_NOSIGNAL`: a closed peer gives `EPIPE`, never `SIGPIPE`.
public final class Socket: Sendable, CustomStringConvertible {
    /// The descriptor and its open/closed state.
    let handle: OwnedDescriptor

    /// The descriptor number; valid while the socket is open.
    var fd: CInt { handle.fd }

    /// Adopts an open descriptor; the socket now owns it and closes it.
    ///
    /// The descriptor must be open and owned by nobody else.
    public init(adopting descriptor: CInt) {
        handle = OwnedDescriptor(descriptor)
    }

    /// Opens a socket: `socket(domain, type | SOCK_CLOEXEC, protocol)`.
    ///
    /// - Parameters:
    ///   - domain: the address family, such as ``SocketDomain/inet``.
    ///   - type: ``SocketType/stream``, ``SocketType/datagram``, ``SocketType/raw``,
    ///     ``SocketType/sequencedPacket``, ...
    ///   - protocol: usually ``SocketProtocol/default``.
    ///   - nonBlocking: open in non-blocking mode (`SOCK_NONBLOCK`).
    /// - Throws: ``SocketError``; a family Linux lacks gives `EAFNOSUPPORT`.
    public convenience init(
        _ domain: SocketDomain, _ type: SocketType, _ protocol: SocketProtocol = .default, nonBlocking: Bool = false
    ) throws(SocketError) {
        let flags = CInt(SOCK_CLOEXEC.rawValue) | (nonBlocking ? CInt(SOCK_NONBLOCK.rawValue) : 0)
        do {
            let fd = try Syscall.socket(domain: domain.rawValue, type: type.rawValue | flags, protocol: `protocol`.rawValue)
            self.init(adopting: fd)
        } catch {
            throw SocketError("socket", address: "\(domain), \(type), \(`protocol`)", errno: error)
        }
    }

    /// A connected pair of sockets: `socketpair(2)`, both close-on-exec.
    public static func pair(
        _ domain: SocketDomain = .unix, _ type: SocketType = .stream, _ protocol: SocketProtocol = .default, nonBlocking: Bool = false
    ) throws(SocketError) -> (Socket, Socket) {
        let flags = CInt(SOCK_CLOEXEC.rawValue) | (nonBlocking ? CInt(SOCK_NONBLOCK.rawValue) : 0)
        do {
            let (first, second) = try Syscall.socketpair(domain: domain.rawValue, type: type.rawValue | flags, protocol: `protocol`.rawValue)
            return (Socket(adopting: first), Socket(adopting: second))
        } catch {
            throw SocketError("socketpair", address: "\(domain), \(type)", errno: error)
        }
    }

    // MARK: Descriptor access

    /// Runs `body` with the descriptor, which stays open until `body` returns.
    ///
    /// This is how to use the socket with calls this library does not wrap. Do not close the
    /// descriptor inside `body`.
    /// - Throws: ``SocketError/Reason/closed`` if the socket is closed, else what `body` throws.
    public func withDescriptor<R>(_ body: (CInt) throws -> R) throws -> R {
        guard handle.enter() else { throw SocketError("use socket", reason: .closed) }
        defer { handle.leave() }
        return try body(fd)
    }

    /// Runs a system call wrapper on the descriptor and turns its errno into a ``SocketError``
    /// naming `operation` (and `address`, when given).
    ///
    /// A call that fails because ``close()`` shut the socket down under it (an `accept` woken
    /// with `EINVAL`, a `send` with `EPIPE`) reports ``SocketError/Reason/closed``.
    func call<R>(_ operation: StaticString, address: @autoclosure () -> String? = nil, _ body: (CInt) throws(Errno) -> R) throws(SocketError) -> R {
        guard handle.enter() else { throw SocketError(operation.description, address: address(), reason: .closed) }
        defer { handle.leave() }
        do {
            return try body(fd)
        } catch {
            if handle.wasClosed { throw SocketError(operation.description, address: address(), reason: .closed) }
            throw SocketError(operation.description, address: address(), errno: error)
        }
    }

    /// Checks the byte count of a receive: 0 from a socket that ``close()`` shut down while the
    /// receive was blocked is not the peer's end-of-file but ``SocketError/Reason/closed``.
    func checkReceived(_ result: IOResult<Int>, _ operation: StaticString) throws(SocketError) -> Int? {
        guard case .complete(let count) = result else { return nil }
        if count == 0 && handle.wasClosed { throw SocketError(operation.description, reason: .closed) }
        return count
    }

    /// The error for "would block" from a call whose caller asked to wait. On a blocking
    /// socket (and without ``MessageFlags/dontWait``) that means the socket's timeout ran out,
    /// which ``SocketError/isTimeout`` then reports.
    func wouldBlockError(
        _ operation: String, address: String? = nil, flags: MessageFlags = [], timeout: SocketError.SocketTimeoutOption
    ) -> SocketError {
        let blocking = !flags.contains(.dontWait) && (try? isNonBlocking()) == false
        return SocketError(
            operation, address: address, reason: .system(.resourceTemporarilyUnavailable),
            expiredSocketTimeout: blocking ? timeout : nil)
    }

    /// The descriptor number, for logging or for `select`/`poll` sets; `-1` once closed.
    ///
    /// It is only valid while the socket is open: prefer ``withDescriptor(_:)``.
    public var descriptor: CInt { handle.isClosed ? -1 : fd }

    /// Whether ``close()`` or ``releaseDescriptor()`` has been called.
    public var isClosed: Bool { handle.isClosed }

    /// Gives up ownership: returns the descriptor, which this socket will no longer use or close.
    /// - Throws: ``SocketError/Reason/closed`` if it was already closed or released.
    public func releaseDescriptor() throws(SocketError) -> CInt {
        guard handle.release() else { throw SocketError("release descriptor", reason: .closed) }
        return fd
    }

    /// Closes the socket. Calling it again does nothing.
    ///
    /// Calls blocked in other threads are woken (the socket is shut down first) and fail with
    /// ``SocketError/Reason/closed``; the descriptor is closed when the last of them returns.
    /// That shutdown acts on the socket itself, so when a call is running at the time of the
    /// close, duplicates of the descriptor (``duplicate()``, a child's copy) see it shut down too.
    /// `AF_PACKET` and `AF_NETLINK` sockets have no `shutdown`: a call blocked on one is not
    /// woken, and the close completes when it returns; give such calls a timeout
    /// (`SO_RCVTIMEO`) or use non-blocking mode.
    /// - Throws: the error of `close(2)` itself, when it runs here and fails.
    public func close() throws(SocketError) {
        do {
            try handle.close { fd in try? Syscall.shutdown(fd, how: CInt(SHUT_RDWR)) }
        } catch {
            throw SocketError("close", errno: error)
        }
    }

    /// A new socket on a duplicate of this descriptor (`F_DUPFD_CLOEXEC`), sharing the same
    /// open socket: like socket2's `try_clone` and Python's `dup()`.
    public func duplicate() throws(SocketError) -> Socket {
        Socket(adopting: try call("dup") { fd throws(Errno) in try Syscall.duplicate(fd) })
    }

    public var description: String {
        let fd = descriptor
        return fd >= 0 ? "Socket(fd: \(fd))" : "Socket(closed)"
    }

    // MARK: Modes

    /// Non-blocking mode (`O_NONBLOCK`): calls that would block fail with `EAGAIN`
    /// (``SocketError/isWouldBlock``), or return `nil` from the `try...` methods.
    public func isNonBlocking() throws(SocketError) -> Bool {
        try call("fcntl(F_GETFL)") { fd throws(Errno) in try Syscall.fileStatusFlags(fd) } & CInt(O_NONBLOCK) != 0
    }

    /// Sets or clears `O_NONBLOCK`.
    public func setNonBlocking(_ nonBlocking: Bool) throws(SocketError) {
        try call("fcntl(F_SETFL)") { fd throws(Errno) in
            let flags = try Syscall.fileStatusFlags(fd)
            let wanted = nonBlocking ? flags | CInt(O_NONBLOCK) : flags & ~CInt(O_NONBLOCK)
            if wanted != flags { try Syscall.setFileStatusFlags(fd, wanted) }
        }
    }

    /// Whether the descriptor is closed on `exec` (`FD_CLOEXEC`); true unless changed.
    public func isCloseOnExec() throws(SocketError) -> Bool {
        try call("fcntl(F_GETFD)") { fd throws(Errno) in try Syscall.descriptorFlags(fd) } & CInt(FD_CLOEXEC) != 0
    }

    /// Sets or clears `FD_CLOEXEC` (clear it only to hand the socket to a child process).
    public func setCloseOnExec(_ closeOnExec: Bool) throws(SocketError) {
        try call("fcntl(F_SETFD)") { fd throws(Errno) in
            let flags = try Syscall.descriptorFlags(fd)
            try Syscall.setDescriptorFlags(fd, closeOnExec ? flags | CInt(FD_CLOEXEC) : flags & ~CInt(FD_CLOEXEC))
        }
    }

    // MARK: Connections

    /// Binds to a local address: `bind(2)`. Port 0 asks for an ephemeral port; read it back
    /// with ``localAddress()``. Binding ``UnixSocketAddress/unnamed`` autobinds an abstract name.
    public func bind(to address: SocketAddress) throws(SocketError) {
        try call("bind", address: address.description) { fd throws(Errno) in
            try address.withUnsafeSockaddr { (pointer, length) throws(Errno) in try Syscall.bind(fd, pointer, length) }
        }
    }

    /// Starts accepting connections: `listen(2)`.
    /// - Parameter backlog: the queue of connections not yet accepted; the kernel caps it at
    ///   `net.core.somaxconn`. Negative values are rejected.
    public func listen(backlog: Int = 128) throws(SocketError) {
        guard let backlog = CInt(exactly: backlog), backlog >= 0 else {
            throw SocketError.invalid("listen", nil, "backlog \(backlog) is outside 0...\(CInt.max)")
        }
        try call("listen") { fd throws(Errno) in try Syscall.listen(fd, backlog: backlog) }
    }

    /// Connects: `connect(2)`. On a blocking socket this waits until connected; on a
    /// non-blocking one, see ``tryConnect(to:)``.
    ///
    /// On a datagram socket it sets the default destination and filters incoming datagrams;
    /// connect to ``disconnectAddress`` (`AF_UNSPEC`) to undo that.
    ///
    /// A blocking connect that runs out of `SO_SNDTIMEO` fails with
    /// ``SocketError/Reason/timedOut`` (TCP) or `EAGAIN` (a Unix listener whose backlog stays
    /// full); ``SocketError/isTimeout`` is true for both. A connect interrupted by a signal is
    /// resumed, and `SO_SNDTIMEO` still bounds the whole wait: signal(7) says such a connect
    /// is not restarted, so each retry gets only the time left.
    public func connect(to address: SocketAddress) throws(SocketError) {
        let started = ContinuousClock.now
        /// When the send timeout runs out, known once a signal has interrupted the connect.
        var deadline: ContinuousClock.Instant?
        var interrupted = false
        /// The caller's SO_SNDTIMEO, while a retry runs with only the time left.
        var callersTimeout: Duration?
        defer { if let callersTimeout { try? set(.sendTimeout, callersTimeout) } }
        while true {
            let result: IOResult<Void>
            do {
                result = try call("connect", address: address.description) { fd throws(Errno) in
                    try address.withUnsafeSockaddr { (pointer, length) throws(Errno) in try Syscall.connect(fd, pointer, length) }
                }
            } catch where error.reason == .system(.interrupted) {
                // Calling again resumes it: a TCP connect under way answers EALREADY or
                // EISCONN; a Unix connect, which an interruption cancels, starts over.
                if !interrupted {
                    interrupted = true
                    callersTimeout = try get(.sendTimeout)
                    deadline = callersTimeout.map { started.advanced(by: $0) }
                }
                if let deadline {
                    let left = ContinuousClock.now.duration(to: deadline)
                    guard left > .zero else { throw SocketError("connect", address: address.description, reason: .timedOut) }
                    // A restarted Unix connect would wait a whole SO_SNDTIMEO again.
                    try set(.sendTimeout, max(left, .milliseconds(1)))
                }
                continue
            } catch where error.reason == .system(.resourceTemporarilyUnavailable) {
                throw wouldBlockError("connect", address: address.description, timeout: .send)
            } catch where interrupted && error.reason == .system(.socketIsConnected) {
                return
            } catch where interrupted && error.reason == .system(.alreadyInProcess) {
                try finishConnect(to: address, deadline: deadline)
                return
            }
            guard case .wouldBlock = result else { return }
            // In progress: on a non-blocking socket, wait like a blocking connect would; on a
            // blocking one, the kernel gave up waiting because SO_SNDTIMEO ran out.
            guard try isNonBlocking() else {
                throw SocketError("connect", address: address.description, reason: .timedOut)
            }
            try finishConnect(to: address, deadline: nil)
            return
        }
    }

    /// Starts a connect on a non-blocking socket: `true` when it completed at once, `false`
    /// when it is under way (`EINPROGRESS`); then wait for writability and call
    /// ``finishConnect()``.
    ///
    /// A Unix listener with a full backlog makes this throw `EAGAIN`
    /// (``SocketError/isWouldBlock``): nothing is under way, and the connect must be tried again.
    public func tryConnect(to address: SocketAddress) throws(SocketError) -> Bool {
        let result = try call("connect", address: address.description) { fd throws(Errno) in
            try address.withUnsafeSockaddr { (pointer, length) throws(Errno) in try Syscall.connect(fd, pointer, length) }
        }
        return result.value != nil
    }

    /// Reads the outcome of a non-blocking connect (`SO_ERROR`) once the socket is writable.
    /// - Throws: the connect's error, such as `ECONNREFUSED`.
    public func finishConnect() throws(SocketError) {
        let pending = try takeError()
        if let pending {
            throw SocketError("connect", address: (try? peerAddressIfAny())?.description, errno: pending)
        }
    }

    /// Connects, giving up after `timeout`: ``connect(to:deadline:)`` with a deadline that
    /// far from now.
    /// - Throws: ``SocketError/Reason/timedOut`` when the time runs out.
    public func connect(to address: SocketAddress, timeout: Duration) throws(SocketError) {
        try connect(to: address, deadline: ContinuousClock.now.advanced(by: timeout))
    }

    /// Connects, giving up at `deadline`: a non-blocking connect, `poll(2)` for writability
    /// with the time left, then `SO_ERROR`. The socket's blocking mode is restored after.
    ///
    /// A Unix listener whose backlog is full (`EAGAIN`) is retried every few milliseconds until
    /// the time runs out.
    /// - Throws: ``SocketError/Reason/timedOut`` when the time runs out.
    public func connect(to address: SocketAddress, deadline: ContinuousClock.Instant) throws(SocketError) {
        let wasNonBlocking = try isNonBlocking()
        if !wasNonBlocking { try setNonBlocking(true) }
        defer { if !wasNonBlocking { try? setNonBlocking(false) } }
        while true {
            do {
                if try tryConnect(to: address) { return }
                break
            } catch where error.isWouldBlock {
                let left = ContinuousClock.now.duration(to: deadline)
                guard left > .zero else { throw SocketError("connect", address: address.description, reason: .timedOut) }
                // Nothing to poll for: the listener's queue is not ours. Sleep a little.
                _ = try? Syscall.poll(nil, 0, timeoutMilliseconds: min(5, Self.milliseconds(roundingUp: left)))
            }
        }
        try finishConnect(to: address, deadline: deadline)
    }

    /// Waits for a connect under way to finish, then reports its outcome.
    func finishConnect(to address: SocketAddress, deadline: ContinuousClock.Instant?) throws(SocketError) {
        guard try waitUntil(.writable, deadline: deadline, operation: "connect", address: address.description) else {
            throw SocketError("connect", address: address.description, reason: .timedOut)
        }
        if let pending = try takeError() {
            throw SocketError("connect", address: address.description, errno: pending)
        }
    }

    /// The pending error (`SO_ERROR`), which reading clears; `nil` when there is none.
    public func takeError() throws(SocketError) -> Errno? {
        var value: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        try call("getsockopt(SO_ERROR)") { fd throws(Errno) in
            try Syscall.getsockopt(fd, level: SOL_SOCKET, name: SO_ERROR, &value, &length)
        }
        return value == 0 ? nil : Errno(rawValue: value)
    }

    /// Waits up to the deadline for readiness with `poll(2)`; `false` when the time ran out.
    /// `EINTR` is retried with the time left.
    func waitUntil(_ events: PollEvents, deadline: ContinuousClock.Instant?, operation: StaticString, address: String? = nil) throws(SocketError) -> Bool {
        try call(operation, address: address) { fd throws(Errno) in
            while true {
                var entry = pollfd(fd: fd, events: Int16(truncatingIfNeeded: events.rawValue), revents: 0)
                var timeout: CInt = -1
                if let deadline {
                    let left = ContinuousClock.now.duration(to: deadline)
                    if left <= .zero { return false }
                    timeout = Self.milliseconds(roundingUp: left)
                }
                do throws(Errno) {
                    if try Syscall.poll(&entry, 1, timeoutMilliseconds: timeout) > 0 { return true }
                    if deadline == nil { continue }
                } catch where error == .interrupted {
                    continue
                }
            }
        }
    }

    /// A duration in whole milliseconds, rounded up so that a wait never ends early, capped
    /// at `CInt.max`.
    static func milliseconds(roundingUp duration: Duration) -> CInt {
        let (seconds, attoseconds) = duration.components
        if seconds >= Int64(CInt.max / 1000) { return CInt.max }
        let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return CInt(clamping: max(0, milliseconds))
    }

    /// Accepts a connection: `accept4(2)` with `SOCK_CLOEXEC`. Waits on a blocking socket.
    /// - Returns: the connected socket and the peer's address.
    public func accept(nonBlocking: Bool = false) throws(SocketError) -> (socket: Socket, peer: SocketAddress) {
        guard let accepted = try tryAccept(nonBlocking: nonBlocking) else {
            throw wouldBlockError("accept", timeout: .receive)
        }
        return accepted
    }

    /// Accepts a connection if one is waiting; `nil` when none is (non-blocking listener).
    ///
    /// A connection reset while still queued (`ECONNABORTED`) is skipped, not reported.
    public func tryAccept(nonBlocking: Bool = false) throws(SocketError) -> (socket: Socket, peer: SocketAddress)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let flags = CInt(SOCK_CLOEXEC.rawValue) | (nonBlocking ? CInt(SOCK_NONBLOCK.rawValue) : 0)
        let result = try call("accept") { fd throws(Errno) in
            try withUnsafeMutablePointer(to: &storage) { (pointer) throws(Errno) -> IOResult<CInt> in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(Errno) -> IOResult<CInt> in
                    try Syscall.accept(fd, address, &length, flags: flags)
                }
            }
        }
        guard case .complete(let descriptor) = result else { return nil }
        let peer = withUnsafeBytes(of: &storage) { SocketAddress(sockaddr: $0.baseAddress!, length: length) }
        return (Socket(adopting: descriptor), peer)
    }

    /// Shuts down one or both directions: `shutdown(2)`. Shutting down writing sends the
    /// peer end-of-file while still letting this side read (a half-close).
    public func shutdown(_ direction: ShutdownDirection) throws(SocketError) {
        try call("shutdown") { fd throws(Errno) in try Syscall.shutdown(fd, how: direction.rawValue) }
    }

    /// The address this socket is bound to: `getsockname(2)`.
    public func localAddress() throws(SocketError) -> SocketAddress {
        try address("getsockname") { fd, pointer, length throws(Errno) in try Syscall.getsockname(fd, pointer, length) }
    }

    /// The port this IPv4 or IPv6 socket is bound to, from `getsockname(2)`: what
    /// `localAddress().port` gives, without the optional that other families need.
    ///
    /// After binding to port 0, this is the port the kernel chose. A socket that is not bound
    /// yet reports 0.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` for a socket of another family.
    public func localPort() throws(SocketError) -> UInt16 {
        let address = try localAddress()
        guard let port = address.port else {
            throw SocketError.invalid("getsockname", address.description, "not an IPv4 or IPv6 socket, so it has no port")
        }
        return port
    }

    /// The address of the connected peer: `getpeername(2)`. Fails with `ENOTCONN` when
    /// not connected.
    public func peerAddress() throws(SocketError) -> SocketAddress {
        try address("getpeername") { fd, pointer, length throws(Errno) in try Syscall.getpeername(fd, pointer, length) }
    }

    func peerAddressIfAny() throws(SocketError) -> SocketAddress? {
        try? peerAddress()
    }

    private func address(
        _ operation: StaticString,
        _ body: (CInt, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) throws(Errno) -> Void
    ) throws(SocketError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        try call(operation) { fd throws(Errno) in
            try withUnsafeMutablePointer(to: &storage) { (pointer) throws(Errno) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(Errno) in
                    try body(fd, address, &length)
                }
            }
        }
        return withUnsafeBytes(of: &storage) { SocketAddress(sockaddr: $0.baseAddress!, length: length) }
    }

    /// The address that disconnects a connected datagram socket when passed to
    /// ``connect(to:)``: an `AF_UNSPEC` address.
    ///
    /// Linux then also forgets a local port that `bind` chose (bound as port 0, or autobound
    /// by the first send): the socket gets a new one on its next send.
    public static var disconnectAddress: SocketAddress {
        // A family of AF_UNSPEC (0) and padding: the kernel reads only the family.
        .other(RawSocketAddress(unspecifiedOfLength: 16))
    }
}
