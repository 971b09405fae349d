import Glibc

/// Runs one test again in a new process of this same test binary, for checks about the whole
/// process (which threads exist, which descriptors are open, a signal's disposition) that other
/// tests running alongside in this process would spoil.
///
/// A test calls ``run(_:)`` with its own name; in the child, ``isChild`` is true and the test
/// does its real work instead:
///
/// ```swift
/// @Test func startsNoThread() throws {
///     guard FreshProcess.isChild else { return try FreshProcess.run("MySuite/startsNoThread") }
///     ... // checks that need a process of their own
/// }
/// ```
public enum FreshProcess {
    static let marker = "SOCKETS_TEST_FRESH_PROCESS"

    /// Whether this process is a child started by ``run(_:)``.
    public static var isChild: Bool { getenv(marker) != nil }

    /// Runs the test `filter` names (`Suite/test`) alone in a new process and checks that
    /// exactly one test ran there and passed.
    /// - Parameter wrapper: a command that starts the child, such as `unshare --mount` for a
    ///   process with a mount namespace of its own; none by default.
    /// - Throws: ``CommandFailure`` with the child's output when it failed or ran no test.
    public static func run(_ filter: String, wrappedIn wrapper: [String] = []) throws {
        var path = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &path, path.count - 1)
        guard length > 0 else { throw CommandFailure("readlink /proc/self/exe failed") }
        let executable = String(decoding: path[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let output: String
        do {
            // Swift Testing reports on standard error: fold it into the output read here, and
            // end with the exit status, so that a failure comes back with what the child said.
            output = try runCommand([
                "sh", "-c", "\"$@\" 2>&1; echo \"exit status $?\"", "sh",
            ] + wrapper + [
                "env", "\(marker)=1", executable, "--testing-library", "swift-testing", "--filter", filter,
            ])
        } catch {
            throw CommandFailure("\(filter) failed in a fresh process: \(error)")
        }
        guard output.hasSuffix("exit status 0\n") else {
            throw CommandFailure("\(filter) failed in a fresh process:\n\(output)")
        }
        // A filter that matched nothing also exits 0: insist that the test ran.
        guard output.contains("Test run with 1 test") else {
            throw CommandFailure("\(filter) did not run alone in the fresh process:\n\(output)")
        }
    }
}
