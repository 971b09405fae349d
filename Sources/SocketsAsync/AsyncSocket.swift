public import Sockets
import Synchronization

/// A socket registered with an ``EventLoop``: every call that would block suspends the task
/// instead, until the socket is ready, a deadline passes, the task is cancelled, or the
/// socket is closed.
///
/// It wraps any `Socket` (TCP, UDP, Unix stream/datagram/seqpacket, raw, ...), like tokio's
/// `AsyncFd`: ``io(_:deadline:_:)`` turns any non-blocking `try...` call of the core into an
/// async one, and the methods here (``receive(into:flags:deadline:)``,
/// ``sendAll(_:flags:deadline:)-(UnsafeRawBufferPointer,_,_)``, ``accept(loop:deadline:)``,
/// ``connect(to:deadline:)``, ...) are built on it.
///
/// How an operation runs: it tries the system call first; only when the kernel says it would
/// block does it wait for the loop to see the socket ready, then tries again. No wake-up is
/// lost between the try and the wait. A short read on a stream socket counts as "drained",
/// which saves the extra `recv` that would return `EAGAIN`.
///
/// - Deadlines: each operation takes an optional `deadline`; ``setReadDeadline(_:)`` and
///   ``setWriteDeadline(_:)`` set one for every read or write, waiting ones included (like
///   Go's). A deadline only limits waiting: an operation that can complete at once does,
///   even past its deadline.
///   An operation whose deadline passes fails with `SocketError.Reason.timedOut`; the
///   socket stays usable.
/// - Cancellation: cancelling the task of a waiting operation ends the wait at once with a
///   `SocketError` whose errno is `ECANCELED` (`SocketError.isCancellation`); the socket
///   stays usable.
/// - ``close()`` wakes every waiting operation with `SocketError.Reason.closed`.
///
/// Any task can use it; tasks that prefer its loop as their executor
/// (`Task(executorPreference: socket.loop)`) resume without a thread switch.
public final class AsyncSocket: Sendable, CustomStringConvertible {
    /// The socket; non-blocking. Use it for options and for calls without async versions.
    public let socket: Socket
    /// The loop the socket is registered with.
    public let loop: EventLoop
    /// The socket's type (`SO_TYPE`).
    public let type: SocketType
    let registration: Registration
    /// Stream sockets treat a short read or write as "drained" (see the type's notes).
    let isStream: Bool

    /// Registers a socket with a loop, making it non-blocking (`O_NONBLOCK`).
    ///
    /// The socket must stay open while registered: close it with ``close()`` (which
    /// deregisters it first), not with `Socket.close()`.
    /// - Parameters:
    ///   - socket: any open socket.
    ///   - loop: the loop to register with; ``EventLoop/shared`` by default.
    /// - Throws: when `fcntl`, `getsockopt(SO_TYPE)` or `epoll_ctl` fails, or the loop is shut down.
    public convenience init(_ socket: Socket, loop: EventLoop = .shared) throws(SocketError) {
        try socket.setNonBlocking(true)
        try self.init(registering: socket, type: try socket.type(), loop: loop)
    }

    /// Registers a socket already non-blocking, of a known type.
    init(registering socket: Socket, type: SocketType, loop: EventLoop) throws(SocketError) {
        self.socket = socket
        self.loop = loop
        self.type = type
        self.isStream = type == .stream
        self.registration = try loop.register(socket)
    }

    /// Opens a non-blocking socket and registers it: `socket(2)` with `SOCK_NONBLOCK`.
    public convenience init(
        _ domain: SocketDomain, _ type: SocketType, _ protocol: SocketProtocol = .default, loop: EventLoop = .shared
    ) throws(SocketError) {
        let socket = try Socket(domain, type, `protocol`, nonBlocking: true)
        do throws(SocketError) {
            try self.init(registering: socket, type: type, loop: loop)
        } catch {
            try? socket.close()
            throw error
        }
    }

    /// A connected pair of sockets (`socketpair(2)`), both registered with `loop`.
    public static func pair(
        _ domain: SocketDomain = .unix, _ type: SocketType = .stream, loop: EventLoop = .shared
    ) throws(SocketError) -> (AsyncSocket, AsyncSocket) {
        let (first, second) = try Socket.pair(domain, type, nonBlocking: true)
        do throws(SocketError) {
            let one = try AsyncSocket(registering: first, type: type, loop: loop)
            do throws(SocketError) {
                return (one, try AsyncSocket(registering: second, type: type, loop: loop))
            } catch {
                try? one.close()
                throw error
            }
        } catch {
            try? first.close()
            try? second.close()
            throw error
        }
    }

    deinit {
        registration.end(.closed)
        loop.deregister(registration, socket)
        DescriptorPressure.descriptorReleased()
    }

    /// `AsyncSocket(descriptor, type, loop)`, for logs.
    public var description: String { "AsyncSocket(\(socket.descriptor), \(type), \(loop.name))" }

    /// How many operations are waiting on this socket now (for tests and diagnostics).
    package var waitingOperationCount: Int { registration.waiterCount }

    /// Whether ``close()`` was called (or the loop was shut down).
    public var isClosed: Bool { registration.ended != nil || socket.isClosed }

    /// Closes the socket: wakes every waiting operation (they fail with
    /// `SocketError.Reason.closed`), removes it from the loop, then closes the descriptor.
    /// Idempotent.
    public func close() throws(SocketError) {
        registration.end(.closed)
        loop.deregister(registration, socket)
        defer { DescriptorPressure.descriptorReleased() }
        try socket.close()
    }

    /// Shuts down one or both directions: `shutdown(2)`.
    public func shutdown(_ direction: ShutdownDirection) throws(SocketError) {
        try socket.shutdown(direction)
    }

    /// The local address: `getsockname(2)`.
    public func localAddress() throws(SocketError) -> SocketAddress { try socket.localAddress() }

    /// The port this IPv4 or IPv6 socket is bound to: `Socket.localPort()`.
    public func localPort() throws(SocketError) -> UInt16 { try socket.localPort() }

    /// The peer's address: `getpeername(2)`.
    public func peerAddress() throws(SocketError) -> SocketAddress { try socket.peerAddress() }

    // MARK: Deadlines

    /// The deadline for reads (receive, accept, ...), or `nil` for none.
    public var readDeadline: ContinuousClock.Instant? { registration.socketDeadline(.read) }

    /// The deadline for writes (send, connect, ...), or `nil` for none.
    public var writeDeadline: ContinuousClock.Instant? { registration.socketDeadline(.write) }

    /// Sets a deadline for every read: a read that would wait past it fails with
    /// `SocketError.Reason.timedOut`, including reads waiting now. `nil` removes it.
    /// Like Go's `SetReadDeadline`, it is absolute: set a new one to extend it.
    public func setReadDeadline(_ deadline: ContinuousClock.Instant?) {
        registration.setSocketDeadline(.read, deadline)
    }

    /// Sets a deadline for every write, as ``setReadDeadline(_:)`` does for reads.
    public func setWriteDeadline(_ deadline: ContinuousClock.Instant?) {
        registration.setSocketDeadline(.write, deadline)
    }

    /// Sets the same deadline for reads and writes.
    public func setDeadline(_ deadline: ContinuousClock.Instant?) {
        setReadDeadline(deadline)
        setWriteDeadline(deadline)
    }

    // MARK: The readiness primitive

    /// The readiness an operation waits for.
    public enum Interest: Sendable, Hashable {
        /// Input: data, a connection to accept, end-of-file, an error.
        case readable
        /// Output: room to send, a finished connect, an error.
        case writable

        var direction: Direction { self == .readable ? .read : .write }
    }

    /// Runs a non-blocking attempt until it completes: `attempt` returns `nil` when the call
    /// would block (`EAGAIN`), as the core's `try...` methods do; the task then waits for
    /// `interest` and tries again.
    ///
    /// ```swift
    /// let message = try await connection.io(.readable) {
    ///     try connection.socket.tryReceiveMessage(into: buffers, controlCapacity: 64)
    /// }
    /// ```
    /// - Throws: what `attempt` throws; `SocketError.Reason.timedOut` at the deadline;
    ///   `ECANCELED` when the task is cancelled while waiting; `SocketError.Reason.closed`
    ///   when the socket is closed.
    public func io<R>(
        _ interest: Interest, deadline: ContinuousClock.Instant? = nil,
        _ attempt: () throws(SocketError) -> R?
    ) async throws(SocketError) -> R {
        try await perform(interest.direction, "io", deadline: deadline) { _ throws(SocketError) in try attempt() }
    }

    /// A readiness seen by ``readable(deadline:)`` or ``writable(deadline:)``.
    public struct Readiness: Sendable {
        let registration: Registration
        let direction: Direction
        let token: UInt32

        /// Records that the call this readiness led to would block (`EAGAIN`), so that the next
        /// wait suspends until a new event. It does nothing if an event came in since, so no
        /// wake-up is lost.
        public func clear() {
            registration.clearReady(direction, token: token)
        }
    }

    /// Waits until the socket may be readable. After a call that still would block, call
    /// ``Readiness/clear()`` on the result before waiting again (``io(_:deadline:_:)`` does
    /// both for you).
    public func readable(deadline: ContinuousClock.Instant? = nil) async throws(SocketError) -> Readiness {
        try await ready(.read, deadline: deadline)
    }

    /// Waits until the socket may be writable; see ``readable(deadline:)``.
    public func writable(deadline: ContinuousClock.Instant? = nil) async throws(SocketError) -> Readiness {
        try await ready(.write, deadline: deadline)
    }

    private func ready(_ direction: Direction, deadline: ContinuousClock.Instant?) async throws(SocketError) -> Readiness {
        while true {
            if let token = registration.readyToken(direction) {
                return Readiness(registration: registration, direction: direction, token: token)
            }
            try await waitOnce(direction, direction == .read ? "wait readable" : "wait writable", deadline: deadline)
        }
    }

    /// The loop of every operation: try, and on "would block" clear readiness and wait.
    /// `attempt` sets its argument to `true` when the call drained the socket (a short
    /// stream read or write), which clears readiness too.
    @inline(__always)
    func perform<R>(
        _ direction: Direction, _ operation: StaticString, address: @autoclosure () -> String? = nil,
        deadline: ContinuousClock.Instant?, _ attempt: (inout Bool) throws(SocketError) -> R?
    ) async throws(SocketError) -> R {
        while true {
            if let token = registration.readyToken(direction) {
                var drained = false
                if let result = try attempt(&drained) {
                    if drained { registration.clearDrained(direction, token: token) }
                    return result
                }
                registration.clearReady(direction, token: token)
            }
            let wake = await registration.wait(direction, deadline: deadline)
            if wake == .ready { continue }
            if wake == .timedOut {
                // A deadline limits waiting: what the kernel has now (an event the loop has
                // not reported yet) is still taken.
                var drained = false
                if let result = try attempt(&drained) { return result }
            }
            throw error(for: wake, operation, address: address())
        }
    }

    /// Waits once; throws for anything but readiness.
    func waitOnce(
        _ direction: Direction, _ operation: StaticString, address: String? = nil, deadline: ContinuousClock.Instant?
    ) async throws(SocketError) {
        let wake = await registration.wait(direction, deadline: deadline)
        if wake != .ready { throw error(for: wake, operation, address: address) }
    }

    /// The error for a wait that ended without readiness.
    private func error(for wake: Wake, _ operation: StaticString, address: String?) -> SocketError {
        switch wake {
        case .ready, .timedOut:
            return SocketError(operation.description, address: address, reason: .timedOut)
        case .cancelled:
            return SocketError(operation.description, address: address, errno: .canceled)
        case .closed:
            return SocketError(operation.description, address: address, reason: .closed)
        case .loopStopped:
            return SocketError("\(operation) (event loop \(loop.name) shut down)", address: address, reason: .closed)
        }
    }
}

extension SocketError {
    /// Whether the operation was stopped because its task was cancelled (errno `ECANCELED`).
    public var isCancellation: Bool {
        if case .system(let code) = reason { return code == .canceled }
        return false
    }
}

/// Listeners that ran out of descriptors (`EMFILE`) wait here for one to be closed, or for a
/// short timer, instead of retrying `accept` in a loop.
enum DescriptorPressure {
    private static let starved = LockedValue<[ObjectIdentifier: Registration]>([:])
    private static let starvedCount = Atomic<Int>(0)

    static func add(_ registration: Registration) {
        starved.withLock { $0[ObjectIdentifier(registration)] = registration }
        starvedCount.add(1, ordering: .relaxed)
    }

    static func remove(_ registration: Registration) {
        starved.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(registration)) }
        starvedCount.subtract(1, ordering: .relaxed)
    }

    /// A descriptor was closed: wake the starved listeners so that they try again.
    static func descriptorReleased() {
        guard starvedCount.load(ordering: .relaxed) > 0 else { return }
        let waiting = starved.withLock { Array($0.values) }
        for registration in waiting { registration.poke(.read) }
    }

    /// Whether an accept error means "out of descriptors or memory": worth waiting, not
    /// worth spinning.
    static func isExhaustion(_ error: SocketError) -> Bool {
        guard case .system(let code) = error.reason else { return false }
        return code == .tooManyOpenFiles || code == .tooManyOpenFilesInSystem
            || code == .noBufferSpace || code == .noMemory
    }
}
