import Foundation
import Glibc
import SocketsTestSupport
import Synchronization
import Testing

// MARK: - The descriptor-leak trait (shared with SocketsTests, see SocketsTestSupport)

extension Trait where Self == NoDescriptorLeaks {
    /// Serialise the test and check that it leaks no descriptor, after warming up the
    /// descriptors Foundation's Process keeps for the life of the process.
    static var noDescriptorLeaks: Self { NoDescriptorLeaks(warmUp: { warmUpProcessMonitoring }) }
}

/// Foundation's Process opens descriptors of its own (for child monitoring) the first time it
/// is used; they stay open for the life of the process and are not a leak.
private let warmUpProcessMonitoring: Void = {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/true")
    if (try? Launcher.shared.run(process)) != nil { process.waitUntilExit() }
    _ = FileHandle.nullDevice.fileDescriptor
}()

/// Starts every child process from one long-lived thread.
///
/// `Process.run()` gives the calling thread a run loop (an epoll, an eventfd and a timerfd)
/// that lives as long as the thread; called from the test's own threads, which come and go,
/// those descriptors would appear in whichever test first ran on a new thread.
final class Launcher: Sendable {
    static let shared = Launcher()

    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let available = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { [self] in
            while true {
                available.wait()
                let job = jobs.withLock { $0.removeFirst() }
                job()
            }
        }
        thread.name = "process-launcher"
        thread.start()
    }

    /// Runs `process.run()` on the launcher thread and waits for it.
    func run(_ process: Process) throws {
        let done = DispatchSemaphore(value: 0)
        let failure = Mutex<(any Error)?>(nil)
        jobs.withLock {
            $0.append {
                do { try process.run() } catch { failure.withLock { $0 = error } }
                done.signal()
            }
        }
        available.signal()
        done.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }
}

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

    /// Reads `handle` to its end; with `nil`, there is nothing to read.
    init(reading handle: FileHandle?) {
        guard let fd = handle?.fileDescriptor else {
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

/// A running child process with its output collected.
final class Child {
    let process = Process()
    let output: OutputCollector
    let errors: OutputCollector
    private let outputPipe = Pipe()
    private let errorPipe = Pipe()
    private var inputPipe: Pipe?
    private var inputFile: FileHandle?
    private let name: String

    init(_ executable: String, _ arguments: [String], input: ChildInput = .none, closeOutput: Bool = false) throws {
        name = ([URL(fileURLWithPath: executable).lastPathComponent] + arguments.prefix(3)).joined(separator: " ")
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = outputPipe
        process.standardError = errorPipe
        switch input {
        case .none:
            process.standardInput = FileHandle.nullDevice
        case .file(let path):
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            inputFile = handle
            process.standardInput = handle
        case .bytes, .pipe:
            let pipe = Pipe()
            inputPipe = pipe
            process.standardInput = pipe
        }
        try Launcher.shared.run(process)
        try inputFile?.close()
        inputFile = nil
        if closeOutput {
            // The child's standard output has no reader at all.
            try outputPipe.fileHandleForReading.close()
            output = OutputCollector(reading: nil)
        } else {
            output = OutputCollector(reading: outputPipe.fileHandleForReading)
        }
        errors = OutputCollector(reading: errorPipe.fileHandleForReading)
        if case .bytes(let bytes) = input, let pipe = inputPipe {
            let writer = pipe.fileHandleForWriting
            let done = DispatchSemaphore(value: 0)
            inputWriter = done
            Thread {
                bytes.withUnsafeBytes { buffer in
                    var offset = 0
                    while offset < buffer.count {
                        let count = Glibc.write(writer.fileDescriptor, buffer.baseAddress! + offset, buffer.count - offset)
                        if count < 0 && errno == EINTR { continue }
                        if count <= 0 { break }
                        offset += count
                    }
                }
                try? writer.close()
                done.signal()
            }.start()
        }
    }

    private var inputWriter: DispatchSemaphore?

    /// Writes to the child's standard input (``ChildInput/pipe``).
    func write(_ text: String) throws {
        let pipe = try #require(inputPipe)
        try pipe.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    /// Closes the child's standard input (end-of-file).
    func closeInput() {
        if inputWriter == nil, let pipe = inputPipe { try? pipe.fileHandleForWriting.close() }
    }

    /// Waits for the child to exit; kills it and records a failure after `timeout` seconds.
    @discardableResult
    func wait(timeout: Double = 30, sourceLocation: SourceLocation = #_sourceLocation) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        if process.isRunning {
            Issue.record("\(name) did not exit within \(timeout) s; stderr: \(errors.text)", sourceLocation: sourceLocation)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        finish()
        return process.terminationStatus
    }

    /// Sends a signal and waits for the exit.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM, timeout: Double = 10) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        return wait(timeout: timeout)
    }

    /// How the child ended: `true` when it exited (rather than being killed by a signal).
    var exitedNormally: Bool { process.terminationReason == .exit }

    private var finished = false

    /// Closes our ends of the pipes once the output has been read (once).
    private func finish() {
        if finished { return }
        finished = true
        _ = inputWriter?.wait(timeout: .now() + 10)
        closeInput()
        _ = output.waitForEnd(timeout: 10)
        _ = errors.waitForEnd(timeout: 10)
        try? outputPipe.fileHandleForReading.close()
        try? errorPipe.fileHandleForReading.close()
        try? inputPipe?.fileHandleForReading.close()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        finish()
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

var isRoot: Bool { getuid() == 0 }

var hasSocat: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/socat") }
