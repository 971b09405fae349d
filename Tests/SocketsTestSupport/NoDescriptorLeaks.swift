import Glibc
import SocketsAsync
public import Testing

/// Runs each test alone (with every other target's checked tests too) and fails it if the
/// process's set of open descriptors differs after the test from before it.
///
/// Apply it to every suite with ``Testing/Trait/noDescriptorLeaks(usesAsyncRuntime:)``.
public struct NoDescriptorLeaks: SuiteTrait, TestTrait, TestScoping {
    /// Runs before the first snapshot: for descriptors that a library opens once, on first
    /// use, and keeps for the life of the process (they are not a leak of the test).
    let warmUp: @Sendable () async -> Void

    /// The longest a test may run once it has its turn; `nil` for no limit.
    ///
    /// Use this rather than Swift Testing's `.timeLimit` on checked suites: that one counts
    /// from when the test starts, waiting for its turn included, so it fails whichever tests
    /// come last once the checked tests of the whole process together take longer than it.
    let timeLimit: Duration?

    public init(timeLimit: Duration? = nil, warmUp: @escaping @Sendable () async -> Void = {}) {
        self.timeLimit = timeLimit
        self.warmUp = warmUp
    }

    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // Suites pass through; each test case is checked on its own.
        guard testCase != nil, !test.isSuite else { return try await function() }
        await DescriptorCheckLock.shared.acquire()
        await warmUp()
        let before = openDescriptors()
        do {
            try await run(function)
        } catch {
            await DescriptorCheckLock.shared.release()
            throw error
        }
        let after = openDescriptors()
        await DescriptorCheckLock.shared.release()
        let leaked = after.subtracting(before).sorted()
        #expect(leaked.isEmpty, "descriptors leaked: \(leaked.map { "\($0) -> \(descriptorTarget($0))" })")
    }

    /// Runs the test, within ``timeLimit`` if there is one: past it, an issue is recorded and
    /// the test's task cancelled.
    private func run(_ function: @Sendable () async throws -> Void) async throws {
        guard let timeLimit else { return try await function() }
        try await withoutActuallyEscaping(function) { function in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await function() }
                group.addTask {
                    try await Task.sleep(for: timeLimit)
                    Issue.record("Time limit was exceeded: \(timeLimit) after the test's turn came")
                }
                defer { group.cancelAll() }
                try await group.next()
            }
        }
    }
}

/// The descriptors open in this process, from /proc/self/fd.
public func openDescriptors() -> Set<Int32> {
    guard let directory = opendir("/proc/self/fd") else { return [] }
    let own = dirfd(directory)
    var result: Set<Int32> = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if let fd = Int32(name), fd != own { result.insert(fd) }
    }
    closedir(directory)
    return result
}

/// What a descriptor refers to, for leak reports.
public func descriptorTarget(_ fd: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    let count = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
    guard count > 0 else { return "?" }
    return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension Trait where Self == NoDescriptorLeaks {
    /// Runs each test alone and fails it if it leaks a descriptor; apply it to every suite:
    /// `@Suite(.noDescriptorLeaks())`.
    ///
    /// - Parameter usesAsyncRuntime: `true` for tests that await on the async runtime
    ///   (SocketsAsync's event loops, `Task.sleep`). That runtime opens descriptors on first
    ///   use and keeps them for the whole process (the shared loop's epoll and eventfd, the
    ///   concurrency runtime's timer descriptors), so they are opened before the first
    ///   snapshot rather than taken for a leak. Such a test may also run a minute once its
    ///   turn has come: an await that is never resumed would otherwise hang the run, and
    ///   cancelling the test's task ends it. Blocking tests get no limit: cancelling cannot
    ///   interrupt a blocking call, so they bound each call themselves (socket timeouts,
    ///   waits for threads and children with a deadline).
    public static func noDescriptorLeaks(usesAsyncRuntime: Bool = false) -> Self {
        guard usesAsyncRuntime else { return NoDescriptorLeaks() }
        return NoDescriptorLeaks(timeLimit: .seconds(60), warmUp: {
            _ = EventLoop.shared.isRunning
            try? await Task.sleep(for: .milliseconds(1))
            // The `.timeLimit` trait's timer runs on the suspending clock: Dispatch gives each
            // clock a timerfd of its own the first time it is used.
            try? await Task.sleep(for: .milliseconds(1), clock: .suspending)
            await longTimersArmed.value
        })
    }
}

/// Dispatch opens a clock's timerfd when it first programs a timer on it; a 1 ms sleep may be
/// over before that happens, and then the first test to sleep longer (a deadline, the time
/// limit's timer) would seem to leak it. So once per process, a long sleep is armed on each
/// clock for 50 ms, then cancelled.
private let longTimersArmed = Task {
    let continuous = Task { try? await Task.sleep(for: .seconds(30)) }
    let suspending = Task { try? await Task.sleep(for: .seconds(30), clock: .suspending) }
    try? await Task.sleep(for: .milliseconds(50))
    continuous.cancel()
    suspending.cancel()
}
