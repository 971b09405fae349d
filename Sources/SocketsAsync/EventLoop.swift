public import Sockets
import Synchronization

/// A reactor: one thread waiting in `epoll_wait` for the sockets registered with it, and an
/// executor that runs tasks on that same thread.
///
/// Run a connection's task on its loop and each wake-up costs no thread switch: the loop sees
/// the socket ready, resumes the task, and runs it right there.
///
/// ```swift
/// let loop = EventLoop.shared
/// Task(executorPreference: loop) {
///     let connection = try await AsyncSocket.connect(to: .ipv4(.loopback, port: 8080), loop: loop)
///     try await connection.sendAll("hello")
/// }
/// ```
///
/// - Jobs enqueued from the loop's own thread go on a plain array; jobs from other threads go
///   on a locked queue, and the loop's `eventfd` is written only when the loop is asleep.
/// - Deadlines are kept in a heap; `epoll_wait` sleeps until the earliest.
/// - An idle loop sleeps in `epoll_wait` with no timeout: it uses no CPU.
/// - ``shared`` is a loop for programs that need only one; ``EventLoopGroup`` makes one per
///   core. Loops you create must be ended with ``shutdown()``.
///
/// The loop is a `TaskExecutor` (use it with `Task(executorPreference:)`,
/// `withTaskExecutorPreference`, or `group.addTask(executorPreference:)`) and a
/// `SerialExecutor` (return ``asUnownedSerialExecutor()`` from an actor's `unownedExecutor`
/// to run the actor on the loop's thread).
///
/// The two roles reach the loop through different objects, so that the loop knows how to run
/// each job: a job of a task that merely prefers the loop runs as nonisolated code (its
/// awaits on the loop's sockets continue in place), a job of an actor runs isolated to it.
/// Running every job as isolated would make each nonisolated `await` hop through the queue.
public final class EventLoop: TaskExecutor, SerialExecutor, @unchecked Sendable, CustomStringConvertible {
    /// A name for logs and thread listings.
    public let name: String

    private let epoll: Epoll?
    private let notifier: EventNotifier?
    /// Why the loop could not start, when it could not.
    private let startFailure: SocketError?

    private let shared = LockedValue(SharedState())
    private let table = LockedValue(RegistrationTable())
    /// The reactor thread's `pthread_t`, stored by the thread itself; 0 before it starts.
    private let loopThread = Atomic<UInt>(0)
    /// The thread to join in ``shutdown()``.
    private let joinable = LockedValue<SystemThread?>(nil)
    /// State only the reactor thread touches.
    private let local = LoopLocal()
    /// The loop's serial-executor identity: jobs enqueued through it run isolated to it.
    private let isolation: LoopIsolation
    /// Whether this is ``shared``, which runs for the life of the process. Kept here so that
    /// asking never touches (and so starts) the lazily made shared loop.
    private let isShared: Bool

    /// The `data` of the notifier's epoll registration. (`UInt64.max` is left alone: the
    /// core's epoll uses it to wake waiters on close.)
    private static let notifierToken = UInt64.max - 1

    private enum Phase { case running, stopping, stopped }

    private struct SharedState {
        var phase = Phase.running
        var remote: [QueuedJob] = []
        /// The loop is in (or about to enter) `epoll_wait` and needs an eventfd write to wake.
        var sleeping = false
        /// An eventfd write is on its way; no need for another.
        var wakeSignalled = false
        /// When the sleeping loop will wake by itself (`nil`: never).
        var sleepDeadline: ContinuousClock.Instant?
        /// Whether `sleepDeadline` is set: checked instead of the optional itself, because
        /// `ContinuousClock.Instant` is resilient and every copy or test of an optional one
        /// goes through its value witnesses (on the way of every wake-up).
        var hasSleepDeadline = false
        var timers = TimerHeap()
    }

    /// Creates a loop and starts its thread.
    /// - Parameter name: for logs and diagnostics.
    /// - Throws: when `epoll_create1`, `eventfd` or `pthread_create` fails.
    public convenience init(name: String = "EventLoop") throws(SocketError) {
        self.init(startingWithName: name, isShared: false)
        if let startFailure { throw startFailure }
    }

    /// A loop that never fails to exist: when its resources cannot be had, it records why,
    /// every registration fails with that error, and its jobs run on the global executor.
    private init(startingWithName name: String, isShared: Bool) {
        self.name = name
        self.isShared = isShared
        self.isolation = LoopIsolation()
        var failure: SocketError?
        var epoll: Epoll?
        var notifier: EventNotifier?
        do {
            let created = try Epoll()
            epoll = created
            let eventfd = try EventNotifier()
            notifier = eventfd
            try created.add(eventfd.descriptor, events: .readable, data: Self.notifierToken)
        } catch {
            failure = error
            try? epoll?.close()
            try? notifier?.close()
            epoll = nil
            notifier = nil
        }
        self.epoll = epoll
        self.notifier = notifier
        self.startFailure = failure
        isolation.loop = self
        guard failure == nil else {
            shared.withLock { $0.phase = .stopped }
            return
        }
        do {
            let thread = try SystemThread.spawn { [self] in self.runLoop() }
            joinable.withLock { $0 = thread }
        } catch {
            // No thread: behave as a stopped loop.
            shared.withLock { $0.phase = .stopped }
            try? epoll?.close()
            try? notifier?.close()
        }
    }

    /// The loop that ``AsyncSocket`` uses when given none. It starts on first use and runs
    /// for the life of the process.
    public static let shared = EventLoop(startingWithName: "SocketsAsync.shared", isShared: true)

    public var description: String { "EventLoop(\(name))" }

    /// Whether the caller is running on this loop's thread.
    public var inEventLoop: Bool {
        loopThread.load(ordering: .relaxed) == SystemThread.currentHandle
    }

    /// Whether the loop is running (not shut down, and it started).
    public var isRunning: Bool { shared.withLock { $0.phase == .running } }

    // MARK: Executor

    /// Queues a job to run on the loop's thread, as nonisolated code that prefers the loop
    /// (the `TaskExecutor` role; actors' jobs come through ``asUnownedSerialExecutor()``).
    public func enqueue(_ job: consuming ExecutorJob) {
        enqueue(QueuedJob(UnownedJob(job), isolated: false))
    }

    @inline(__always)
    fileprivate func enqueue(_ job: QueuedJob) {
        if inEventLoop {
            local.jobs.append(job)
            return
        }
        enqueueRemote(job)
    }

    private func enqueueRemote(_ job: QueuedJob) {
        let (wake, stopped) = shared.withLock { state -> (Bool, Bool) in
            if state.phase == .stopped { return (false, true) }
            state.remote.append(job)
            if state.sleeping && !state.wakeSignalled {
                state.wakeSignalled = true
                return (true, false)
            }
            return (false, false)
        }
        if stopped {
            // The loop is gone: let the task go on elsewhere rather than hang.
            globalConcurrentExecutor.enqueue(ExecutorJob(job.job))
        } else if wake {
            try? notifier?.signal()
        }
    }

    /// This loop as the executor of an actor (return it from the actor's `unownedExecutor`).
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: isolation)
    }

    /// This loop as a task executor preference.
    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    /// Whether `other` is this loop (one loop, one thread).
    public func isSameExclusiveExecutionContext(other: EventLoop) -> Bool {
        self === other
    }

    /// Whether the caller runs on this loop's thread, and so is isolated to it.
    public func isIsolatingCurrentContext() -> Bool? {
        inEventLoop
    }

    /// Stops the process if the caller is not on this loop's thread: the runtime calls it to
    /// check an `assumeIsolated` claim.
    public func checkIsolated() {
        precondition(inEventLoop, "not running on \(self)'s thread")
    }

    /// Runs `operation` with this loop as the task's preferred executor
    /// (`withTaskExecutorPreference`), so that its nonisolated code and the socket operations
    /// it awaits run on the loop's thread. (Code isolated to an actor still runs on that actor.)
    public func run<T, Failure: Error>(_ operation: () async throws(Failure) -> T) async throws(Failure) -> T {
        let result: Result<T, Failure> = await withTaskExecutorPreference(self) {
            do throws(Failure) {
                return .success(try await operation())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    // MARK: Shutting down

    /// Stops the loop: every operation waiting on one of its sockets fails
    /// (`SocketError.Reason.closed`), queued jobs run, the thread ends and the loop's
    /// epoll and eventfd descriptors are closed. Idempotent.
    ///
    /// From another thread, returns once the thread has ended. From the loop's own thread
    /// (inside one of its tasks), returns at once and the thread ends after the current job.
    /// Tasks that still prefer the loop afterwards run on the global executor.
    /// ``shared`` cannot be shut down.
    public func shutdown() {
        guard !isShared else { return }
        let signal = shared.withLock { state -> Bool in
            guard state.phase == .running else { return false }
            state.phase = .stopping
            return true
        }
        if signal { try? notifier?.signal() }
        guard let thread = joinable.withLock({ state -> SystemThread? in
            defer { state = nil }
            return state
        }) else { return }
        if inEventLoop {
            thread.detach()
        } else {
            try? thread.join()
        }
    }

    // MARK: Registrations

    /// Registers an open descriptor: once, edge-triggered, for input, output and read
    /// hang-up.
    func register(_ socket: Socket) throws(SocketError) -> Registration {
        guard let epoll else {
            throw startFailure ?? SocketError("register with event loop", reason: .closed)
        }
        let registration: Registration? = table.withLock { table in
            guard !table.closed else { return nil }
            return table.insert { token in Registration(loop: self, token: token) }
        }
        guard let registration else {
            throw SocketError("register with event loop (\(name) is shut down)", reason: .closed)
        }
        do {
            try epoll.add(socket, events: [.readable, .writable, .readHangUp, .edgeTriggered], data: registration.token)
        } catch {
            table.withLock { $0.remove(registration.token) }
            throw error
        }
        return registration
    }

    /// Removes a registration: from epoll (while the descriptor is still open, so that a
    /// duplicate of it cannot keep reporting), from the table, from the timer heap.
    func deregister(_ registration: Registration, _ socket: Socket) {
        _ = try? socket.withDescriptor { fd in try epoll?.remove(fd) }
        table.withLock { $0.remove(registration.token) }
        shared.withLock { state in
            state.timers.remove(registration, .read)
            state.timers.remove(registration, .write)
        }
    }

    /// Arms (or moves) the timer of a registration's direction. Called with the
    /// registration's lock held.
    func arm(_ registration: Registration, _ direction: Direction, at deadline: ContinuousClock.Instant) {
        let wake = shared.withLock { state -> Bool in
            guard state.phase != .stopped else { return false }
            state.timers.schedule(registration, direction, at: deadline)
            if state.sleeping, !state.wakeSignalled, state.sleepDeadline.map({ deadline < $0 }) ?? true {
                state.wakeSignalled = true
                return true
            }
            return false
        }
        if wake { try? notifier?.signal() }
    }

    /// The number of sockets registered (for diagnostics and tests).
    public var registeredCount: Int { table.withLock { $0.count } }

    /// The CPU time the loop's thread has used (for diagnostics and tests).
    package func threadCPUTime() throws(SocketError) -> Duration {
        let handle = loopThread.load(ordering: .relaxed)
        guard handle != 0 else { throw SocketError("loop thread CPU time", reason: .closed) }
        return try SystemThread(handle: handle).cpuTime()
    }

    // MARK: The reactor

    private func runLoop() {
        loopThread.store(SystemThread.currentHandle, ordering: .relaxed)
        SystemThread.nameCurrent(name)
        guard let epoll, let notifier else { return }
        var events = EpollEventBuffer(capacity: 512)
        // Registrations and their events; a struct, not a tuple: an array of tuples is
        // destroyed through the tuple's generic value witnesses.
        var ready: [ReadyEvent] = []
        var expired: [TimerEntry] = []
        var sweptForStop = false
        var epollBroken = false
        let serialExecutor = UnownedSerialExecutor(ordinary: isolation)
        let taskExecutor = asUnownedTaskExecutor()

        while true {
            runJobs(serialExecutor, taskExecutor)

            // Take the jobs other threads queued, and decide how long to sleep.
            var timeout: Duration? = nil
            var stopping = false
            var exit = false
            shared.withLock { state in
                if !state.remote.isEmpty {
                    swap(&state.remote, &local.incoming)
                }
                stopping = state.phase == .stopping
                if !local.incoming.isEmpty || !local.jobs.isEmpty {
                    timeout = .zero
                } else if stopping && sweptForStop {
                    state.phase = .stopped
                    state.timers.removeAll()
                    exit = true
                } else if stopping {
                    timeout = .zero
                } else {
                    state.sleeping = true
                    if !state.timers.isEmpty, let deadline = state.timers.earliest {
                        state.sleepDeadline = deadline
                        state.hasSleepDeadline = true
                        timeout = max(.zero, ContinuousClock.now.duration(to: deadline))
                    }
                }
            }
            if exit { break }
            if !local.incoming.isEmpty {
                local.jobs.append(contentsOf: local.incoming)
                local.incoming.removeAll(keepingCapacity: true)
            }
            if stopping && !sweptForStop {
                sweptForStop = true
                let all = table.withLock { table -> [Registration] in
                    table.closed = true
                    return table.all
                }
                for registration in all { registration.end(.loopStopped) }
                continue
            }

            if epollBroken { continue }
            let count: Int
            do {
                count = try epoll.wait(into: &events, timeout: timeout)
            } catch {
                // Only a closed or broken epoll fails here; nothing more can be waited for.
                epollBroken = true
                shared.withLock { $0.phase = .stopping }
                continue
            }

            var notified = false
            if count > 0 {
                table.withLock { table in
                    for index in 0..<count {
                        let event = events[index]
                        if event.data == Self.notifierToken {
                            notified = true
                        } else if let registration = table.lookup(event.data) {
                            ready.append(ReadyEvent(registration: registration, events: event.events))
                        }
                    }
                }
                for entry in ready { entry.registration.deliver(entry.events) }
                ready.removeAll(keepingCapacity: true)
            }
            if notified { _ = try? notifier.drain() }

            shared.withLock { state in
                state.sleeping = false
                if state.hasSleepDeadline {
                    state.sleepDeadline = nil
                    state.hasSleepDeadline = false
                }
                if notified { state.wakeSignalled = false }
                if !state.timers.isEmpty, let earliest = state.timers.earliest {
                    let now = ContinuousClock.now
                    if earliest <= now { state.timers.popExpired(now: now, into: &expired) }
                }
            }
            if !expired.isEmpty {
                let now = ContinuousClock.now
                for entry in expired { entry.registration.expire(entry.direction, now: now) }
                expired.removeAll(keepingCapacity: true)
            }
        }

        _ = events
        // A later thread may get the same pthread_t: it must not pass for the loop's thread.
        loopThread.store(0, ordering: .relaxed)
        try? epoll.close()
        try? notifier.close()
    }

    /// Runs the queued jobs; jobs they queue run too, for a few rounds, before the loop looks
    /// at I/O again.
    private func runJobs(_ serialExecutor: UnownedSerialExecutor, _ taskExecutor: UnownedTaskExecutor) {
        var rounds = 0
        while !local.jobs.isEmpty && rounds < 8 {
            swap(&local.jobs, &local.running)
            for queued in local.running {
                if queued.isolated {
                    queued.job.runSynchronously(isolatedTo: serialExecutor, taskExecutor: taskExecutor)
                } else {
                    queued.job.runSynchronously(on: taskExecutor)
                }
            }
            local.running.removeAll(keepingCapacity: true)
            rounds += 1
        }
    }
}

/// A registration epoll reported, with its events.
private struct ReadyEvent {
    let registration: Registration
    let events: EpollEvents
}

/// A job and how to run it: isolated to the loop (an actor's job) or not (a task's).
private struct QueuedJob {
    let job: UnownedJob
    let isolated: Bool

    init(_ job: UnownedJob, isolated: Bool) {
        self.job = job
        self.isolated = isolated
    }
}

/// The loop in its `SerialExecutor` role: actors on the loop name this object as their
/// executor, so that their jobs run isolated, while tasks that only prefer the loop do not.
private final class LoopIsolation: SerialExecutor, @unchecked Sendable {
    /// Set once, right after the loop is initialized; the loop owns this object.
    unowned(unsafe) var loop: EventLoop?

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        guard let loop else {
            globalConcurrentExecutor.enqueue(ExecutorJob(job))
            return
        }
        loop.enqueue(QueuedJob(job, isolated: true))
    }

    func isSameExclusiveExecutionContext(other: LoopIsolation) -> Bool {
        self === other
    }

    func isIsolatingCurrentContext() -> Bool? {
        loop?.inEventLoop ?? false
    }

    func checkIsolated() {
        precondition(loop?.inEventLoop ?? false, "not running on the event loop's thread")
    }
}

/// What only the reactor thread touches.
///
/// Only one thread uses it, so the dynamic exclusivity checks are left out (they cost more
/// than the rest of a job's bookkeeping).
private final class LoopLocal: @unchecked Sendable {
    @exclusivity(unchecked) var jobs: [QueuedJob] = []
    @exclusivity(unchecked) var running: [QueuedJob] = []
    @exclusivity(unchecked) var incoming: [QueuedJob] = []

    init() {
        jobs.reserveCapacity(256)
        running.reserveCapacity(256)
        incoming.reserveCapacity(64)
    }
}

/// The registrations of a loop, by slot; a slot's generation changes each time it is
/// reused, so an event for a removed registration finds nothing.
struct RegistrationTable {
    private var entries: [Registration?] = []
    private var generations: [UInt32] = []
    private var free: [Int] = []
    private(set) var count = 0
    var closed = false

    mutating func insert(_ make: (UInt64) -> Registration) -> Registration {
        let index: Int
        if let reused = free.popLast() {
            index = reused
        } else {
            index = entries.count
            entries.append(nil)
            generations.append(1)
        }
        let token = UInt64(generations[index]) << 32 | UInt64(index)
        let registration = make(token)
        entries[index] = registration
        count += 1
        return registration
    }

    mutating func remove(_ token: UInt64) {
        let index = Int(token & 0xFFFF_FFFF)
        guard index < entries.count, let entry = entries[index], entry.token == token else { return }
        _ = entry
        entries[index] = nil
        // Skip generation 0 and the top values, so that no token equals a reserved one.
        generations[index] = generations[index] >= 0xFFFF_FFF0 ? 1 : generations[index] + 1
        free.append(index)
        count -= 1
    }

    func lookup(_ token: UInt64) -> Registration? {
        let index = Int(token & 0xFFFF_FFFF)
        guard index < entries.count, let entry = entries[index], entry.token == token else { return nil }
        return entry
    }

    var all: [Registration] { entries.compactMap { $0 } }
}
