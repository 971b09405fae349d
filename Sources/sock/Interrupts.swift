import ArgumentParser
import Foundation
import Sockets
import Synchronization

/// Takes SIGINT, SIGTERM and SIGHUP on a thread of its own, runs the registered clean-up
/// actions (removing a Unix socket file, printing ping's summary), then exits 128 + signal.
enum Interrupts {
    private static let actions = LockedValue<[Int: @Sendable () -> Void]>([:])
    private static let nextKey = Atomic<Int>(0)
    private static let signals: [CInt] = [SIGINT, SIGTERM, SIGHUP]

    /// Blocks the signals (before any thread starts, so that all threads inherit the mask)
    /// and starts the thread that waits for them.
    static func install() {
        do {
            try ProcessSupport.blockSignals(signals)
        } catch {
            return  // keep the default actions: interrupts still stop the process
        }
        let thread = Thread {
            guard let signal = try? ProcessSupport.waitForSignal(signals) else { return }
            // An action may block (printing to a full pipe): exit after a while regardless.
            let done = Latch()
            startThread("interrupt-actions") {
                runActions()
                done.fire()
            }
            _ = done.wait(timeout: .seconds(2))
            Sock.exit(withError: ExitCode(128 + signal))
        }
        thread.name = "signals"
        thread.start()
    }

    /// Registers an action to run on interrupt; returns a key for ``remove(_:)``.
    @discardableResult
    static func onInterrupt(_ action: @escaping @Sendable () -> Void) -> Int {
        let key = nextKey.add(1, ordering: .relaxed).newValue
        actions.withLock { $0[key] = action }
        return key
    }

    /// Unregisters an action.
    static func remove(_ key: Int) {
        _ = actions.withLock { $0.removeValue(forKey: key) }
    }

    /// Runs and clears every action (also used on a normal exit).
    static func runActions() {
        let pending = actions.withLock { actions -> [@Sendable () -> Void] in
            defer { actions.removeAll() }
            return actions.sorted { $0.key < $1.key }.map(\.value)
        }
        for action in pending { action() }
    }
}
