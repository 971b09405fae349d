import SocketSyscalls
import SystemPackage
import Synchronization

/// Owns one descriptor and makes closing it safe while other threads use it.
///
/// Each call marks itself as a user for its duration; ``close(wakingUsers:)`` stops new users
/// and, if some are inside a call, wakes them and leaves the final `close(2)` to the last one
/// out. So the descriptor number is never released, and reused by another open, under a call
/// that is still running.
final class OwnedDescriptor: Sendable {
    let fd: CInt

    /// Bit 0: closed (no new users). Bit 1: released (never close the descriptor).
    /// Bits 2...: the number of users right now.
    private let state = Atomic<Int>(0)

    private static let closedBit = 1
    private static let releasedBit = 2
    private static let userUnit = 4

    init(_ fd: CInt) {
        self.fd = fd
    }

    deinit {
        if state.load(ordering: .acquiring) & (Self.closedBit | Self.releasedBit) == 0 {
            try? Syscall.close(fd)
        }
    }

    /// Marks one user; `false` once closed.
    @inline(__always)
    func enter() -> Bool {
        var current = state.load(ordering: .relaxed)
        while current & Self.closedBit == 0 {
            let (exchanged, original) = state.weakCompareExchange(
                expected: current, desired: current + Self.userUnit, ordering: .acquiring)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Ends a use; the last user out of a closed descriptor closes it.
    @inline(__always)
    func leave() {
        let remaining = state.wrappingSubtract(Self.userUnit, ordering: .acquiringAndReleasing).newValue
        if remaining == Self.closedBit {
            try? Syscall.close(fd)
        }
    }

    var isClosed: Bool { state.load(ordering: .acquiring) & Self.closedBit != 0 }

    /// Whether ``close(wakingUsers:)`` ran (as opposed to ``release()``): a call that overlapped
    /// it may have been woken by the shutdown, so its result says nothing about the peer.
    var wasClosed: Bool { state.load(ordering: .acquiring) & (Self.closedBit | Self.releasedBit) == Self.closedBit }

    /// Stops new users. With no user inside, closes now (and reports `close`'s error);
    /// otherwise runs `wakingUsers` so that blocked users return, and the last closes.
    func close(wakingUsers: (CInt) -> Void) throws(Errno) {
        // Close and enter as a user in one step, so that the descriptor stays ours while
        // waking the others even if they all leave meanwhile.
        var current = state.load(ordering: .relaxed)
        while true {
            guard current & Self.closedBit == 0 else { return }
            let (exchanged, original) = state.weakCompareExchange(
                expected: current, desired: (current | Self.closedBit) + Self.userUnit, ordering: .acquiringAndReleasing)
            if exchanged { break }
            current = original
        }
        if current < Self.userUnit {
            // Nobody else inside, and nobody can enter now: close here and report the result.
            state.wrappingSubtract(Self.userUnit, ordering: .releasing)
            try Syscall.close(fd)
            return
        }
        wakingUsers(fd)
        leave()
    }

    /// Gives the descriptor up without closing it; `false` if already closed or released.
    func release() -> Bool {
        // Only an open descriptor can be released: marking a closed one released would stop
        // the last user of a close under way from closing it.
        var current = state.load(ordering: .relaxed)
        while current & Self.closedBit == 0 {
            let (exchanged, original) = state.weakCompareExchange(
                expected: current, desired: current | Self.closedBit | Self.releasedBit, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }
}
