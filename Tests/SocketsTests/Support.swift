import Glibc
import Testing
// Re-exported: every test file uses openDescriptors().
@_exported import SocketsTestSupport

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
