import Foundation
import Glibc
// Every file of this target sees the shared test support (the descriptor-leak trait, spawning).
@_exported import SocketsTestSupport
import Synchronization
import Testing

// MARK: - Finding the binary

enum SockBinary {
    /// The built `sock`: `$SOCK_BINARY`, else next to the test bundle, else `.build/debug/sock`
    /// under the package.
    static let path: String? = {
        if let path = ProcessInfo.processInfo.environment["SOCK_BINARY"] { return path }
        var candidates: [URL] = []
        if let arguments = CommandLine.arguments.first {
            var directory = URL(fileURLWithPath: arguments).deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(directory.appendingPathComponent("sock"))
                directory.deleteLastPathComponent()
            }
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/sock"))
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) && !$0.hasDirectoryPath }?.path
    }()

    static func require() throws -> String {
        try #require(path, "the sock binary is not built: run `swift build --product sock` first (scripts/test.sh does)")
    }
}

// MARK: - Child processes

/// Collects everything a child writes to one pipe, on a thread of its own.
final class OutputCollector: Sendable {
    private let bytes = Mutex<[UInt8]>([])
    private let finished = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    /// Reads `fd` to its end (the caller closes it after ``waitForEnd(timeout:)``); with `nil`,
    /// there is nothing to read.
    init(reading fd: CInt?) {
        guard let fd else {
            finished.store(true, ordering: .releasing)
            done.signal()
            return
        }
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                bytes.withLock { $0 += buffer[..<count] }
            }
            finished.store(true, ordering: .releasing)
            done.signal()
        }
        thread.start()
    }

    var data: [UInt8] { bytes.withLock { $0 } }
    var text: String { String(decoding: data, as: UTF8.self) }

    /// Waits until the writer side is closed everywhere (end-of-file); `false` on timeout.
    func waitForEnd(timeout: Double) -> Bool {
        if finished.load(ordering: .acquiring) { return true }
        let ended = done.wait(timeout: .now() + timeout) == .success
        if ended { done.signal() }
        return ended
    }

    /// Waits until the collected text satisfies `predicate`; `false` on timeout.
    func wait(timeout: Double, until predicate: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if predicate(text) { return true }
            if finished.load(ordering: .acquiring) { return predicate(text) }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return predicate(text)
    }
}

/// What standard input a child gets.
enum ChildInput {
    /// `/dev/null`: immediate end-of-file.
    case none
    /// These bytes, then end-of-file (written by a thread, so large inputs cannot deadlock).
    case bytes([UInt8])
    /// A file's contents.
    case file(String)
    /// A pipe the test writes to and closes (``Child/write(_:)``, ``Child/closeInput()``).
    case pipe
}

/// A running child process with its output collected, started with `spawn` (see
/// SocketsTestSupport, and why not Foundation's `Process`) and reaped with `waitpid`, so that
/// every descriptor it involves is closed by the time ``wait(timeout:sourceLocation:)`` returns.
final class Child {
    let pid: pid_t
    let output: OutputCollector
    let errors: OutputCollector
    private let name: String
    /// Our ends of the child's standard output and error pipes (-1 once closed).
    private var outputFD: CInt
    private var errorFD: CInt
    /// Our end of the child's standard input pipe with ``ChildInput/pipe`` (-1 otherwise or
    /// once closed); with ``ChildInput/bytes(_:)`` the writer thread owns and closes it.
    private var inputFD: CInt = -1
    private var inputWriter: DispatchSemaphore?
    /// Signalled once the child has exited (it is still to be reaped: its pid stays its own).
    private let exited: DispatchSemaphore
    /// Whether `waitpid` was done (after it, the pid is no longer this child's), and the
    /// status it gave (`nil` if it failed).
    private var reaped = false
    private var status: CInt?

    init(_ executable: String, _ arguments: [String], input: ChildInput = .none, closeOutput: Bool = false) throws {
        let name = ([URL(fileURLWithPath: executable).lastPathComponent] + arguments.prefix(3)).joined(separator: " ")
        let spawnInput: SpawnInput = switch input {
        case .none: .null
        case .file(let path): .file(path)
        case .bytes, .pipe: .pipe
        }
        // Only 0, 1 and 2: nothing a test left open without close-on-exec reaches `sock`.
        let spawned = try spawn([executable] + arguments, searchPath: false, input: spawnInput, closeOtherDescriptors: true)
        let pid = spawned.pid

        // Waits for the exit without reaping it (WNOWAIT): until `wait` reaps the child, its pid
        // cannot be reused, so a kill on a timeout can only hit this child.
        let exited = DispatchSemaphore(value: 0)
        let child = id_t(pid)
        Thread {
            var info = siginfo_t()
            while waitid(P_PID, child, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
            exited.signal()
        }.start()

        self.name = name
        self.pid = pid
        self.exited = exited
        errorFD = spawned.errors
        errors = OutputCollector(reading: spawned.errors)
        if closeOutput {
            // The child's standard output has no reader at all.
            close(spawned.output)
            outputFD = -1
            output = OutputCollector(reading: nil)
        } else {
            outputFD = spawned.output
            output = OutputCollector(reading: spawned.output)
        }
        if case .bytes(let bytes) = input, spawned.input >= 0 {
            let writer = spawned.input
            let done = DispatchSemaphore(value: 0)
            inputWriter = done
            Thread {
                _ = writeAll(writer, bytes)
                close(writer)
                done.signal()
            }.start()
        } else {
            inputFD = spawned.input
        }
    }

    /// Writes to the child's standard input (``ChildInput/pipe``).
    func write(_ text: String) throws {
        try #require(inputFD >= 0, "the child's standard input is not an open pipe")
        guard writeAll(inputFD, Array(text.utf8)) else {
            throw CommandFailure("write to \(name): \(String(cString: strerror(errno)))")
        }
    }

    /// Closes the child's standard input (end-of-file).
    func closeInput() {
        if inputFD >= 0 { close(inputFD) }
        inputFD = -1
    }

    /// Waits for the child to exit; kills it and records a failure after `timeout` seconds.
    /// The exit status, or the number of the signal that killed it.
    @discardableResult
    func wait(timeout: Double = 30, sourceLocation: SourceLocation = #_sourceLocation) -> Int32 {
        if !reaped {
            if exited.wait(timeout: .now() + timeout) == .timedOut {
                Issue.record("\(name) did not exit within \(timeout) s; stderr: \(errors.text)", sourceLocation: sourceLocation)
                kill(pid, SIGKILL)
            }
            reap()
        }
        finish()
        // WEXITSTATUS or WTERMSIG, which are macros; -1 if it could not be reaped.
        guard let status else { return -1 }
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : status & 0x7F
    }

    /// Sends a signal and waits for the exit.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM, timeout: Double = 10) -> Int32 {
        // Not yet reaped, so the pid is still this child's (a zombie ignores the signal).
        if !reaped { kill(pid, signal) }
        return wait(timeout: timeout)
    }

    /// How the child ended: `true` when it exited (rather than being killed by a signal).
    var exitedNormally: Bool { status.map { $0 & 0x7F == 0 } ?? false }

    /// Collects the exit status (blocking until the child has exited).
    private func reap() {
        var raw: CInt = 0
        var result: pid_t
        repeat { result = waitpid(pid, &raw, 0) } while result < 0 && errno == EINTR
        reaped = true
        if result == pid { status = raw }
    }

    private var finished = false

    /// Closes our ends of the pipes once the output has been read (once).
    private func finish() {
        if finished { return }
        finished = true
        _ = inputWriter?.wait(timeout: .now() + 10)
        closeInput()
        _ = output.waitForEnd(timeout: 10)
        _ = errors.waitForEnd(timeout: 10)
        for fd in [outputFD, errorFD] where fd >= 0 { close(fd) }
        outputFD = -1
        errorFD = -1
    }

    deinit {
        if !reaped {
            kill(pid, SIGKILL)
            reap()
        }
        finish()
    }
}

/// Writes all of `bytes` to `fd`; `false` on an error (in `errno`).
private func writeAll(_ fd: CInt, _ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            guard let base = buffer.baseAddress else { return true }
            let count = Glibc.write(fd, base + offset, buffer.count - offset)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return false }
            offset += count
        }
        return true
    }
}

// MARK: - Conveniences

/// Runs `sock` with arguments.
func sock(_ arguments: String..., input: ChildInput = .none, closeOutput: Bool = false) throws -> Child {
    try Child(try SockBinary.require(), arguments, input: input, closeOutput: closeOutput)
}

/// Runs `sock` with an argument array.
func sock(arguments: [String], input: ChildInput = .none, closeOutput: Bool = false) throws -> Child {
    try Child(try SockBinary.require(), arguments, input: input, closeOutput: closeOutput)
}

/// Runs a python3 script (an independent peer), with arguments in `sys.argv[1:]`.
func python(_ script: String, _ arguments: [String] = [], input: ChildInput = .none) throws -> Child {
    try Child("/usr/bin/env", ["python3", "-u", "-c", script] + arguments, input: input)
}

/// Waits for `sock listen`'s `listening on ADDRESS` line and returns the port.
func listeningPort(_ child: Child, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
    let found = child.errors.wait(timeout: 20) { $0.contains("listening on ") && $0.contains("\n") }
    try #require(found, "no `listening on` line; stderr: \(child.errors.text)", sourceLocation: sourceLocation)
    let line = try #require(child.errors.text.split(separator: "\n").first { $0.hasPrefix("listening on ") })
    let port = try #require(line.split(separator: ":").last.flatMap { Int($0) }, "no port in \(line)", sourceLocation: sourceLocation)
    return port
}

/// Waits for a peer's first output line (python peers print their port first) as a number.
func firstLineNumber(_ child: Child, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
    let found = child.output.wait(timeout: 20) { $0.contains("\n") }
    try #require(found, "the peer printed no line; stderr: \(child.errors.text)", sourceLocation: sourceLocation)
    let line = child.output.text.split(separator: "\n").first.map(String.init) ?? ""
    return try #require(Int(line.trimmingCharacters(in: .whitespaces)), "not a number: \(line)", sourceLocation: sourceLocation)
}

/// Random bytes (from /dev/urandom: drawing megabytes one byte at a time is slow in debug
/// builds).
func randomBytes(_ count: Int) -> [UInt8] {
    if let handle = FileHandle(forReadingAtPath: "/dev/urandom") {
        defer { try? handle.close() }
        if let data = try? handle.read(upToCount: count), data.count == count { return [UInt8](data) }
    }
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

/// A unique path under /tmp (removed by ``removeFile(_:)``).
func temporaryPath(_ name: String) -> String {
    "/tmp/sock-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(name)"
}

func removeFile(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func readFile(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

var hasSocat: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/socat") }
