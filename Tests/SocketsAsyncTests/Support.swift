import Glibc
import Testing
// Re-exported: every test file uses openDescriptors().
@_exported import SocketsTestSupport
import SocketsAsync

/// Runs each test alone and fails it if the process's set of open descriptors differs after
/// the test from before it. Apply to every suite: `@Suite(.noDescriptorLeaks)`.
struct NoDescriptorLeaks: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // Suites pass through; each test case is checked on its own.
        guard testCase != nil, !test.isSuite else { return try await function() }
        await TestSerializer.shared.acquire()
        // The shared loop's epoll and eventfd live for the whole process: open them before
        // taking the baseline.
        _ = EventLoop.shared.isRunning
        // So does the concurrency runtime's timer descriptor, made on the first Task.sleep.
        try? await Task.sleep(for: .milliseconds(1))
        let before = openDescriptors()
        do {
            try await function()
        } catch {
            await TestSerializer.shared.release()
            throw error
        }
        let after = openDescriptors()
        await TestSerializer.shared.release()
        let leaked = after.subtracting(before).sorted()
        #expect(leaked.isEmpty, "descriptors leaked: \(leaked.map { "\($0) -> \(descriptorTarget($0))" })")
    }
}

extension Trait where Self == NoDescriptorLeaks {
    /// Serialise the test and check that it leaks no descriptor.
    static var noDescriptorLeaks: Self { NoDescriptorLeaks() }
}
