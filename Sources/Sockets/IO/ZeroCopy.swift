import Glibc
import CSocketShims
import SocketSyscalls
import SystemPackage

// Zero-copy transfers: `sendfile(2)` and `splice(2)`. Neither takes `MSG_NOSIGNAL`, so each call
// runs with `SIGPIPE` blocked in the calling thread, and a `SIGPIPE` it raised is taken before
// the mask comes back (`Syscall.withBrokenPipeSuppressed`): a closed peer gives `EPIPE`, and
// the process's own `SIGPIPE` disposition is never changed.

/// Flags for `splice(2)` (`SPLICE_F_*`).
public struct SpliceFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `SPLICE_F_MOVE`: move pages instead of copying where possible (a hint).
    public static let move = SpliceFlags(rawValue: CSHIM_SPLICE_F_MOVE)
    /// `SPLICE_F_NONBLOCK`: do not block on the pipe (the other side follows its own
    /// `O_NONBLOCK`).
    public static let nonBlocking = SpliceFlags(rawValue: CSHIM_SPLICE_F_NONBLOCK)
    /// `SPLICE_F_MORE`: more data follows (like `MSG_MORE` on a socket).
    public static let more = SpliceFlags(rawValue: CSHIM_SPLICE_F_MORE)
}

/// A pipe for `splice(2)`, which needs a pipe on one side: data moves socket → pipe →
/// file or socket without being copied into this process. Both ends are close-on-exec and
/// closed by ``close()`` or when the value goes away.
public final class SplicePipe: Sendable {
    let readEnd: OwnedDescriptor
    let writeEnd: OwnedDescriptor

    /// Opens a pipe: `pipe2(O_CLOEXEC)`.
    public init() throws(SocketError) {
        do {
            let (read, write) = try Syscall.pipe(flags: 0)
            readEnd = OwnedDescriptor(read)
            writeEnd = OwnedDescriptor(write)
        } catch {
            throw SocketError("pipe2", errno: error)
        }
    }

    /// The read end's descriptor, `-1` once closed.
    public var readDescriptor: CInt { readEnd.isClosed ? -1 : readEnd.fd }
    /// The write end's descriptor, `-1` once closed.
    public var writeDescriptor: CInt { writeEnd.isClosed ? -1 : writeEnd.fd }

    /// Closes both ends. Calling it again does nothing.
    public func close() throws(SocketError) {
        do {
            try readEnd.close { _ in }
            try writeEnd.close { _ in }
        } catch {
            throw SocketError("close pipe", errno: error)
        }
    }

    /// Moves up to `count` bytes from a file into the pipe: `splice(2)`.
    /// - Parameters:
    ///   - file: an open file descriptor to read from.
    ///   - offset: where to read in the file, advanced by the bytes moved; `nil` to read at
    ///     (and advance) the file position.
    ///   - count: the most bytes to move.
    ///   - flags: `SPLICE_F_*` flags; ``SpliceFlags/move`` by default.
    /// - Returns: the bytes moved; 0 at the end of the file.
    public func splice(fromFile file: CInt, offset: inout Int64?, count: Int, flags: SpliceFlags = .move) throws(SocketError) -> Int {
        let count = try Socket.validLength(count, operation: "splice", limit: Int(Int32.max))
        return try Self.splice(file: file, offset: &offset, pipeEnd: writeEnd, fileIsSource: true, count: count, flags: flags)
    }

    /// Moves up to `count` bytes from the pipe into a file: `splice(2)`.
    /// - Parameters:
    ///   - file: an open file descriptor to write to.
    ///   - offset: where to write in the file, advanced by the bytes moved; `nil` to write at
    ///     (and advance) the file position.
    ///   - count: the most bytes to move.
    ///   - flags: `SPLICE_F_*` flags; ``SpliceFlags/move`` by default.
    /// - Returns: the bytes moved.
    public func splice(toFile file: CInt, offset: inout Int64?, count: Int, flags: SpliceFlags = .move) throws(SocketError) -> Int {
        let count = try Socket.validLength(count, operation: "splice", limit: Int(Int32.max))
        return try Self.splice(file: file, offset: &offset, pipeEnd: readEnd, fileIsSource: false, count: count, flags: flags)
    }

    /// Copies up to `count` bytes from this pipe into another without consuming them:
    /// `tee(2)`. Both are then read separately (for example, one spliced to a socket and
    /// the other to a file).
    /// - Returns: the bytes copied; 0 when this pipe is empty and has no writer.
    public func tee(into other: SplicePipe, count: Int, flags: SpliceFlags = []) throws(SocketError) -> Int {
        let count = try Socket.validLength(count, operation: "tee", limit: Int(Int32.max))
        guard readEnd.enter() else { throw SocketError("tee", reason: .closed) }
        defer { readEnd.leave() }
        guard other.writeEnd.enter() else { throw SocketError("tee", reason: .closed) }
        defer { other.writeEnd.leave() }
        do throws(Errno) {
            let result = try Syscall.withBrokenPipeSuppressed { () throws(Errno) in
                try Syscall.tee(readEnd.fd, other.writeEnd.fd, count, flags: flags.rawValue)
            }
            guard let copied = result.value else {
                throw Errno.resourceTemporarilyUnavailable
            }
            return copied
        } catch {
            throw SocketError("tee", errno: error)
        }
    }

    /// One `splice(2)` between a file and one end of this pipe: into the pipe when
    /// `fileIsSource`, out of it otherwise. `offset` is the file's, advanced by the bytes moved.
    private static func splice(
        file: CInt, offset: inout Int64?, pipeEnd end: OwnedDescriptor, fileIsSource: Bool, count: Int, flags: SpliceFlags
    ) throws(SocketError) -> Int {
        guard end.enter() else { throw SocketError("splice", reason: .closed) }
        defer { end.leave() }
        do throws(Errno) {
            var position = offset ?? 0
            let hasOffset = offset != nil
            let result = try withUnsafeMutablePointer(to: &position) { (pointer) throws(Errno) in
                let fileOffset = hasOffset ? pointer : nil
                return try Syscall.withBrokenPipeSuppressed { () throws(Errno) in
                    fileIsSource
                        ? try Syscall.splice(file, fileOffset, end.fd, nil, count, flags: flags.rawValue)
                        : try Syscall.splice(end.fd, nil, file, fileOffset, count, flags: flags.rawValue)
                }
            }
            if hasOffset { offset = position }
            guard let moved = result.value else { throw Errno.resourceTemporarilyUnavailable }
            return moved
        } catch {
            throw SocketError("splice", errno: error)
        }
    }
}

extension Socket {
    // MARK: sendfile

    /// One `sendfile(2)` call: sends up to `count` bytes of a file from `offset`, which is
    /// advanced by the bytes sent. The file's own position is not used or moved.
    /// - Returns: the bytes sent (0 at the end of the file), or `nil` when the socket is
    ///   non-blocking and full.
    public func trySendFile(from file: CInt, offset: inout Int64, count: Int) throws(SocketError) -> Int? {
        guard offset >= 0 else { throw SocketError.invalid("sendfile", nil, "offset \(offset) is negative") }
        let count = try Self.validLength(count, operation: "sendfile", limit: Int(Int32.max))
        var position = off_t(offset)
        let result = try call("sendfile") { fd throws(Errno) in
            try Syscall.withBrokenPipeSuppressed { () throws(Errno) in try Syscall.sendfile(fd, file, &position, count) }
        }
        offset = Int64(position)
        return result.value
    }

    /// Sends a file, or part of it, with `sendfile(2)`: the kernel copies from the page cache
    /// to the socket without passing the data through this process. On a non-blocking
    /// socket, waits for room with `poll(2)`.
    ///
    /// `sendfile` cannot take `MSG_NOSIGNAL`, so `SIGPIPE` is blocked in the calling thread
    /// for each call (the process's disposition is left alone): a closed peer gives `EPIPE`.
    /// - Parameters:
    ///   - file: an open file descriptor, read from `offset` (its position is not moved).
    ///   - offset: where in the file to start.
    ///   - count: how many bytes to send; `nil` for all up to the end of the file.
    /// - Returns: the bytes sent, fewer than `count` only when the file ended first.
    public func sendFile(from file: CInt, offset: Int64 = 0, count: Int64? = nil) throws(SocketError) -> Int64 {
        if let count, count < 0 { throw SocketError.invalid("sendfile", nil, "count \(count) is negative") }
        var position = offset
        var sent: Int64 = 0
        while count.map({ sent < $0 }) ?? true {
            // Linux moves at most 0x7ffff000 bytes per call.
            let chunk = Int(min(count.map { $0 - sent } ?? Int64(1 << 30), 1 << 30))
            guard let moved = try trySendFile(from: file, offset: &position, count: chunk) else {
                _ = try waitUntil(.writable, deadline: nil, operation: "sendfile")
                continue
            }
            if moved == 0 { break }
            sent += Int64(moved)
        }
        return sent
    }

    /// Opens a file read-only (close-on-exec) and sends it, or part of it, with `sendfile(2)`
    /// (see ``sendFile(from:offset:count:)``).
    /// - Throws: ``SocketError`` naming the path when it cannot be opened.
    public func sendFile(path: String, offset: Int64 = 0, count: Int64? = nil) throws(SocketError) -> Int64 {
        let file: CInt
        do {
            file = try Syscall.open(path, flags: O_RDONLY)
        } catch {
            throw SocketError("open", address: path, errno: error)
        }
        defer { try? Syscall.close(file) }
        return try sendFile(from: file, offset: offset, count: count)
    }

    // MARK: splice

    /// Moves up to `maxCount` bytes received on this socket into a pipe: `splice(2)`.
    /// - Returns: the bytes moved; 0 when the peer closed the stream.
    /// - Throws: ``SocketError/isWouldBlock`` on a non-blocking socket with nothing to read.
    public func splice(into pipe: SplicePipe, maxCount: Int, flags: SpliceFlags = .move) throws(SocketError) -> Int {
        let count = try Self.validLength(maxCount, operation: "splice", limit: Int(Int32.max))
        guard pipe.writeEnd.enter() else { throw SocketError("splice", reason: .closed) }
        defer { pipe.writeEnd.leave() }
        let result = try call("splice") { fd throws(Errno) in
            try Syscall.withBrokenPipeSuppressed { () throws(Errno) in
                try Syscall.splice(fd, nil, pipe.writeEnd.fd, nil, count, flags: flags.rawValue)
            }
        }
        guard let moved = try checkReceived(result, "splice") else { throw wouldBlockError("splice", timeout: .receive) }
        return moved
    }

    /// Sends up to `count` bytes from a pipe on this socket: `splice(2)`.
    /// - Returns: the bytes moved.
    /// - Throws: ``SocketError/isWouldBlock`` on a non-blocking socket that is full.
    public func splice(from pipe: SplicePipe, count: Int, flags: SpliceFlags = .move) throws(SocketError) -> Int {
        let count = try Self.validLength(count, operation: "splice", limit: Int(Int32.max))
        guard pipe.readEnd.enter() else { throw SocketError("splice", reason: .closed) }
        defer { pipe.readEnd.leave() }
        let result = try call("splice") { fd throws(Errno) in
            try Syscall.withBrokenPipeSuppressed { () throws(Errno) in
                try Syscall.splice(pipe.readEnd.fd, nil, fd, nil, count, flags: flags.rawValue)
            }
        }
        guard let moved = result.value else { throw wouldBlockError("splice", timeout: .send) }
        return moved
    }

    /// Relays everything received on this socket to `destination` until the peer closes the
    /// stream (or `count` bytes have moved), through a pipe with `splice(2)`: the bytes never
    /// enter this process. Both sockets should be blocking.
    /// - Returns: the bytes relayed.
    public func spliceAll(to destination: Socket, count: Int64? = nil) throws(SocketError) -> Int64 {
        if let count, count < 0 { throw SocketError.invalid("splice", nil, "count \(count) is negative") }
        let pipe = try SplicePipe()
        defer { try? pipe.close() }
        var relayed: Int64 = 0
        while count.map({ relayed < $0 }) ?? true {
            let chunk = Int(min(count.map { $0 - relayed } ?? Int64(1 << 16), 1 << 16))
            let moved = try splice(into: pipe, maxCount: chunk, flags: [.move, .more])
            if moved == 0 { break }
            var pending = moved
            while pending > 0 {
                pending -= try destination.splice(from: pipe, count: pending, flags: [.move, .more])
            }
            relayed += Int64(moved)
        }
        return relayed
    }
}
