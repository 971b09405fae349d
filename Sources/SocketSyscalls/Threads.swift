public import Glibc
public import CSocketShims
public import SystemPackage

/// The body of a thread started by ``Syscall/createThread(_:)``, boxed so that a C function
/// pointer can carry it.
private final class ThreadStart {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

extension Syscall {
    // MARK: Threads (for the event loop's reactor thread)

    /// The corresponding C function is `pthread_create(3)`: starts a thread running `body`.
    /// The thread must be joined with ``joinThread(_:)`` or detached with ``detachThread(_:)``.
    public static func createThread(_ body: @escaping @Sendable () -> Void) throws(Errno) -> pthread_t {
        let context = Unmanaged.passRetained(ThreadStart(body)).toOpaque()
        var thread = pthread_t()
        let code = pthread_create(&thread, nil, { argument in
            guard let argument else { return nil }
            let start = Unmanaged<ThreadStart>.fromOpaque(argument).takeRetainedValue()
            start.body()
            return nil
        }, context)
        if code != 0 {
            Unmanaged<ThreadStart>.fromOpaque(context).release()
            throw Errno(rawValue: code)
        }
        return thread
    }

    /// The corresponding C function is `pthread_join(3)`: waits for a thread to end.
    public static func joinThread(_ thread: pthread_t) throws(Errno) {
        let code = pthread_join(thread, nil)
        if code != 0 { throw Errno(rawValue: code) }
    }

    /// The corresponding C function is `pthread_detach(3)`: lets a thread's resources go when
    /// it ends, without a join.
    public static func detachThread(_ thread: pthread_t) throws(Errno) {
        let code = pthread_detach(thread)
        if code != 0 { throw Errno(rawValue: code) }
    }

    /// Names the calling thread, as `top -H`, `ps -L` and `/proc/self/task/*/comm` show it:
    /// `pthread_setname_np(3)`. Linux keeps 15 bytes; a longer name is cut to fit.
    public static func nameCurrentThread(_ name: String) {
        let bytes = Array(name.utf8.prefix(15)).map { CChar(bitPattern: $0) } + [0]
        _ = bytes.withUnsafeBufferPointer { cshim_name_current_thread($0.baseAddress!) }
    }

    /// The corresponding C function is `pthread_self(3)`.
    @inlinable
    public static func currentThread() -> pthread_t {
        pthread_self()
    }

    /// The CPU time a thread has used so far: `pthread_getcpuclockid(3)`, then
    /// `clock_gettime(2)` on that clock.
    public static func threadCPUTime(_ thread: pthread_t) throws(Errno) -> Duration {
        var clock = clockid_t()
        let code = pthread_getcpuclockid(thread, &clock)
        if code != 0 { throw Errno(rawValue: code) }
        var time = timespec()
        if clock_gettime(clock, &time) != 0 { throw Errno(rawValue: errno) }
        return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
    }

    /// The corresponding C function is `sysconf(_SC_NPROCESSORS_ONLN)`: the processors online.
    public static func onlineProcessorCount() -> Int {
        max(1, sysconf(CInt(_SC_NPROCESSORS_ONLN)))
    }
}

extension Syscall {
    // MARK: Mutexes (pthread's, which ThreadSanitizer understands)

    /// The corresponding C function is `pthread_mutex_init(3)`, with default attributes.
    public static func mutexInit(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) throws(Errno) {
        let code = pthread_mutex_init(mutex, nil)
        if code != 0 { throw Errno(rawValue: code) }
    }

    /// The corresponding C function is `pthread_mutex_destroy(3)`.
    public static func mutexDestroy(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
        _ = pthread_mutex_destroy(mutex)
    }

    /// The corresponding C function is `pthread_mutex_lock(3)`. It cannot fail on a default
    /// mutex that the caller does not already hold.
    @inlinable
    public static func mutexLock(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
        _ = pthread_mutex_lock(mutex)
    }

    /// The corresponding C function is `pthread_mutex_unlock(3)`.
    @inlinable
    public static func mutexUnlock(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
        _ = pthread_mutex_unlock(mutex)
    }
}
