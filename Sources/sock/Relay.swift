import Foundation
import Sockets
import SystemPackage
import Synchronization

/// How the bytes on a socket are framed.
enum Framing: Sendable {
    /// A byte stream (TCP, Unix stream): end-of-input is sent as a half-close.
    case stream
    /// Messages that keep their boundaries and end with the connection (Unix seqpacket).
    case sequencedPackets
    /// Datagrams: no connection, so no end; the session ends when idle.
    case datagrams

    /// The largest message read at once.
    var bufferSize: Int {
        switch self {
        case .stream: return 64 * 1024
        case .sequencedPackets: return 256 * 1024
        case .datagrams: return 65_536
        }
    }
}

/// Counts bytes in both directions and shows them on standard error with `--progress`.
final class TransferProgress: Sendable {
    let sent = Atomic<Int>(0)
    let received = Atomic<Int>(0)
    let enabled: Bool
    private let start = ContinuousClock.now
    private let lastShown = LockedValue<ContinuousClock.Instant>(ContinuousClock.now)
    private let terminal = Console.errorIsTerminal

    init(enabled: Bool) {
        self.enabled = enabled
    }

    private func line() -> String {
        let elapsed = max(start.duration(to: .now).seconds, 1e-6)
        let sent = Double(self.sent.load(ordering: .relaxed))
        let received = Double(self.received.load(ordering: .relaxed))
        return "sent \(Format.bytes(sent)), received \(Format.bytes(received)) in \(Format.duration(start.duration(to: .now)))"
            + " (\(Format.rate((sent + received) / elapsed)))"
    }

    /// Shows the counters: on a terminal as a line rewritten in place, twice a second;
    /// elsewhere as one line a second.
    func tick() {
        guard enabled else { return }
        let interval: Duration = terminal ? .milliseconds(500) : .seconds(1)
        let due = lastShown.withLock { last -> Bool in
            guard last.duration(to: .now) >= interval else { return false }
            last = .now
            return true
        }
        guard due else { return }
        if terminal {
            Console.errorRaw("\rsock: " + line() + "\u{1B}[K")
        } else {
            Console.error("sock: " + line())
        }
    }

    /// Shows the final counters.
    func finish() {
        guard enabled else { return }
        if terminal { Console.errorRaw("\r\u{1B}[K") }
        Console.error("sock: " + line())
    }
}

/// What a relay sends.
enum RelaySource: Sendable {
    /// Standard input, read and sent as it comes.
    case standardInput
    /// A regular file, sent with `sendfile(2)` from its start (the bytes never enter this
    /// process).
    case file(FileDescriptor, path: String)
    /// One open descriptor, passed with `SCM_RIGHTS` (carried by the label's bytes).
    case descriptor(CInt, label: String)
}

/// Copies standard input (or a file, or a passed descriptor) to a connected socket and the
/// socket to standard output, one thread per direction, byte-exact.
///
/// A stream ends when the peer has closed its side and standard input is done (at its end the
/// write side is shut down, a half-close, and reading goes on). Datagram sessions, which have
/// no end, stop after the input ends and the socket has been quiet for `linger`.
final class StdioRelay: Sendable {
    let socket: Socket
    let framing: Framing
    let source: RelaySource
    /// Stop when nothing moved either way for this long (`-w`).
    let idleTimeout: Duration?
    /// For datagrams: how long to wait for replies once the input has ended.
    let linger: Duration
    let progress: TransferProgress

    private struct State {
        var inputDone = false
        var outputDone = false
        var failure: ToolError?
        var lastActivity = ContinuousClock.now
    }

    private let state = LockedValue(State())
    private let changed = DispatchSemaphore(value: 0)

    init(
        socket: Socket, framing: Framing, source: RelaySource = .standardInput, idleTimeout: Duration?,
        linger: Duration = .seconds(1), progress: Bool
    ) {
        self.socket = socket
        self.framing = framing
        self.source = source
        self.idleTimeout = idleTimeout
        self.linger = linger
        self.progress = TransferProgress(enabled: progress)
    }

    /// Why a session ended without a failure.
    enum Ending {
        /// Both directions reached their end.
        case finished
        /// Nothing moved for the idle time (or, for datagrams, after the input ended).
        case idle
    }

    /// Runs until the session ends; throws the first failure.
    @discardableResult
    func run() throws(ToolError) -> Ending {
        // Reading a terminal may never end: then the session ends with the peer's side.
        let inputIsTerminal = { if case .standardInput = source { return Console.inputIsTerminal } else { return false } }()
        startThread("stdin-to-socket") { self.copyInput() }
        startThread("socket-to-stdout") { self.copyOutput() }
        defer { progress.finish() }
        while true {
            _ = changed.wait(timeout: .now() + .milliseconds(100))
            let current = state.withLock { $0 }
            if let failure = current.failure { throw failure }
            if current.outputDone && (current.inputDone || inputIsTerminal) { return .finished }
            let quiet = current.lastActivity.duration(to: .now)
            if framing == .datagrams && current.inputDone && quiet >= linger { return .idle }
            if let idleTimeout, quiet >= idleTimeout { return .idle }
            progress.tick()
        }
    }

    private func update(_ body: (inout State) -> Void) {
        state.withLock { body(&$0) }
        changed.signal()
    }

    private func touch() {
        state.withLock { $0.lastActivity = .now }
    }

    /// The source to the socket; at its end, shut down writing.
    private func copyInput() {
        switch source {
        case .standardInput:
            copyStandardInput()
        case .file(let file, let path):
            finishInput {  () throws(ToolError) in try sendFile(file, path: path) }
        case .descriptor(let fd, let label):
            finishInput { () throws(ToolError) in
                do {
                    try socket.sendDescriptors([fd], bytes: Array(label.utf8))
                } catch {
                    throw ToolError(error)
                }
            }
        }
    }

    /// Runs `send`, then half-closes and records the end of input (or the failure).
    private func finishInput(_ send: () throws(ToolError) -> Void) {
        do throws(ToolError) {
            try send()
            if framing != .datagrams {
                do {
                    try shutdownWriting()
                } catch {
                    throw ToolError(error)
                }
            }
            update { $0.inputDone = true; $0.lastActivity = .now }
        } catch {
            update { $0.failure = $0.failure ?? error }
        }
    }

    /// Sends a file with `sendfile(2)`, a few MiB per call so that progress and the idle
    /// timer see it move.
    private func sendFile(_ file: FileDescriptor, path: String) throws(ToolError) {
        let chunk: Int64 = 4 << 20
        var offset: Int64 = 0
        while true {
            let sent: Int64
            do {
                sent = try socket.sendFile(from: file.rawValue, offset: offset, count: chunk)
            } catch {
                // The peer went away after closing its side: not a failure of ours. A reset
                // is, even when the reader saw end-of-file (it does once this send took the
                // reset's error).
                if error.errno != .connectionReset && state.withLock({ $0.outputDone }) { return }
                throw ToolError.runtime("\(error) (sending \(path))")
            }
            offset += sent
            progress.sent.add(Int(sent), ordering: .relaxed)
            touch()
            if sent < chunk { return }
        }
    }

    /// Standard input to the socket; at end-of-input, shut down writing.
    private func copyStandardInput() {
        let capacity = framing == .datagrams ? 65_507 : framing.bufferSize
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        do {
            while true {
                let count = try Console.read(into: buffer)
                if count == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[..<count])
                do {
                    if framing == .stream {
                        try socket.sendAll(chunk)
                    } else {
                        _ = try socket.send(chunk)
                    }
                } catch {
                    // The peer went away after closing its side: not a failure of ours. A
                    // reset is, even when the reader saw end-of-file (it does once this send
                    // took the reset's error).
                    if error.errno != .connectionReset && state.withLock({ $0.outputDone }) { break }
                    throw ToolError(error)
                }
                progress.sent.add(count, ordering: .relaxed)
                touch()
            }
            if framing != .datagrams { try shutdownWriting() }
            update { $0.inputDone = true; $0.lastActivity = .now }
        } catch {
            update { $0.failure = $0.failure ?? ToolError(error) }
        }
    }

    /// Sends end-of-file to the peer (a half-close); a peer that is already gone is fine.
    private func shutdownWriting() throws(SocketError) {
        do {
            try socket.shutdown(.write)
        } catch {
            if error.errno != .socketNotConnected { throw error }
        }
    }

    /// The socket to standard output, until end-of-file.
    private func copyOutput() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: framing.bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        do {
            while true {
                let count = try socket.receive(into: buffer)
                if count == 0 && framing != .datagrams { break }
                try Console.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                progress.received.add(count, ordering: .relaxed)
                touch()
            }
            update { $0.outputDone = true }
        } catch {
            update { $0.failure = $0.failure ?? ToolError(error) }
        }
    }
}
