import Glibc
import CSocketShims
import SocketSyscalls
import SystemPackage
import Synchronization

/// Events for `epoll(7)` interest and reports (`EPOLL*`).
public struct EpollEvents: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `EPOLLIN`: readable (data, a pending connection, or end-of-file).
    public static let readable = EpollEvents(rawValue: EPOLLIN.rawValue)
    /// `EPOLLOUT`: writable.
    public static let writable = EpollEvents(rawValue: EPOLLOUT.rawValue)
    /// `EPOLLRDHUP`: the peer shut down writing.
    public static let readHangUp = EpollEvents(rawValue: EPOLLRDHUP.rawValue)
    /// `EPOLLPRI`: urgent data.
    public static let priority = EpollEvents(rawValue: EPOLLPRI.rawValue)
    /// `EPOLLERR` (always reported): an error is pending.
    public static let error = EpollEvents(rawValue: EPOLLERR.rawValue)
    /// `EPOLLHUP` (always reported): hang-up.
    public static let hangUp = EpollEvents(rawValue: EPOLLHUP.rawValue)
    /// `EPOLLET`: edge-triggered; report only changes, so read until `EAGAIN` (or a short read).
    public static let edgeTriggered = EpollEvents(rawValue: EPOLLET.rawValue)
    /// `EPOLLONESHOT`: report once, then disable until re-armed with ``Epoll/modify(_:events:data:)-(Socket,_,_)``.
    public static let oneShot = EpollEvents(rawValue: EPOLLONESHOT.rawValue)
    /// `EPOLLEXCLUSIVE`: wake only one of several epoll instances waiting on the descriptor.
    public static let exclusive = EpollEvents(rawValue: EPOLLEXCLUSIVE.rawValue)
    /// `EPOLLWAKEUP`: keep the system awake while the event is handled.
    public static let wakeUp = EpollEvents(rawValue: EPOLLWAKEUP.rawValue)

    public var description: String {
        let names: [(EpollEvents, String)] = [
            (.readable, "EPOLLIN"), (.writable, "EPOLLOUT"), (.readHangUp, "EPOLLRDHUP"), (.priority, "EPOLLPRI"),
            (.error, "EPOLLERR"), (.hangUp, "EPOLLHUP"), (.edgeTriggered, "EPOLLET"), (.oneShot, "EPOLLONESHOT"),
            (.exclusive, "EPOLLEXCLUSIVE"), (.wakeUp, "EPOLLWAKEUP"),
        ]
        let parts = names.filter { contains($0.0) }.map(\.1)
        return parts.isEmpty ? "[]" : parts.joined(separator: "|")
    }
}

/// One event reported by ``Epoll/wait(into:timeout:)``.
public struct EpollEvent: Hashable, Sendable {
    /// What happened.
    public var events: EpollEvents
    /// The value registered with the descriptor.
    public var data: UInt64

    public init(events: EpollEvents, data: UInt64) {
        self.events = events
        self.data = data
    }
}

/// Space for the events one `epoll_wait` returns, allocated once and reused.
///
/// Sendable because it cannot be copied: the one owner of the storage may hand it to another
/// thread, never share it.
public struct EpollEventBuffer: ~Copyable, @unchecked Sendable {
    let storage: UnsafeMutablePointer<epoll_event>
    /// How many events fit.
    public let capacity: Int
    /// How many events the last wait stored.
    public internal(set) var count = 0

    /// Space for `capacity` events (at least 1, at most 65,536).
    public init(capacity: Int) {
        self.capacity = min(max(capacity, 1), 65_536)
        storage = .allocate(capacity: self.capacity)
    }

    deinit { storage.deallocate() }

    /// The event at `index` (0 ..< ``count``).
    public subscript(index: Int) -> EpollEvent {
        precondition(index >= 0 && index < count, "epoll event index out of range")
        let raw = storage[index]
        return EpollEvent(events: EpollEvents(rawValue: raw.events), data: raw.data.u64)
    }
}

/// An `epoll(7)` instance: register descriptors with the events of interest, then wait.
///
/// Created close-on-exec. Closed by ``close()`` or when released; ``close()`` wakes threads
/// blocked in ``wait(into:timeout:)``, which then fail with ``SocketError/Reason/closed``.
///
/// A registration belongs to the open file, not to the descriptor number: closing a socket
/// removes it only once no duplicate of its descriptor remains open, so ``remove(_:)-(CInt)``
/// a socket before closing it if it may have been duplicated.
public final class Epoll: Sendable {
    let handle: OwnedDescriptor
    /// The `eventfd` that ``close()`` registers, already readable, to wake blocked waiters;
    /// `-1` until then, and again once the last waiter is out and it is closed.
    private let closeWaker = Atomic<CInt>(-1)
    /// The threads inside ``wait(into:timeout:)``, so that the last one out after a close
    /// can close ``closeWaker``.
    private let waiters = Atomic<Int>(0)

    /// The `data` of the event that ``close()`` uses to wake waiters.
    private static let closeWakerData = UInt64.max

    /// `epoll_create1(EPOLL_CLOEXEC)`.
    public init() throws(SocketError) {
        do {
            handle = OwnedDescriptor(try Syscall.epollCreate())
        } catch {
            throw SocketError("epoll_create1", errno: error)
        }
    }

    deinit {
        closeWakerIfAny()
    }

    /// The epoll descriptor; `-1` once closed.
    public var descriptor: CInt { handle.isClosed ? -1 : handle.fd }

    private func control(_ operation: CInt, _ name: StaticString, _ fd: CInt, _ events: EpollEvents, _ data: UInt64) throws(SocketError) {
        guard handle.enter() else { throw SocketError(name.description, reason: .closed) }
        defer { handle.leave() }
        var event = epoll_event()
        event.events = events.rawValue
        event.data.u64 = data
        do {
            try Syscall.epollControl(handle.fd, operation, fd, &event)
        } catch {
            throw SocketError(name.description, address: "fd \(fd)", errno: error)
        }
    }

    /// Runs `body` with the socket's descriptor held open.
    private func withOpen<R>(_ socket: Socket, _ name: StaticString, _ body: (CInt) throws(SocketError) -> R) throws(SocketError) -> R {
        guard socket.handle.enter() else { throw SocketError(name.description, address: socket.description, reason: .closed) }
        defer { socket.handle.leave() }
        return try body(socket.fd)
    }

    /// Registers a descriptor: `epoll_ctl(EPOLL_CTL_ADD)`. `data` comes back with its events.
    ///
    /// ``EpollEvents/error`` and ``EpollEvents/hangUp`` are always reported. Fails with
    /// `EEXIST` if the descriptor is registered already, and `EPERM` for a regular file.
    public func add(_ fd: CInt, events: EpollEvents, data: UInt64) throws(SocketError) {
        try control(CInt(EPOLL_CTL_ADD), "epoll_ctl(ADD)", fd, events, data)
    }

    /// Registers a socket: `epoll_ctl(EPOLL_CTL_ADD)`; `data` defaults to its descriptor number.
    public func add(_ socket: Socket, events: EpollEvents, data: UInt64? = nil) throws(SocketError) {
        try withOpen(socket, "epoll_ctl(ADD)") { (fd) throws(SocketError) in
            try add(fd, events: events, data: data ?? UInt64(UInt32(bitPattern: fd)))
        }
    }

    /// Changes a registration (and re-arms a one-shot one): `epoll_ctl(EPOLL_CTL_MOD)`.
    /// ``EpollEvents/exclusive`` cannot be changed here (`EINVAL`).
    public func modify(_ fd: CInt, events: EpollEvents, data: UInt64) throws(SocketError) {
        try control(CInt(EPOLL_CTL_MOD), "epoll_ctl(MOD)", fd, events, data)
    }

    /// Changes a socket's registration: `epoll_ctl(EPOLL_CTL_MOD)`; `data` defaults to its
    /// descriptor number.
    public func modify(_ socket: Socket, events: EpollEvents, data: UInt64? = nil) throws(SocketError) {
        try withOpen(socket, "epoll_ctl(MOD)") { (fd) throws(SocketError) in
            try modify(fd, events: events, data: data ?? UInt64(UInt32(bitPattern: fd)))
        }
    }

    /// Removes a registration: `epoll_ctl(EPOLL_CTL_DEL)`. Fails with `ENOENT` if the
    /// descriptor is not registered.
    public func remove(_ fd: CInt) throws(SocketError) {
        try control(CInt(EPOLL_CTL_DEL), "epoll_ctl(DEL)", fd, [], 0)
    }

    /// Removes a socket's registration: `epoll_ctl(EPOLL_CTL_DEL)`.
    public func remove(_ socket: Socket) throws(SocketError) {
        try withOpen(socket, "epoll_ctl(DEL)") { (fd) throws(SocketError) in try remove(fd) }
    }

    /// Waits for events: `epoll_wait(2)`.
    ///
    /// A wait interrupted by a signal (`EINTR`) goes on with the time left, so it returns
    /// early only with events. `epoll_wait` counts in milliseconds: the timeout is rounded up.
    /// - Parameters:
    ///   - buffer: receives the events; its capacity is the most one call returns.
    ///   - timeout: `nil` waits until an event; `.zero` (or less) only checks.
    /// - Returns: the number of events stored in `buffer` (also `buffer.count`); 0 when the
    ///   time ran out.
    /// - Throws: ``SocketError/Reason/closed`` if the instance is closed, also when
    ///   ``close()`` is called during the wait.
    @discardableResult
    public func wait(into buffer: inout EpollEventBuffer, timeout: Duration? = nil) throws(SocketError) -> Int {
        waiters.add(1, ordering: .sequentiallyConsistent)
        defer {
            if waiters.subtract(1, ordering: .sequentiallyConsistent).newValue == 0 && handle.isClosed {
                closeWakerIfAny()
            }
        }
        guard handle.enter() else { throw SocketError("epoll_wait", reason: .closed) }
        defer { handle.leave() }
        let storage = buffer.storage
        let capacity = CInt(buffer.capacity)
        let epfd = handle.fd
        buffer.count = 0
        let count = try Socket.waitForReadiness(operation: "epoll_wait", deadline: WaitDeadline(timeout: timeout)) { (left) throws(Errno) -> Int in
            let milliseconds = left.map { Socket.milliseconds(roundingUp: $0) } ?? -1
            return try Syscall.epollWait(epfd, storage, capacity, timeoutMilliseconds: milliseconds)
        }
        // Closed meanwhile: the events may include the close wake-up, and the caller asked to stop.
        if handle.isClosed { throw SocketError("epoll_wait", reason: .closed) }
        buffer.count = count
        return count
    }

    /// Waits and returns the events as an array (allocates; see ``wait(into:timeout:)``).
    public func wait(maxEvents: Int = 64, timeout: Duration? = nil) throws(SocketError) -> [EpollEvent] {
        var buffer = EpollEventBuffer(capacity: maxEvents)
        let count = try wait(into: &buffer, timeout: timeout)
        return (0..<count).map { buffer[$0] }
    }

    /// Closes the epoll instance. Idempotent.
    ///
    /// Threads blocked in ``wait(into:timeout:)`` are woken (by a readable `eventfd`
    /// registered for the purpose) and fail with ``SocketError/Reason/closed``; the
    /// descriptor is closed when the last of them returns.
    public func close() throws(SocketError) {
        do {
            try handle.close { epfd in wakeWaiters(epfd) }
        } catch {
            throw SocketError("close", errno: error)
        }
    }

    /// Registers an `eventfd` that is already readable, so every `epoll_wait` on `epfd`
    /// returns (the event is level-triggered, so the kernel passes it on to each waiter).
    private func wakeWaiters(_ epfd: CInt) {
        guard let waker = try? Syscall.eventfd(initialValue: 1, flags: CInt(EFD_NONBLOCK)) else { return }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = Self.closeWakerData
        guard (try? Syscall.epollControl(epfd, CInt(EPOLL_CTL_ADD), waker, &event)) != nil else {
            try? Syscall.close(waker)
            return
        }
        // Only the first close gets here (OwnedDescriptor runs this once).
        closeWaker.store(waker, ordering: .sequentiallyConsistent)
        // If every waiter left before the waker was stored, none of them closed it.
        if waiters.load(ordering: .sequentiallyConsistent) == 0 { closeWakerIfAny() }
    }

    /// Closes the close wake-up `eventfd`, once, whoever gets here first.
    private func closeWakerIfAny() {
        let waker = closeWaker.exchange(-1, ordering: .sequentiallyConsistent)
        if waker >= 0 { try? Syscall.close(waker) }
    }
}

/// An `eventfd(2)` counter: a descriptor another thread can make readable to wake a waiter.
public final class EventNotifier: Sendable {
    let handle: OwnedDescriptor

    /// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`.
    public init() throws(SocketError) {
        do {
            handle = OwnedDescriptor(try Syscall.eventfd(initialValue: 0, flags: CInt(EFD_NONBLOCK)))
        } catch {
            throw SocketError("eventfd", errno: error)
        }
    }

    /// The descriptor, to register with ``Epoll`` or `poll`; `-1` once closed.
    public var descriptor: CInt { handle.isClosed ? -1 : handle.fd }

    /// Adds 1 to the counter, making the descriptor readable.
    public func signal() throws(SocketError) {
        guard handle.enter() else { throw SocketError("eventfd write", reason: .closed) }
        defer { handle.leave() }
        var one: UInt64 = 1
        do {
            // A full counter (EAGAIN) is already readable: the wake-up is not lost.
            _ = try Syscall.write(handle.fd, &one, 8)
        } catch {
            throw SocketError("eventfd write", errno: error)
        }
    }

    /// Reads and resets the counter; 0 when it was not signalled.
    @discardableResult
    public func drain() throws(SocketError) -> UInt64 {
        guard handle.enter() else { throw SocketError("eventfd read", reason: .closed) }
        defer { handle.leave() }
        var value: UInt64 = 0
        do {
            return try Syscall.read(handle.fd, &value, 8).value == nil ? 0 : value
        } catch {
            throw SocketError("eventfd read", errno: error)
        }
    }

    /// Closes the descriptor. Idempotent.
    public func close() throws(SocketError) {
        do {
            try handle.close { _ in }
        } catch {
            throw SocketError("close", errno: error)
        }
    }
}
