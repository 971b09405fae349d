import Sockets

extension LockedValue {
    /// Runs `body` with the value, the lock held. The core's `withLock` is generic and, called
    /// from this module, runs unspecialized (its closure through a context, its result through
    /// memory); this one is compiled here, so the critical section is inlined at each call.
    @inline(__always)
    func locked<R>(_ body: (inout Value) -> R) -> R {
        lock()
        defer { unlock() }
        return body(&value.pointee)
    }
}
