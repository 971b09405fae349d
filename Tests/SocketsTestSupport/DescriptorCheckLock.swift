/// Lets one descriptor-checked test run at a time in the whole test process.
///
/// Every test target is linked into one test process, and the descriptor table is per process:
/// a test in one target that opens a pipe while a test in another target takes its
/// before/after snapshots would look like a leak there. So all targets' `.noDescriptorLeaks`
/// traits take this one lock.
public actor DescriptorCheckLock {
    public static let shared = DescriptorCheckLock()

    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// Waits until no other checked test is running, then marks one as running.
    public func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    /// Lets the next waiting test run.
    public func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
