import Sockets
import SystemPackage

/// Writes to standard output and standard error with `write(2)`, unbuffered, so that binary
/// data and text never interleave out of order, and a closed reader gives `EPIPE`.
enum Console {
    /// Serialises writers so that each call's bytes stay together.
    private static let outputLock = LockedValue<Void>(())

    /// Writes bytes to standard output.
    static func write(_ bytes: some Sequence<UInt8>) throws(ToolError) {
        do {
            try outputLock.withLock { _ in
                _ = try FileDescriptor.standardOutput.writeAll(bytes)
            }
        } catch {
            throw ToolError.runtime("write(stdout): \(describe(error))")
        }
    }

    /// Writes text to standard output.
    static func out(_ text: String) throws(ToolError) {
        try write(text.utf8)
    }

    /// Writes a line to standard error (best effort: there is nowhere to report its failure).
    static func error(_ line: String) {
        let text = line.hasSuffix("\n") ? line : line + "\n"
        _ = try? FileDescriptor.standardError.writeAll(text.utf8)
    }

    /// Writes text to standard error without adding a newline (for `\r` progress lines).
    static func errorRaw(_ text: String) {
        _ = try? FileDescriptor.standardError.writeAll(text.utf8)
    }

    /// Opens /dev/null on standard input, output or error if one was closed, so that no
    /// socket can be given descriptor 0, 1 or 2 and be read or written by mistake.
    static func ensureStandardDescriptors() {
        while let fd = try? FileDescriptor.open("/dev/null", .readWrite) {
            if fd.rawValue > 2 {
                try? fd.close()
                return
            }
        }
    }

    /// Whether standard error is a terminal (live progress lines only make sense there).
    static var errorIsTerminal: Bool { ProcessSupport.isTerminal(2) }

    /// Whether standard input is a terminal.
    static var inputIsTerminal: Bool { ProcessSupport.isTerminal(0) }

    /// Reads from standard input; 0 at end-of-file.
    static func read(into buffer: UnsafeMutableRawBufferPointer) throws(ToolError) -> Int {
        try read(.standardInput, name: "stdin", into: buffer)
    }

    /// Reads from a file, pipe or device; 0 at end-of-file. A descriptor left non-blocking
    /// by whoever opened it is waited for with `poll`.
    static func read(_ file: FileDescriptor, name: String, into buffer: UnsafeMutableRawBufferPointer) throws(ToolError) -> Int {
        while true {
            do {
                return try file.read(into: buffer)
            } catch Errno.resourceTemporarilyUnavailable {
                var entries = [PollEntry(descriptor: file.rawValue, events: .readable)]
                _ = try? Socket.poll(&entries, timeout: .seconds(1))
            } catch {
                throw ToolError.runtime("read(\(name)): \(describe(error))")
            }
        }
    }

    static func describe(_ error: any Error) -> String {
        if let errno = error as? Errno { return "\(errno.description) (\(errno.name ?? "errno \(errno.rawValue)"))" }
        return String(describing: error)
    }
}
