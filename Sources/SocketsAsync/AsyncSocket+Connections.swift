public import Sockets
import Synchronization

extension AsyncSocket {
    // MARK: Listening and accepting

    /// Opens a listening socket: `socket`, `SO_REUSEADDR` (IP), optionally `SO_REUSEPORT`,
    /// `bind`, `listen`, registered with `loop`.
    /// - Parameters:
    ///   - address: where to listen; port 0 picks a free port (read it with ``localAddress()``).
    ///   - type: `SocketType.stream` or `SocketType.sequencedPacket`.
    ///   - backlog: the queue of connections not yet accepted.
    ///   - reusePort: set `SO_REUSEPORT`, so that several sockets (one per loop) can listen on
    ///     the same port and the kernel spreads connections among them.
    ///   - loop: the event loop to register the listening socket with.
    public static func listen(
        on address: SocketAddress, type: SocketType = .stream, backlog: Int = 1024, reusePort: Bool = false,
        loop: EventLoop = .shared
    ) throws(SocketError) -> AsyncSocket {
        let socket = try Socket(address.domain, type, nonBlocking: true)
        do {
            if address.domain == .inet || address.domain == .inet6 {
                try socket.set(.reuseAddress, true)
                if reusePort { try socket.set(.reusePort, true) }
            }
            try socket.bind(to: address)
            try socket.listen(backlog: backlog)
            return try AsyncSocket(registering: socket, type: type, loop: loop)
        } catch {
            try? socket.close()
            throw error
        }
    }

    /// Opens a datagram socket bound to `address` (`socket`, `bind`), registered with `loop`.
    /// Port 0 picks a free port; `UnixSocketAddress.unnamed` autobinds a Unix socket.
    public static func bind(
        datagram address: SocketAddress, protocol: SocketProtocol = .default, loop: EventLoop = .shared
    ) throws(SocketError) -> AsyncSocket {
        let socket = try Socket(address.domain, .datagram, `protocol`, nonBlocking: true)
        do {
            try socket.bind(to: address)
            return try AsyncSocket(registering: socket, type: .datagram, loop: loop)
        } catch {
            try? socket.close()
            throw error
        }
    }

    /// Accepts a connection: `accept4(2)` with `SOCK_CLOEXEC | SOCK_NONBLOCK`, waiting for
    /// one. The new socket is registered with `loop` (this socket's loop by default).
    ///
    /// When the process is out of descriptors (`EMFILE`, `ENFILE`) or memory, it does not
    /// retry in a loop: it waits until a socket of this library is closed, or for a timer
    /// (5 ms, doubling up to 1 s), while other sockets go on being served.
    /// - Returns: the connection and the peer's address.
    public func accept(loop target: EventLoop? = nil, deadline: ContinuousClock.Instant? = nil) async throws(SocketError) -> (socket: AsyncSocket, peer: SocketAddress) {
        var backoff = Duration.milliseconds(5)
        while true {
            let accepted: (socket: Socket, peer: SocketAddress)
            do throws(SocketError) {
                accepted = try await perform(.read, "accept", deadline: deadline) { _ throws(SocketError) in
                    try socket.tryAccept(nonBlocking: true)
                }
            } catch where DescriptorPressure.isExhaustion(error) {
                try await backOff(&backoff, deadline: deadline)
                continue
            }
            do {
                return (try AsyncSocket(registering: accepted.socket, type: type, loop: target ?? loop), accepted.peer)
            } catch {
                try? accepted.socket.close()
                throw error
            }
        }
    }

    /// After `EMFILE`: stop trying until a descriptor is released or the backoff passes.
    private func backOff(_ backoff: inout Duration, deadline: ContinuousClock.Instant?) async throws(SocketError) {
        let now = ContinuousClock.now
        var until = now.advanced(by: backoff)
        if let deadline { until = min(until, deadline) }
        if let socketDeadline = readDeadline { until = min(until, socketDeadline) }
        backoff = min(backoff * 2, .seconds(1))
        // Forget the listener's readiness: the next try comes from a released descriptor, a
        // new connection, or the timer; never straight away.
        if let token = registration.readyToken(.read) { registration.clearReady(.read, token: token) }
        DescriptorPressure.add(registration)
        defer { DescriptorPressure.remove(registration) }
        do throws(SocketError) {
            try await waitOnce(.read, "accept", deadline: until)
        } catch where error.reason == .timedOut {
            let limit = [deadline, readDeadline].compactMap { $0 }.min()
            if let limit, ContinuousClock.now >= limit { throw error }
        }
        // Try again, whatever woke us.
        registration.poke(.read)
    }

    /// The incoming connections, as an `AsyncSequence` of (connection, peer address) that
    /// ends when this listening socket is closed.
    ///
    /// ```swift
    /// for try await (connection, peer) in listener.connections() {
    ///     Task(executorPreference: connection.loop) { ... }
    /// }
    /// ```
    /// - Parameter target: the loop to register connections with (this socket's by default).
    public func connections(loop target: EventLoop? = nil) -> Connections {
        Connections(listener: self, loop: target)
    }

    // MARK: Connecting

    /// Connects: a non-blocking `connect(2)`, then waits until it finishes and reads its
    /// outcome (`SO_ERROR`).
    /// - Throws: the connect's error (`ECONNREFUSED`, `ENETUNREACH`, ...), naming the address;
    ///   `SocketError.Reason.timedOut` at the deadline (or the socket's write deadline).
    ///   A Unix socket whose listener's backlog is full fails at once with `EAGAIN`.
    public func connect(to address: SocketAddress, deadline: ContinuousClock.Instant? = nil) async throws(SocketError) {
        if try socket.tryConnect(to: address) { return }
        if address.domain == .unix {
            // A Unix connect that would block has not started (the listener's queue is full),
            // and no event would say when to retry.
            throw SocketError("connect", address: address.description, errno: .resourceTemporarilyUnavailable)
        }
        try await perform(.write, "connect", address: address.description, deadline: deadline) { _ throws(SocketError) -> Void? in
            if let pending = try socket.takeError() {
                throw SocketError("connect", address: address.description, errno: pending)
            }
            // Writable and no error: connected, unless the readiness was from before the
            // connect began; then keep waiting.
            do throws(SocketError) {
                _ = try socket.peerAddress()
                return ()
            } catch where error.errno == .socketNotConnected {
                return nil
            }
        }
    }

    /// Connects, giving up after `timeout`: ``connect(to:deadline:)`` with a deadline that
    /// far from now.
    public func connect(to address: SocketAddress, timeout: Duration) async throws(SocketError) {
        try await connect(to: address, deadline: .now.advanced(by: timeout))
    }

    /// Connects to a socket address with a new socket (`socket` with `SOCK_NONBLOCK`, then
    /// ``connect(to:deadline:)``), registered with `loop`.
    public static func connect(
        to address: SocketAddress, type: SocketType = .stream, deadline: ContinuousClock.Instant? = nil,
        loop: EventLoop = .shared
    ) async throws(SocketError) -> AsyncSocket {
        let connection = try AsyncSocket(address.domain, type, loop: loop)
        do {
            try await connection.connect(to: address, deadline: deadline)
            return connection
        } catch {
            try? connection.close()
            throw error
        }
    }

    /// Connects to a socket address, giving up after `timeout`.
    public static func connect(
        to address: SocketAddress, type: SocketType = .stream, timeout: Duration, loop: EventLoop = .shared
    ) async throws(SocketError) -> AsyncSocket {
        try await connect(to: address, type: type, deadline: .now.advanced(by: timeout), loop: loop)
    }

    /// Connects to a host name (or numeric address) and port, trying every address it
    /// resolves to, Happy Eyeballs style (RFC 8305).
    ///
    /// The name is resolved with `getaddrinfo(3)` on a thread of its own, never on a loop.
    /// The addresses are tried in its order with the families interleaved (IPv6, IPv4, IPv6,
    /// ...); each attempt gets `attemptDelay` (250 ms) before the next one starts, and a
    /// failed attempt starts the next at once. The first to connect wins; the others are
    /// cancelled and closed.
    /// - Throws: the lookup's error (`SocketError.Reason.addressInfo(code:systemError:)`), or
    ///   when every attempt failed, the first attempt's error.
    public static func connect(
        host: String, port: UInt16, type: SocketType = .stream, deadline: ContinuousClock.Instant? = nil,
        attemptDelay: Duration = .milliseconds(250), loop: EventLoop = .shared
    ) async throws(SocketError) -> AsyncSocket {
        let addresses = try await resolve(host: host, port: port, type: type)
        return try await connect(toAny: addresses, type: type, deadline: deadline, attemptDelay: attemptDelay, loop: loop)
    }

    /// Resolves a host name to socket addresses with `getaddrinfo(3)` on a thread of its own,
    /// so that neither a loop nor the cooperative thread pool blocks on DNS. A numeric host
    /// needs no lookup. Cancelling the task ends the wait (the lookup's result is dropped).
    public static func resolve(host: String, port: UInt16, type: SocketType = .stream) async throws(SocketError) -> [SocketAddress] {
        if let numeric = try? SocketAddress(host: host, port: port) { return [numeric] }
        let lookup = PendingLookup()
        let result: Result<[SocketAddress], SocketError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                guard lookup.attach(continuation) else { return }
                let work: @Sendable () -> Void = {
                    lookup.finish(Result { () throws(SocketError) in
                        var addresses: [SocketAddress] = []
                        for entry in try AddressInfo.lookup(host: host, port: port, type: type) where !addresses.contains(entry.address) {
                            addresses.append(entry.address)
                        }
                        return addresses
                    })
                }
                do {
                    try SystemThread.spawn(work).detach()
                } catch {
                    Task.detached(operation: work)
                }
            }
        } onCancel: {
            lookup.finish(.failure(SocketError("getaddrinfo", address: host, errno: .canceled)))
        }
        return try result.get()
    }

    /// Connects to the first of `addresses` that accepts, Happy Eyeballs style: see
    /// ``connect(host:port:type:deadline:attemptDelay:loop:)``.
    public static func connect(
        toAny addresses: [SocketAddress], type: SocketType = .stream, deadline: ContinuousClock.Instant? = nil,
        attemptDelay: Duration = .milliseconds(250), loop: EventLoop = .shared
    ) async throws(SocketError) -> AsyncSocket {
        guard let first = addresses.first else {
            throw SocketError.invalid("connect", nil, "no address to connect to")
        }
        if addresses.count == 1 { return try await connect(to: first, type: type, deadline: deadline, loop: loop) }
        let ordered = interleavingFamilies(addresses)

        enum Outcome: Sendable {
            case connected(AsyncSocket)
            case failed(Int, SocketError)
            case delayElapsed(Int)
        }

        let result: Result<AsyncSocket, SocketError> = await withTaskGroup(of: Outcome.self) { group in
            var next = 0
            var running = 0
            var errors: [(Int, SocketError)] = []

            func startNext(_ group: inout TaskGroup<Outcome>) {
                let index = next
                let address = ordered[index]
                next += 1
                running += 1
                group.addTask(executorPreference: loop) {
                    do throws(SocketError) {
                        return .connected(try await connect(to: address, type: type, deadline: deadline, loop: loop))
                    } catch {
                        return .failed(index, error)
                    }
                }
                if next < ordered.count {
                    group.addTask {
                        // The timer for starting the next attempt; a stale one is ignored.
                        try? await Task.sleep(for: attemptDelay)
                        return .delayElapsed(index)
                    }
                }
            }

            startNext(&group)
            var winner: AsyncSocket?
            while running > 0 || winner == nil && next < ordered.count, let outcome = await group.next() {
                switch outcome {
                case .connected(let connection):
                    running -= 1
                    if winner == nil {
                        winner = connection
                        group.cancelAll()
                    } else {
                        try? connection.close()
                    }
                case .failed(let index, let error):
                    running -= 1
                    errors.append((index, error))
                    if winner == nil && next < ordered.count { startNext(&group) }
                case .delayElapsed(let index):
                    // Only the timer of the latest attempt starts another.
                    if winner == nil && index == next - 1 && next < ordered.count { startNext(&group) }
                }
            }
            group.cancelAll()
            if let winner { return .success(winner) }
            if Task.isCancelled { return .failure(SocketError("connect", address: ordered[0].description, errno: .canceled)) }
            let firstError = errors.min { $0.0 < $1.0 }?.1
            return .failure(firstError ?? SocketError("connect", address: ordered[0].description, reason: .timedOut))
        }
        return try result.get()
    }

    /// RFC 8305 section 4: alternate the address families, starting with the family of the
    /// first address; within a family keep the resolver's order.
    package static func interleavingFamilies(_ addresses: [SocketAddress]) -> [SocketAddress] {
        guard let firstFamily = addresses.first?.domain else { return addresses }
        let preferred = addresses.filter { $0.domain == firstFamily }
        let others = addresses.filter { $0.domain != firstFamily }
        var result: [SocketAddress] = []
        result.reserveCapacity(addresses.count)
        for index in 0..<max(preferred.count, others.count) {
            if index < preferred.count { result.append(preferred[index]) }
            if index < others.count { result.append(others[index]) }
        }
        return result
    }
}

/// A name lookup running on its own thread, and the task waiting for it; whichever of "the
/// lookup finished" and "the task was cancelled" comes first resumes the task.
private final class PendingLookup: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Result<[SocketAddress], SocketError>, Never>?
        var result: Result<[SocketAddress], SocketError>?
        var resumed = false
    }

    private let state = LockedValue(State())

    /// Attaches the waiting task; `false` (after resuming it) when the outcome is already known.
    func attach(_ continuation: CheckedContinuation<Result<[SocketAddress], SocketError>, Never>) -> Bool {
        let early: Result<[SocketAddress], SocketError>? = state.withLock { state in
            if let result = state.result {
                state.resumed = true
                return result
            }
            state.continuation = continuation
            return nil
        }
        if let early {
            continuation.resume(returning: early)
            return false
        }
        return true
    }

    func finish(_ result: Result<[SocketAddress], SocketError>) {
        let continuation = state.withLock { state -> CheckedContinuation<Result<[SocketAddress], SocketError>, Never>? in
            guard !state.resumed else { return nil }
            if state.result == nil { state.result = result }
            guard let continuation = state.continuation else { return nil }
            state.resumed = true
            state.continuation = nil
            return continuation
        }
        continuation?.resume(returning: result)
    }
}

/// The connections arriving on a listening socket: an `AsyncSequence` of
/// (connection, peer address) that ends when the listener is closed and throws the other
/// errors. Running out of descriptors is waited out, not thrown (see
/// ``AsyncSocket/accept(loop:deadline:)``).
public struct Connections: AsyncSequence, Sendable {
    public typealias Element = (socket: AsyncSocket, peer: SocketAddress)
    public typealias Failure = SocketError

    let listener: AsyncSocket
    let loop: EventLoop?

    /// An iterator that accepts the next connection on each call.
    public func makeAsyncIterator() -> Iterator {
        Iterator(listener: listener, loop: loop)
    }

    /// Accepts connections one by one.
    public struct Iterator: AsyncIteratorProtocol {
        let listener: AsyncSocket
        let loop: EventLoop?

        /// The next connection; `nil` once the listener is closed.
        public mutating func next() async throws(SocketError) -> Element? {
            do throws(SocketError) {
                return try await listener.accept(loop: loop)
            } catch where error.reason == .closed {
                return nil
            }
        }

        /// The next connection; `nil` once the listener is closed.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(SocketError) -> Element? {
            try await next()
        }
    }
}
