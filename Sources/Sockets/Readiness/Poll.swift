import Glibc
import SocketSyscalls
import SystemPackage

/// One descriptor in a ``Socket/poll(_:timeout:)-swift.type.method`` set: what to wait for, and after the call,
/// what happened.
public struct PollEntry: Sendable, CustomStringConvertible {
    /// The socket, for an entry made from one. It is held open for the whole wait, so its
    /// descriptor number cannot be closed and reused under the call.
    public let socket: Socket?
    let rawDescriptor: CInt

    /// The events to wait for. ``PollEvents/error``, ``PollEvents/hangUp`` and
    /// ``PollEvents/invalid`` are always reported, asked for or not.
    public var events: PollEvents

    /// What the last wait reported for this descriptor (`revents`); empty when nothing did.
    public internal(set) var returnedEvents: PollEvents = []

    /// An entry for any descriptor: a socket's, a pipe's, an ``EventNotifier``'s, ...
    ///
    /// A negative descriptor is skipped (`poll(2)` ignores it), which disables an entry
    /// without removing it.
    public init(descriptor: CInt, events: PollEvents) {
        self.socket = nil
        self.rawDescriptor = descriptor
        self.events = events
    }

    /// An entry for a socket. If the socket is closed when the wait starts, the entry reports
    /// ``PollEvents/invalid`` at once, as `poll(2)` does for a descriptor that is not open.
    public init(_ socket: Socket, events: PollEvents) {
        self.socket = socket
        self.rawDescriptor = -1
        self.events = events
    }

    /// The descriptor polled: the raw one, or the socket's (`-1` once the socket is closed).
    public var descriptor: CInt { socket?.descriptor ?? rawDescriptor }

    /// Whether the last wait reported any event for this descriptor.
    public var isReady: Bool { !returnedEvents.isEmpty }

    public var description: String {
        "PollEntry(fd: \(descriptor), events: \(events), returned: \(returnedEvents))"
    }
}

extension Socket {
    /// Waits until one of the descriptors is ready: `ppoll(2)` (`poll` with a nanosecond
    /// timeout), over sockets and raw descriptors alike.
    ///
    /// Each entry's ``PollEntry/returnedEvents`` is set (empty for those with nothing to
    /// report). A wait interrupted by a signal (`EINTR`) goes on with the time left, so a
    /// timeout is a real timeout.
    ///
    /// ```swift
    /// var entries = [PollEntry(listener, events: .readable), PollEntry(descriptor: notifier.descriptor, events: .readable)]
    /// if try Socket.poll(&entries, timeout: .seconds(5)) > 0, entries[0].isReady { ... }
    /// ```
    ///
    /// - Parameters:
    ///   - entries: the descriptors and the events to wait for.
    ///   - timeout: `nil` waits until an event; `.zero` (or less) only checks.
    /// - Returns: how many entries have events; 0 when the time ran out.
    /// - Throws: ``SocketError``; an empty set with no timeout (which would wait for ever)
    ///   is rejected before any call.
    @discardableResult
    public static func poll(_ entries: inout [PollEntry], timeout: Duration?) throws(SocketError) -> Int {
        if entries.isEmpty && timeout == nil {
            throw SocketError.invalid("poll", nil, "no descriptors and no timeout: the wait would never end")
        }
        // Hold every socket open for the wait; a closed one is reported as POLLNVAL.
        var entered = [Bool](repeating: false, count: entries.count)
        defer {
            for index in entries.indices where entered[index] { entries[index].socket?.handle.leave() }
        }
        var descriptors = [pollfd]()
        descriptors.reserveCapacity(entries.count)
        for index in entries.indices {
            var fd = entries[index].rawDescriptor
            if let socket = entries[index].socket {
                entered[index] = socket.handle.enter()
                fd = entered[index] ? socket.fd : -1
            }
            descriptors.append(pollfd(fd: fd, events: entries[index].events.rawValue, revents: 0))
        }
        let closedSockets = entries.indices.filter { entries[$0].socket != nil && !entered[$0] }
        // A closed socket is ready at once, as a closed descriptor would be.
        let deadline = WaitDeadline(timeout: closedSockets.isEmpty ? timeout : .zero)

        let count = try descriptors.withMutableBufferTyped { (buffer) throws(SocketError) -> Int in
            try waitForReadiness(operation: "poll", deadline: deadline) { (left) throws(Errno) -> Int in
                for index in buffer.indices { buffer[index].revents = 0 }
                guard let left else {
                    return try Syscall.ppoll(buffer.baseAddress, buffer.count, timeout: nil)
                }
                var limit = WaitDeadline.timespec(left)
                return try Syscall.ppoll(buffer.baseAddress, buffer.count, timeout: &limit)
            }
        }
        for index in entries.indices {
            entries[index].returnedEvents = PollEvents(rawValue: descriptors[index].revents)
        }
        for index in closedSockets {
            entries[index].returnedEvents = .invalid
        }
        return count + closedSockets.count
    }

    /// Waits until this socket is ready for any of `events`: `ppoll(2)` on one descriptor.
    ///
    /// ```swift
    /// if try socket.poll(.readable, timeout: .seconds(1)).contains(.readable) { ... }
    /// ```
    ///
    /// - Parameters:
    ///   - events: the events to wait for (``PollEvents/readable``, ``PollEvents/writable``, ...).
    ///   - timeout: `nil` waits until an event; `.zero` (or less) only checks.
    /// - Returns: the events that happened (``PollEvents/error`` and ``PollEvents/hangUp``
    ///   may be among them though not asked for); empty when the time ran out.
    /// - Throws: ``SocketError/Reason/closed`` if the socket is closed.
    public func poll(_ events: PollEvents, timeout: Duration?) throws(SocketError) -> PollEvents {
        guard handle.enter() else { throw SocketError("poll", reason: .closed) }
        defer { handle.leave() }
        var entry = pollfd(fd: fd, events: events.rawValue, revents: 0)
        let deadline = WaitDeadline(timeout: timeout)
        _ = try Socket.waitForReadiness(operation: "poll", deadline: deadline) { (left) throws(Errno) -> Int in
            entry.revents = 0
            guard let left else { return try Syscall.ppoll(&entry, 1, timeout: nil) }
            var limit = WaitDeadline.timespec(left)
            return try Syscall.ppoll(&entry, 1, timeout: &limit)
        }
        return PollEvents(rawValue: entry.revents)
    }

    /// Runs a readiness call with the time left until it reports something or the deadline
    /// passes, calling it again after `EINTR` (and after an early return at the call's own
    /// limit). `wait` gets the time left, `nil` for ever.
    static func waitForReadiness(
        operation: StaticString, address: String? = nil, deadline: WaitDeadline, _ wait: (Duration?) throws(Errno) -> Int
    ) throws(SocketError) -> Int {
        while true {
            do {
                let count = try wait(deadline.remaining())
                if count > 0 || deadline.hasPassed { return count }
            } catch where error == .interrupted {
                if deadline.hasPassed { return 0 }
            } catch {
                throw SocketError(operation.description, address: address, errno: error)
            }
        }
    }
}
