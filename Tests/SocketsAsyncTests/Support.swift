import Glibc
import Testing
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

/// Lets one descriptor-checked test run at a time, since the descriptor table is per process.
actor TestSerializer {
    static let shared = TestSerializer()
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}

/// The descriptors open in this process, from /proc/self/fd.
func openDescriptors() -> Set<Int32> {
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
func descriptorTarget(_ fd: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    let count = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
    guard count > 0 else { return "?" }
    return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
