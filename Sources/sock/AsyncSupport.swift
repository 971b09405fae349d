import Foundation
import Sockets
import Synchronization

// Helpers for the subcommands that run on the SocketsAsync event loop. Standard input and
// output are not sockets (they may be a terminal or a file, which epoll cannot watch), so
// each gets a thread of its own, and tasks on the loop hand bytes to it without blocking.

/// Mutual exclusion for async code: one holder at a time, the others suspended (not blocked)
/// and served in the order they came. It keeps the messages sent to one client from
/// interleaving when several tasks send to it.
final class AsyncGate: Sendable {
    private struct State {
        var held = false
        var waiters: [UnsafeContinuation<Void, Never>] = []
    }

    private let state = LockedValue(State())

    /// Waits until the gate is free, then holds it.
    func enter() async {
        let entered = state.withLock { state -> Bool in
            if state.held { return false }
            state.held = true
            return true
        }
        if entered { return }
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.held {
                    state.waiters.append(continuation)
                    return false
                }
                state.held = true
                return true
            }
            if now { continuation.resume() }
        }
    }

    /// Hands the gate to the next waiter, or frees it.
    func leave() {
        let next = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}

/// Standard output written by a thread of its own, so that a slow reader never stalls an
/// event loop. Chunks are written in the order given; a writer waits (suspended) while more
/// than `limit` bytes are queued, so memory stays bounded and a full pipe slows the clients
/// down as a blocking write would.
///
/// A write failure (the reader went away: `EPIPE`) ends the process with `sock: write(stdout):
/// ...` and status 1, after the interrupt actions (removing a Unix socket file) have run.
final class OutputPump: Sendable {
    private struct State {
        var chunks: [[UInt8]] = []
        var head = 0
        var queuedBytes = 0
        var roomWaiters: [UnsafeContinuation<Void, Never>] = []
    }

    private let state = LockedValue(State())
    private let available = DispatchSemaphore(value: 0)
    private let limit: Int

    init(limit: Int = 1 << 20) {
        self.limit = limit
        startThread("stdout-writer") { self.drain() }
    }

    /// Queues bytes for standard output; waits while the queue is over its limit.
    func write(_ bytes: [UInt8]) async {
        guard !bytes.isEmpty else { return }
        let full = state.withLock { state -> Bool in
            state.chunks.append(bytes)
            state.queuedBytes += bytes.count
            return state.queuedBytes > limit
        }
        available.signal()
        guard full else { return }
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let stillFull = state.withLock { state -> Bool in
                guard state.queuedBytes > limit else { return false }
                state.roomWaiters.append(continuation)
                return true
            }
            if !stillFull { continuation.resume() }
        }
    }

    private func drain() {
        while true {
            available.wait()
            let chunk = state.withLock { state -> [UInt8]? in
                guard state.head < state.chunks.count else { return nil }
                let chunk = state.chunks[state.head]
                state.head += 1
                if state.head > 64 && state.head * 2 > state.chunks.count {
                    state.chunks.removeFirst(state.head)
                    state.head = 0
                }
                return chunk
            }
            guard let chunk else { continue }
            do {
                try Console.write(chunk)
            } catch {
                // Nowhere to put what clients send: stop serving.
                Interrupts.runActions()
                Sock.fail(error)
            }
            let resumed = state.withLock { state -> [UnsafeContinuation<Void, Never>] in
                state.queuedBytes -= chunk.count
                guard state.queuedBytes <= limit else { return [] }
                defer { state.roomWaiters.removeAll() }
                return state.roomWaiters
            }
            for continuation in resumed { continuation.resume() }
        }
    }
}

/// Standard input read by a thread of its own and handed to a task one chunk at a time:
/// the thread reads the next chunk only after the task called ``consumed()`` for the last
/// one, so a slow consumer slows the reading down instead of filling memory.
final class InputFeed: Sendable {
    /// The chunks, ending at end-of-file (or a read error).
    let chunks: AsyncStream<[UInt8]>
    private let continuation: AsyncStream<[UInt8]>.Continuation
    private let taken = DispatchSemaphore(value: 0)

    init(bufferSize: Int) {
        (chunks, continuation) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .unbounded)
        startThread("stdin-reader") { [self] in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
            defer { buffer.deallocate() }
            while let count = try? Console.read(into: buffer), count > 0 {
                continuation.yield(Array(UnsafeRawBufferPointer(rebasing: buffer[..<count])))
                taken.wait()
            }
            continuation.finish()
        }
    }

    /// Lets the reader go on to the next chunk.
    func consumed() {
        taken.signal()
    }
}
