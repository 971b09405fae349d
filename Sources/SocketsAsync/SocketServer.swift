public import Logging
public import Sockets
import SystemPackage
import Synchronization

/// A connection server: one listening socket per event loop (sharing the port with
/// `SO_REUSEPORT` when there are several), a task per connection running on its loop, and a
/// graceful shutdown.
///
/// ```swift
/// let server = try SocketServer(on: .ipv4(.loopback, port: 8080))
/// Task { await server.run { connection, peer in
///     var buffer: [UInt8] = []
///     buffer.reserveCapacity(4096)
///     while try await connection.receive(appendingTo: &buffer, maxLength: 4096) > 0 {
///         try await connection.sendAll(buffer.span.bytes)
///         buffer.removeAll(keepingCapacity: true)
///     }
/// } }
/// // later
/// server.shutdown(gracePeriod: .seconds(5))
/// ```
///
/// A handler's error and a failed `accept` have no caller to be thrown to: the server goes on
/// (it closes that connection, or carries on accepting) and reports them to the `logger` given
/// at init, if any. See ``init(on:type:loops:backlog:logger:)`` for the levels.
public final class SocketServer: Sendable {
    /// The listening sockets, one per loop.
    public let listeners: [AsyncSocket]
    /// The address the server listens on (the real port when port 0 was asked for).
    public let localAddress: SocketAddress

    private struct State {
        var connections: [ObjectIdentifier: AsyncSocket] = [:]
        var shutdownDeadline: ContinuousClock.Instant?
    }

    private let state = LockedValue(State())
    private let logger: Logger?

    /// Opens the listening sockets.
    /// - Parameters:
    ///   - address: where to listen; port 0 picks a free port, shared by every loop.
    ///   - type: `SocketType.stream` or `SocketType.sequencedPacket`.
    ///   - loops: the loops to serve on (one listener each); `[EventLoop.shared]` by default.
    ///   - backlog: each listener's queue of connections not yet accepted.
    ///   - logger: where the errors that ``run(_:)`` does not throw go; `nil` (the default)
    ///     logs nothing. A handler's error, and an `accept` failure of one incoming connection,
    ///     are logged at `debug` (they are routine for a server: a peer that resets, a peer
    ///     that gives up before it is accepted); an `accept` failure that stops a listener is
    ///     logged at `error`, once per listener. Each message names the peer (or the listening
    ///     address) and the error, such as
    ///     `connection from 127.0.0.1:50312 failed: recv: Connection reset by peer (ECONNRESET)`.
    ///     Neither the listeners closing at ``shutdown(gracePeriod:)`` nor cancellation is logged.
    public init(
        on address: SocketAddress, type: SocketType = .stream, loops: [EventLoop] = [.shared], backlog: Int = 1024,
        logger: Logger? = nil
    ) throws(SocketError) {
        self.logger = logger
        guard let first = loops.first else {
            throw SocketError.invalid("SocketServer", nil, "no event loop to serve on")
        }
        let reusePort = loops.count > 1
        let firstListener = try AsyncSocket.listen(on: address, type: type, backlog: backlog, reusePort: reusePort, loop: first)
        var listeners = [firstListener]
        do throws(SocketError) {
            let bound = try firstListener.localAddress()
            for loop in loops.dropFirst() {
                listeners.append(try AsyncSocket.listen(on: bound, type: type, backlog: backlog, reusePort: true, loop: loop))
            }
            self.localAddress = bound
        } catch {
            for listener in listeners { try? listener.close() }
            throw error
        }
        self.listeners = listeners
    }

    /// Serves until ``shutdown(gracePeriod:)``: accepts connections and runs `handler` for
    /// each in a task on the connection's loop. The connection is closed when the handler
    /// returns or throws. Returns once the listeners are closed and every handler has ended.
    public func run(_ handler: @escaping @Sendable (AsyncSocket, SocketAddress) async throws -> Void) async {
        await withDiscardingTaskGroup { group in
            for listener in listeners {
                group.addTask(executorPreference: listener.loop) {
                    await self.serve(listener, handler)
                }
            }
        }
    }

    private func serve(_ listener: AsyncSocket, _ handler: @escaping @Sendable (AsyncSocket, SocketAddress) async throws -> Void) async {
        await withDiscardingTaskGroup { group in
            while true {
                let connection: AsyncSocket
                let peer: SocketAddress
                do throws(SocketError) {
                    (connection, peer) = try await listener.accept()
                } catch where error.reason == .closed {
                    return
                } catch {
                    // A failure tied to one incoming connection does not stop the server;
                    // anything else (the task cancelled, the listener broken) does.
                    let stopping = Task.isCancelled || listener.isClosed || error.isCancellation
                    if Self.isTransient(error) && !stopping {
                        logger?.debug("accept on \(localAddress) failed, still accepting: \(error)",
                                      metadata: ["listener.address": "\(localAddress)"])
                        continue
                    }
                    if !stopping {
                        logger?.error("accept on \(localAddress) failed, no longer accepting there: \(error)",
                                      metadata: ["listener.address": "\(localAddress)"])
                    }
                    return
                }
                track(connection)
                group.addTask(executorPreference: connection.loop) {
                    defer {
                        self.untrack(connection)
                        try? connection.close()
                    }
                    do {
                        try await handler(connection, peer)
                    } catch {
                        self.logHandlerError(error, peer: peer)
                    }
                }
            }
        }
    }

    private func logHandlerError(_ error: any Error, peer: SocketAddress) {
        // The server being stopped (its task cancelled) is not the handler failing.
        if error is CancellationError || (error as? SocketError)?.isCancellation == true { return }
        logger?.debug("connection from \(peer) failed: \(error)", metadata: ["connection.peer": "\(peer)"])
    }

    /// Accept errors that concern one connection, not the listener (as `accept(2)` lists them).
    private static func isTransient(_ error: SocketError) -> Bool {
        guard case .system(let code) = error.reason else { return false }
        let transient: [Errno] = [.protocolError, .notPermitted, .connectionAbort, .networkDown, .networkUnreachable,
                .noRouteToHost, .protocolNotAvailable, .notSupportedOnSocket, .timedOut]
        return transient.contains(code)
    }

    private func track(_ connection: AsyncSocket) {
        let deadline = state.withLock { state -> ContinuousClock.Instant? in
            state.connections[ObjectIdentifier(connection)] = connection
            return state.shutdownDeadline
        }
        if let deadline { connection.setDeadline(deadline) }
    }

    private func untrack(_ connection: AsyncSocket) {
        _ = state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(connection)) }
    }

    /// The connections being served now.
    public var connectionCount: Int { state.withLock { $0.connections.count } }

    /// Stops accepting (the listeners are closed) and gives the current connections until
    /// `gracePeriod` from now to finish: past it, their waiting reads and writes fail with
    /// `SocketError.Reason.timedOut` (their read and write deadlines are set to it).
    /// ``run(_:)`` returns when the last handler has ended.
    public func shutdown(gracePeriod: Duration = .seconds(10)) {
        let deadline = ContinuousClock.now.advanced(by: gracePeriod)
        let connections = state.withLock { state -> [AsyncSocket] in
            state.shutdownDeadline = deadline
            return Array(state.connections.values)
        }
        for listener in listeners { try? listener.close() }
        for connection in connections { connection.setDeadline(deadline) }
    }
}
