import Sockets
import Synchronization

/// Which way an operation moves data, and so which readiness it waits for.
enum Direction: Int, Sendable {
    case read = 0
    case write = 1
}

/// Why a waiter was resumed.
enum Wake: Sendable {
    /// An event arrived: try the operation again.
    case ready
    /// Its deadline passed.
    case timedOut
    /// Its task was cancelled.
    case cancelled
    /// The socket was closed.
    case closed
    /// The event loop was shut down.
    case loopStopped
}

/// A deadline as a `Duration` since a fixed instant. `ContinuousClock.Instant` is resilient (its
/// layout is private to the standard library), so each copy, comparison or test for `nil` of
/// one goes through the runtime's value witnesses, and so does every copy of a struct that
/// holds one: on the way of every wait. `Duration` is frozen, so this is plain integers.
struct Deadline: Comparable, Sendable {
    let sinceOrigin: Duration

    private static let origin = ContinuousClock.now

    init(_ instant: ContinuousClock.Instant) {
        sinceOrigin = Self.origin.duration(to: instant)
    }

    static var now: Deadline { Deadline(.now) }

    var instant: ContinuousClock.Instant { Self.origin.advanced(by: sinceOrigin) }

    static func < (left: Deadline, right: Deadline) -> Bool {
        left.sinceOrigin < right.sinceOrigin
    }
}

/// A task suspended until its socket is ready.
struct Waiter {
    let id: UInt64
    /// The deadline the operation asked for.
    let operationDeadline: Deadline?
    /// The earlier of the operation's deadline and the socket's deadline for the direction.
    var deadline: Deadline?
    let continuation: UnsafeContinuation<Wake, Never>
}

/// The waiters and deadlines of one direction.
struct DirectionState {
    var waiters: [Waiter] = []
    /// The socket-wide deadline for this direction (like Go's `SetReadDeadline`).
    var socketDeadline: Deadline?
    /// The deadline the loop's timer heap holds for this direction; `nil` when none is armed.
    /// An armed timer may be earlier than every waiter's deadline (waiters that left do not
    /// disarm it); when it fires, it is re-armed for the earliest waiter left.
    var armed: Deadline?
}

struct RegistrationState {
    var read = DirectionState()
    var write = DirectionState()
    /// Set once: `.closed` or `.loopStopped`.
    var ended: Wake?

    // Accessed in place (`_modify`): a get/set pair would copy the waiters array and make
    // every append allocate.
    subscript(direction: Direction) -> DirectionState {
        _read {
            if direction == .read { yield read } else { yield write }
        }
        _modify {
            if direction == .read { yield &read } else { yield &write }
        }
    }
}

/// One descriptor registered with an event loop's epoll instance (once, edge-triggered, for
/// input, output and read hang-up), with per-direction readiness and waiters.
///
/// Readiness is a word per direction: bit 0 says "may be ready, try the call", the other
/// bits count the events seen. An operation reads the word, tries its call, and on `EAGAIN`
/// (or a short stream read or write) clears bit 0 only if no event came in the meantime, so
/// an event between trying and waiting is never lost. Waiters are kept under a lock; the loop
/// sets the word first and takes the lock second, and a new waiter re-reads the word under
/// the lock.
final class Registration: @unchecked Sendable {
    let loop: EventLoop
    /// The value given to epoll: the slot in the loop's table and its generation.
    let token: UInt64

    private let readReadiness = Atomic<UInt32>(1)
    private let writeReadiness = Atomic<UInt32>(1)
    /// Set once epoll reported a read hang-up, hang-up or error: from then on reads end in
    /// end-of-file or an error, never `EAGAIN`, and no further edge will come.
    private let hungUp = Atomic<Bool>(false)
    private let waiterIDs = Atomic<UInt64>(0)
    let state = LockedValue(RegistrationState())

    // Positions in the loop's timer heap; guarded by the loop's shared lock.
    @exclusivity(unchecked) private var readHeapPosition = -1
    @exclusivity(unchecked) private var writeHeapPosition = -1

    init(loop: EventLoop, token: UInt64) {
        self.loop = loop
        self.token = token
    }

    func heapPosition(_ direction: Direction) -> Int {
        direction == .read ? readHeapPosition : writeHeapPosition
    }

    func setHeapPosition(_ direction: Direction, _ position: Int) {
        if direction == .read { readHeapPosition = position } else { writeHeapPosition = position }
    }

    // MARK: Readiness

    /// The readiness word when it says "try", else `nil`.
    @inline(__always)
    func readyToken(_ direction: Direction) -> UInt32? {
        let word = direction == .read
            ? readReadiness.load(ordering: .acquiring)
            : writeReadiness.load(ordering: .acquiring)
        return word & 1 != 0 ? word : nil
    }

    /// Clears "try" if no event arrived since `token` was read.
    @inline(__always)
    func clearReady(_ direction: Direction, token: UInt32) {
        if direction == .read {
            _ = readReadiness.compareExchange(expected: token, desired: token & ~1, ordering: .relaxed)
        } else {
            _ = writeReadiness.compareExchange(expected: token, desired: token & ~1, ordering: .relaxed)
        }
    }

    /// After a short stream read or write: clears "try" as ``clearReady(_:token:)`` does,
    /// except for reads once the peer hung up. A short read taken together with the peer's
    /// FIN leaves end-of-file still to be read, and the hang-up's one edge has already come.
    @inline(__always)
    func clearDrained(_ direction: Direction, token: UInt32) {
        if direction == .read && hungUp.load(ordering: .relaxed) { return }
        clearReady(direction, token: token)
    }

    /// Records an event: counts it and sets "try".
    @inline(__always)
    private func markReady(_ direction: Direction) {
        if direction == .read {
            var current = readReadiness.load(ordering: .relaxed)
            while true {
                let (done, seen) = readReadiness.weakCompareExchange(
                    expected: current, desired: (current &+ 2) | 1, ordering: .acquiringAndReleasing)
                if done { return }
                current = seen
            }
        } else {
            var current = writeReadiness.load(ordering: .relaxed)
            while true {
                let (done, seen) = writeReadiness.weakCompareExchange(
                    expected: current, desired: (current &+ 2) | 1, ordering: .acquiringAndReleasing)
                if done { return }
                current = seen
            }
        }
    }

    private static let readEvents: EpollEvents = [.readable, .readHangUp, .hangUp, .error, .priority]
    private static let writeEvents: EpollEvents = [.writable, .hangUp, .error]

    /// Handles events from epoll (or a wake-up standing in for one): marks the directions
    /// ready and resumes their waiters.
    func deliver(_ events: EpollEvents) {
        let read = !events.isDisjoint(with: Self.readEvents)
        let write = !events.isDisjoint(with: Self.writeEvents)
        // Before marking ready: a task that sees the new readiness word sees this too.
        if !events.isDisjoint(with: [.readHangUp, .hangUp, .error]) { hungUp.store(true, ordering: .relaxed) }
        if read { markReady(.read) }
        if write { markReady(.write) }
        state.withLock { state in
            if read { Self.resumeAll(&state.read.waiters, .ready) }
            if write { Self.resumeAll(&state.write.waiters, .ready) }
        }
    }

    /// Marks a direction ready and wakes its waiters, as an event would.
    func poke(_ direction: Direction) {
        deliver(direction == .read ? .readable : .writable)
    }

    private static func resumeAll(_ waiters: inout [Waiter], _ wake: Wake) {
        switch waiters.count {
        case 0:
            return
        case 1:
            // The usual case, without the general removal's range replacement.
            waiters.removeLast().continuation.resume(returning: wake)
        default:
            for waiter in waiters { waiter.continuation.resume(returning: wake) }
            waiters.removeAll(keepingCapacity: true)
        }
    }

    // MARK: Waiting

    /// Suspends until `direction` may be ready, the deadline (or the socket's deadline for the
    /// direction) passes, the task is cancelled, or the socket is closed. Returns at once
    /// when the direction is already marked ready.
    func wait(_ direction: Direction, deadline: ContinuousClock.Instant?) async -> Wake {
        let id = waiterIDs.wrappingAdd(1, ordering: .relaxed).newValue
        // The variant that inherits the caller's executor: it does not hop on entry and after
        // the operation (two executor checks per wait, each a lookup of the task's executor
        // preference under the task's status lock).
        return await _unsafeInheritExecutor_withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Wake, Never>) in
                if let immediate = addWaiter(direction, deadline: deadline, id: id, continuation) {
                    continuation.resume(returning: immediate)
                }
            }
        } onCancel: {
            cancelWaiter(direction, id: id)
        }
    }

    /// Queues a waiter, or says why it need not wait. Kept out of line and synchronous: inlined
    /// into the async caller, its locals would live in the task's allocator rather than on the
    /// thread's stack (a dozen task allocations per wait).
    @inline(never)
    private func addWaiter(
        _ direction: Direction, deadline instant: ContinuousClock.Instant?, id: UInt64,
        _ continuation: UnsafeContinuation<Wake, Never>
    ) -> Wake? {
        let deadline = instant.map(Deadline.init)
        return state.withLock { state in
            if let ended = state.ended { return ended }
            if readyToken(direction) != nil { return .ready }
            if Task.isCancelled { return .cancelled }
            // Each direction by name, not through the subscript: its accessor coroutine costs
            // more than the rest of this function on the way of every wait.
            return direction == .read
                ? queue(&state.read, .read, deadline: deadline, id: id, continuation)
                : queue(&state.write, .write, deadline: deadline, id: id, continuation)
        }
    }

    @inline(__always)
    private func queue(
        _ state: inout DirectionState, _ direction: Direction, deadline: Deadline?, id: UInt64,
        _ continuation: UnsafeContinuation<Wake, Never>
    ) -> Wake? {
        var effective = deadline
        if let socketDeadline = state.socketDeadline {
            effective = min(effective ?? socketDeadline, socketDeadline)
        }
        if let effective {
            if effective <= .now { return .timedOut }
            if state.armed.map({ effective < $0 }) ?? true {
                state.armed = effective
                loop.arm(self, direction, at: effective.instant)
            }
        }
        state.waiters.append(Waiter(id: id, operationDeadline: deadline, deadline: effective, continuation: continuation))
        return nil
    }

    /// Removes a cancelled task's waiter, if still queued, and resumes it.
    @inline(never)
    private func cancelWaiter(_ direction: Direction, id: UInt64) {
        let continuation: UnsafeContinuation<Wake, Never>? = state.withLock { state in
            guard let index = state[direction].waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state[direction].waiters.remove(at: index).continuation
        }
        continuation?.resume(returning: .cancelled)
    }

    /// Called by the loop when the timer of `direction` fires: resumes the waiters whose
    /// deadline passed and re-arms the timer for the earliest one left.
    func expire(_ direction: Direction, now instant: ContinuousClock.Instant) {
        let now = Deadline(instant)
        state.withLock { state in
            state[direction].armed = nil
            Self.timeOut(&state[direction], now: now)
            if let earliest = Self.earliestDeadline(state[direction].waiters) {
                state[direction].armed = earliest
                loop.arm(self, direction, at: earliest.instant)
            }
        }
    }

    private static func timeOut(_ direction: inout DirectionState, now: Deadline) {
        var index = 0
        while index < direction.waiters.count {
            if let deadline = direction.waiters[index].deadline, deadline <= now {
                direction.waiters.remove(at: index).continuation.resume(returning: .timedOut)
            } else {
                index += 1
            }
        }
    }

    private static func earliestDeadline(_ waiters: [Waiter]) -> Deadline? {
        var earliest: Deadline?
        for waiter in waiters {
            if let deadline = waiter.deadline { earliest = min(earliest ?? deadline, deadline) }
        }
        return earliest
    }

    // MARK: Deadlines and closing

    /// The socket-wide deadline for a direction.
    func socketDeadline(_ direction: Direction) -> ContinuousClock.Instant? {
        state.withLock { $0[direction].socketDeadline }?.instant
    }

    /// Sets the socket-wide deadline for a direction; it applies to waiting operations too.
    func setSocketDeadline(_ direction: Direction, _ instant: ContinuousClock.Instant?) {
        let deadline = instant.map(Deadline.init)
        state.withLock { state in
            state[direction].socketDeadline = deadline
            guard !state[direction].waiters.isEmpty else { return }
            for index in state[direction].waiters.indices {
                let own = state[direction].waiters[index].operationDeadline
                state[direction].waiters[index].deadline = switch (own, deadline) {
                case (let own?, let deadline?): min(own, deadline)
                case (let own?, nil): own
                case (nil, let deadline): deadline
                }
            }
            Self.timeOut(&state[direction], now: .now)
            if let earliest = Self.earliestDeadline(state[direction].waiters),
               state[direction].armed.map({ earliest < $0 }) ?? true {
                state[direction].armed = earliest
                loop.arm(self, direction, at: earliest.instant)
            }
        }
    }

    /// Ends the registration: every waiter, now and later, gets `reason`. Idempotent.
    /// - Returns: whether this call ended it.
    @discardableResult
    func end(_ reason: Wake) -> Bool {
        state.withLock { state in
            guard state.ended == nil else { return false }
            state.ended = reason
            Self.resumeAll(&state.read.waiters, reason)
            Self.resumeAll(&state.write.waiters, reason)
            return true
        }
    }

    /// Whether the registration has ended, and why.
    var ended: Wake? { state.withLock { $0.ended } }

    /// How many operations are waiting (for tests and diagnostics).
    var waiterCount: Int { state.withLock { $0.read.waiters.count + $0.write.waiters.count } }
}
