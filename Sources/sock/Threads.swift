import Foundation
import Sockets

/// Runs `body` on a new thread (a real one: the blocking I/O here would starve a pool).
func startThread(_ name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread(block: body)
    thread.name = name
    thread.stackSize = 512 * 1024
    thread.start()
}

/// A one-shot flag that threads can wait on with a deadline.
final class Latch: Sendable {
    private let state = LockedValue<Bool>(false)
    private let semaphore = DispatchSemaphore(value: 0)

    func fire() {
        let first = state.withLock { fired -> Bool in
            defer { fired = true }
            return !fired
        }
        if first { semaphore.signal() }
    }

    var isFired: Bool { state.withLock { $0 } }

    /// Waits until fired or until `timeout` passes; `true` when fired.
    func wait(timeout: Duration) -> Bool {
        if isFired { return true }
        let nanoseconds = max(0, min(Int(timeout.seconds * 1e9), Int(Int32.max) * 1000))
        if semaphore.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success {
            semaphore.signal()  // let other waiters through too
            return true
        }
        return isFired
    }
}
