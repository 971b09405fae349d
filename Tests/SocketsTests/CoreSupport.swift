// Helpers for the core tests: threads, child processes, timeouts and Unix paths.
// Everything here is bounded in time, so that a broken socket call fails a test instead of
// hanging the run, and closes every descriptor it opens.

import Glibc
import Sockets
import SocketSyscalls
import Synchronization
import Testing

/// Helpers shared by the core's test suites.
enum CoreTest {
    /// Sets `SO_RCVTIMEO` (and `SO_SNDTIMEO`) with a raw `setsockopt`, so that a receive that
    /// would hang fails with `EAGAIN` instead. Tests set this on every socket that waits.
    static func setTimeouts(_ socket: Socket, milliseconds: Int = 5_000) throws {
        var value = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        try socket.withDescriptor { fd in
            try Syscall.setsockopt(fd, level: SOL_SOCKET, name: SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
            try Syscall.setsockopt(fd, level: SOL_SOCKET, name: SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    /// Reads an integer socket option with a raw `getsockopt`.
    static func intOption(_ socket: Socket, level: CInt, name: CInt) throws -> CInt {
        var value: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        try socket.withDescriptor { fd in try Syscall.getsockopt(fd, level: level, name: name, &value, &length) }
        return value
    }

    /// Sets `SO_LINGER` {on, 0}: the next close sends a reset instead of a FIN.
    static func setZeroLinger(_ socket: Socket) throws {
        var value = linger(l_onoff: 1, l_linger: 0)
        try socket.withDescriptor { fd in
            try Syscall.setsockopt(fd, level: SOL_SOCKET, name: SO_LINGER, &value, socklen_t(MemoryLayout<linger>.size))
        }
    }

    /// Waits with `poll(2)` for `events` on the socket; the events seen, or empty on timeout.
    static func poll(_ socket: Socket, _ events: Int16, milliseconds: CInt = 5_000) throws -> Int16 {
        try socket.withDescriptor { fd in
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let count = try Syscall.poll(&entry, 1, timeoutMilliseconds: milliseconds)
            return count == 0 ? 0 : entry.revents
        }
    }

    /// A TCP listener on 127.0.0.1 with an ephemeral port, and that port.
    static func tcpListener(backlog: Int = 16) throws -> (Socket, SocketAddress) {
        let listener = try Socket(.inet, .stream)
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen(backlog: backlog)
        try setTimeouts(listener)
        return (listener, try listener.localAddress())
    }

    /// A connected TCP pair over loopback: (client, server side).
    static func tcpPair() throws -> (client: Socket, server: Socket) {
        let (listener, address) = try tcpListener()
        let client = try Socket(.inet, .stream)
        try client.connect(to: address)
        let (server, _) = try listener.accept()
        try setTimeouts(client)
        try setTimeouts(server)
        try listener.close()
        return (client, server)
    }

    /// A unique path under /tmp for a Unix socket (the file is not created).
    static func unixPath(_ tag: String) -> String {
        "/tmp/sockets-core-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(tag).sock"
    }

    /// Removes a file if it exists.
    static func remove(_ path: String) {
        _ = unlink(path)
    }

    /// `count` bytes of a pseudo-random pattern (xorshift64), fast even in debug builds.
    static func pattern(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            var offset = 0
            while offset < count {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                withUnsafeBytes(of: state) { word in
                    let length = min(8, count - offset)
                    raw.baseAddress!.advanced(by: offset).copyMemory(from: word.baseAddress!, byteCount: length)
                }
                offset += 8
            }
            initialized = count
        }
    }

    /// Whether two byte arrays are equal, with `memcmp` (Array's `==` is slow in debug builds).
    static func same(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in a.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
    }

    /// Sleeps for a number of milliseconds.
    static func sleep(milliseconds: Int) {
        var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
    }

    /// Waits until `condition` holds, checking every millisecond; `false` if it did not
    /// within `milliseconds`.
    static func eventually(milliseconds: Int = 5_000, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(milliseconds))
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            sleep(milliseconds: 1)
        }
        return try condition()
    }

    /// Whether some thread of this process is blocked in system call `number` with `fd` as
    /// its first argument, read from `/proc/self/task/*/syscall` (x86-64 numbers).
    static func threadIsBlocked(inSyscall number: Int, onDescriptor fd: CInt) -> Bool {
        guard let directory = opendir("/proc/self/task") else { return false }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard Int(name) != nil, let text = readSmallFile("/proc/self/task/\(name)/syscall") else { continue }
            let fields = text.split(separator: " ")
            if fields.count > 1, Int(fields[0]) == number, fields[1] == "0x" + String(fd, radix: 16) { return true }
        }
        return false
    }

    /// The first few KiB of a (proc) file, or `nil`.
    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = Glibc.read(fd, &buffer, buffer.count)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }

    /// What `/proc/self/fd/N` links to, such as `socket:[1234]`; empty when not open.
    static func descriptorLink(_ fd: CInt) -> String {
        readLink("/proc/self/fd/\(fd)")
    }

    /// The target of a symbolic link, or empty.
    static func readLink(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return "" }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The `python3` to run: Debian's, else the first on `PATH`.
    static var python: String {
        access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"
    }
}

/// Syscall numbers on x86-64, for `CoreTest.threadIsBlocked`.
enum X86SyscallNumber {
    static let sendto = 44
    static let recvfrom = 45
    static let accept4 = 288
    static let connect = 42
}

// MARK: - Threads

/// A body run on its own POSIX thread, joined with a time limit.
///
/// Foundation's `Thread` would do, but a plain pthread opens no descriptors behind our back,
/// which keeps the descriptor-leak check exact.
private final class ThreadStart {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a pthread running `start.body`.
private func startThread(_ start: ThreadStart) -> (pthread_t?, CInt) {
    var id = pthread_t()
    let context = Unmanaged.passRetained(start).toOpaque()
    let code = pthread_create(&id, nil, { raw in
        guard let raw else { return nil }
        Unmanaged<ThreadStart>.fromOpaque(raw).takeRetainedValue().body()
        return nil
    }, context)
    if code != 0 {
        Unmanaged<ThreadStart>.fromOpaque(context).release()
        return (nil, code)
    }
    return (id, 0)
}

final class BackgroundThread<Value: Sendable>: Sendable {

    private let outcome = Mutex<Result<Value, any Error>?>(nil)
    private let thread = Mutex<pthread_t?>(nil)

    init(_ body: @escaping @Sendable () throws -> Value) {
        let (id, code) = startThread(ThreadStart { [self] in
            let result = Result { try body() }
            outcome.withLock { $0 = result }
        })
        if let id {
            thread.withLock { $0 = id }
        } else {
            outcome.withLock { $0 = .failure(ThreadFailure.couldNotStart(code)) }
        }
    }

    /// Whether the body has returned.
    var isFinished: Bool { outcome.withLock { $0 != nil } }

    /// Waits for the body up to `milliseconds` and returns its value or rethrows its error.
    /// On time-out the thread is left running (detached) and this throws.
    func join(milliseconds: Int = 10_000) throws -> Value {
        let finished = CoreTest.eventually(milliseconds: milliseconds) { isFinished }
        let id = thread.withLock { value -> pthread_t? in
            defer { value = nil }
            return value
        }
        guard finished else {
            if let id { pthread_detach(id) }
            throw ThreadFailure.timedOut
        }
        if let id { pthread_join(id, nil) }
        guard let result = outcome.withLock({ $0 }) else { throw ThreadFailure.timedOut }
        return try result.get()
    }
}

enum ThreadFailure: Error {
    case couldNotStart(CInt)
    case timedOut
}

// MARK: - Child processes

/// A child process started with `posix_spawn`, its stdin and stdout on pipes, stderr kept in
/// a pipe too. Every wait has a deadline; on time-out the child is killed.
final class ChildProcess {
    let pid: pid_t
    private var stdinFD: CInt
    private var stdoutFD: CInt
    private var stderrFD: CInt
    private var buffered: [UInt8] = []
    private var exitStatus: CInt?

    /// Starts `arguments[0]` (searched on `PATH`) with the rest as its arguments.
    init(_ arguments: [String]) throws {
        let child = try spawn(arguments, input: .pipe)
        pid = child.pid
        stdinFD = child.input
        stdoutFD = child.output
        stderrFD = child.errors
    }

    /// Runs python3 with a script; `arguments` follow as `sys.argv[1:]`.
    convenience init(python script: String, _ arguments: [String] = []) throws {
        try self.init([CoreTest.python, "-c", script] + arguments)
    }

    deinit {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            var status: CInt = 0
            _ = waitpid(pid, &status, 0)
        }
        for fd in [stdinFD, stdoutFD, stderrFD] where fd >= 0 { Glibc.close(fd) }
    }

    /// Writes all of `bytes` to the child's stdin.
    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { Glibc.write(stdinFD, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ChildFailure.system("write to child", errno)
            }
            offset += count
        }
    }

    /// Closes the child's stdin (it reads end-of-file).
    func closeInput() {
        if stdinFD >= 0 { Glibc.close(stdinFD) }
        stdinFD = -1
    }

    /// Reads from stdout until `stop` says the buffered bytes are enough, or end-of-file, or
    /// the deadline. Returns whether `stop` was satisfied.
    private func fill(milliseconds: Int, until stop: ([UInt8]) -> Bool) -> Bool {
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(milliseconds))
        while !stop(buffered) {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero, stdoutFD >= 0 else { return false }
            var entry = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            let ready = Glibc.poll(&entry, 1, CInt(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1))
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { return false }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = Glibc.read(stdoutFD, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return stop(buffered) }
            buffered += chunk[..<count]
        }
        return true
    }

    /// The next line of stdout, without its newline.
    func readLine(milliseconds: Int = 10_000) throws -> String {
        guard fill(milliseconds: milliseconds, until: { $0.contains(10) }), let newline = buffered.firstIndex(of: 10) else {
            throw ChildFailure.noOutput(String(decoding: buffered, as: UTF8.self) + " / stderr: " + errorOutput())
        }
        let line = String(decoding: buffered[..<newline], as: UTF8.self)
        buffered.removeSubrange(...newline)
        return line
    }

    /// Everything on stdout until the child closes it (bounded by the deadline).
    func readToEnd(milliseconds: Int = 10_000) -> [UInt8] {
        _ = fill(milliseconds: milliseconds, until: { _ in false })
        defer { buffered = [] }
        return buffered
    }

    /// Waits for the child to exit; its exit code (or 128 + signal). Kills it on time-out.
    @discardableResult
    func wait(milliseconds: Int = 10_000) throws -> CInt {
        if let exitStatus { return exitStatus }
        var status: CInt = 0
        let exited = CoreTest.eventually(milliseconds: milliseconds) { waitpid(pid, &status, WNOHANG) == pid }
        if !exited {
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
            exitStatus = -1
            throw ChildFailure.timedOut(errorOutput())
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which are macros.
        let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        exitStatus = code
        return code
    }

    /// What the child wrote to stderr so far (non-blocking read).
    func errorOutput() -> String {
        guard stderrFD >= 0 else { return "" }
        var result: [UInt8] = []
        var entry = pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)
        while Glibc.poll(&entry, 1, 0) > 0 {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = Glibc.read(stderrFD, &chunk, chunk.count)
            if count <= 0 { break }
            result += chunk[..<count]
        }
        return String(decoding: result, as: UTF8.self)
    }
}

enum ChildFailure: Error, CustomStringConvertible {
    case system(String, CInt)
    case noOutput(String)
    case timedOut(String)

    var description: String {
        switch self {
        case .system(let call, let code): return "\(call): \(String(cString: strerror(code)))"
        case .noOutput(let text): return "child gave no (complete) output: \(text)"
        case .timedOut(let stderr): return "child did not exit in time; stderr: \(stderr)"
        }
    }
}
