import Glibc
import SocketSyscalls

// One way for every test target to start a child process. Not Foundation's `Process`: its
// first use leaves descriptors open for the life of the process, and it closes the socket
// it watches a child's exit with on its own thread just after `isRunning` turns false, so
// the descriptor-leak check (`NoDescriptorLeaks`) would see both.

/// What a spawned child reads as standard input.
public enum SpawnInput: Sendable {
    /// `/dev/null`: immediate end-of-file.
    case null
    /// A file, opened read-only in the child.
    case file(String)
    /// A pipe; the parent's end is ``SpawnedChild/input``.
    case pipe
}

/// A child started by ``spawn(_:searchPath:input:closeOtherDescriptors:)``: its pid (to be reaped with `waitpid`)
/// and the parent's ends of its pipes, close-on-exec, which the caller closes.
public struct SpawnedChild: Sendable {
    public let pid: Int32
    /// The write end of the child's standard input with ``SpawnInput/pipe``, else -1.
    public let input: CInt
    /// The read ends of the child's standard output and standard error.
    public let output: CInt
    public let errors: CInt
}

/// Starts `arguments[0]` (searched on `PATH` when `searchPath`) with the rest as its arguments,
/// standard output and error on pipes. The child gets a process group of its own and no
/// blocked signal, whatever the starting thread's mask. It inherits whatever this process has
/// open without close-on-exec (the tests of CLOEXEC rely on that), unless
/// `closeOtherDescriptors`, when it gets descriptors 0, 1 and 2 only.
/// - Throws: ``CommandFailure`` when a pipe cannot be made or the program cannot start; then
///   nothing is left open.
public func spawn(
    _ arguments: [String], searchPath: Bool = true, input: SpawnInput = .null, closeOtherDescriptors: Bool = false
) throws(CommandFailure) -> SpawnedChild {
    guard let program = arguments.first else { throw CommandFailure("spawn: no program") }
    var opened: [CInt] = []
    func makePipe() throws(CommandFailure) -> (read: CInt, write: CInt) {
        do {
            let ends = try Syscall.pipe(flags: O_CLOEXEC)
            opened += [ends.read, ends.write]
            return ends
        } catch {
            for fd in opened { close(fd) }
            throw CommandFailure("pipe: \(error)")
        }
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    var inputEnds: (read: CInt, write: CInt)?
    switch input {
    case .null: posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    case .file(let path): posix_spawn_file_actions_addopen(&actions, 0, path, O_RDONLY, 0)
    case .pipe:
        let ends = try makePipe()
        posix_spawn_file_actions_adddup2(&actions, ends.read, 0)
        inputEnds = ends
    }
    let outputEnds = try makePipe()
    posix_spawn_file_actions_adddup2(&actions, outputEnds.write, 1)
    let errorEnds = try makePipe()
    posix_spawn_file_actions_adddup2(&actions, errorEnds.write, 2)
    if closeOtherDescriptors {
        for fd in openDescriptors() where fd > 2 && !opened.contains(fd) { posix_spawn_file_actions_addclose(&actions, fd) }
    }

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK))
    posix_spawnattr_setpgroup(&attributes, 0)
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)

    let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    let code = searchPath
        ? posix_spawnp(&pid, program, &actions, &attributes, argv, environ)
        : posix_spawn(&pid, program, &actions, &attributes, argv, environ)
    // The child's ends: it has its copies (or failed to start).
    for fd in [inputEnds?.read, outputEnds.write, errorEnds.write] { if let fd { close(fd) } }
    guard code == 0 else {
        for fd in [inputEnds?.write, outputEnds.read, errorEnds.read] { if let fd { close(fd) } }
        throw CommandFailure("cannot start \(program): \(String(cString: strerror(code)))")
    }
    return SpawnedChild(pid: pid, input: inputEnds?.write ?? -1, output: outputEnds.read, errors: errorEnds.read)
}
