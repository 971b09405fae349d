package import Glibc
import SocketSyscalls
import SystemPackage

// What the async layer (`SocketsAsync`) needs from below that is not part of the public
// socket API: threads for its reactors, and a lock ThreadSanitizer can see. Package-only on
// purpose.

/// An operating-system thread: the reactor thread of an event loop.
package struct SystemThread: Sendable {
    /// The `pthread_t` (an integer on glibc).
    package let handle: UInt

    /// A thread known by its `pthread_t`.
    package init(handle: UInt) {
        self.handle = handle
    }

    /// Starts a thread running `body`: `pthread_create(3)`.
    package static func spawn(_ body: @escaping @Sendable () -> Void) throws(SocketError) -> SystemThread {
        do {
            return SystemThread(handle: try Syscall.createThread(body))
        } catch {
            throw SocketError("pthread_create", errno: error)
        }
    }

    /// Names the calling thread (15 bytes at most are kept), for thread listings.
    package static func nameCurrent(_ name: String) {
        Syscall.nameCurrentThread(name)
    }

    /// Waits for the thread to end: `pthread_join(3)`.
    package func join() throws(SocketError) {
        do {
            try Syscall.joinThread(handle)
        } catch {
            throw SocketError("pthread_join", errno: error)
        }
    }

    /// Lets the thread end on its own: `pthread_detach(3)`.
    package func detach() {
        try? Syscall.detachThread(handle)
    }

    /// The calling thread's `pthread_t`.
    @inline(__always)
    package static var currentHandle: UInt { Syscall.currentThread() }

    /// The CPU time this thread has used: `pthread_getcpuclockid(3)` and `clock_gettime(2)`.
    package func cpuTime() throws(SocketError) -> Duration {
        do {
            return try Syscall.threadCPUTime(handle)
        } catch {
            throw SocketError("pthread_getcpuclockid", errno: error)
        }
    }

    /// How many processors are online: `sysconf(_SC_NPROCESSORS_ONLN)`.
    package static var processorCount: Int { Syscall.onlineProcessorCount() }
}

/// A value guarded by a `pthread_mutex_t`.
///
/// The `Synchronization` module's `Mutex` would do, but on Linux ThreadSanitizer does not see
/// its locking (it happens inside the uninstrumented standard library) and reports every
/// access it guards as a race; pthread's mutex is intercepted, so the async layer stays
/// checkable with `--sanitize=thread`.
package final class LockedValue<Value>: @unchecked Sendable {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// The value, out of line: touch it only between ``lock()`` and ``unlock()``. (A stored
    /// property would be checked for exclusive access at run time when used from another
    /// module, whatever `@exclusivity` says; the lock already guarantees it.)
    package let value: UnsafeMutablePointer<Value>

    package init(_ value: Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        // A default mutex cannot fail to initialise on Linux (glibc never allocates for it).
        try? Syscall.mutexInit(mutex)
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
    }

    deinit {
        Syscall.mutexDestroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Takes the lock. For callers in other modules that keep their critical sections in
    /// their own code: there, a generic `withLock` is called unspecialized (its closure through
    /// a context, its result through memory), which costs more than the section itself.
    package func lock() {
        Syscall.mutexLock(mutex)
    }

    /// Releases the lock taken with ``lock()``.
    package func unlock() {
        Syscall.mutexUnlock(mutex)
    }

    /// Runs `body` with the value, the lock held.
    @inlinable @inline(__always)
    package func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        Syscall.mutexLock(mutex)
        defer { Syscall.mutexUnlock(mutex) }
        return try body(&value.pointee)
    }
}
