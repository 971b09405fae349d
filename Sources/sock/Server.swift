import Sockets
import SocketsAsync
import Synchronization

/// `sock listen -k`: serves many connections at once on the SocketsAsync event loop, a task
/// per connection.
final class ConnectionServer: Sendable {
    enum Mode: Sendable {
        /// Clients' bytes go to standard output; standard input goes to all clients.
        case plain
        /// Each client's bytes go back to it.
        case echo
        /// Each client's bytes go to every other client (and standard input to all).
        case broker
    }

    let listener: AsyncSocket
    let framing: Framing
    let mode: Mode
    let verbose: Bool
    let hub: ClientHub

    /// - Parameter listener: a bound, listening socket, registered with its loop here.
    init(listener: Socket, framing: Framing, mode: Mode, verbose: Bool, loop: EventLoop = .shared) throws(ToolError) {
        do {
            self.listener = try AsyncSocket(listener, loop: loop)
        } catch {
            throw ToolError(error)
        }
        self.framing = framing
        self.mode = mode
        self.verbose = verbose
        self.hub = ClientHub(framing: framing)
    }

    /// Accepts until interrupted or until accepting fails for good. Every task runs on the
    /// listener's loop.
    func run() async throws(ToolError) {
        defer { try? listener.close() }
        do {
            try await listener.loop.run { () async throws(ToolError) in try await self.serve() }
        } catch {
            throw error
        }
    }

    private func serve() async throws(ToolError) {
        let output: OutputPump? = mode == .plain ? OutputPump() : nil
        do {
            try await withThrowingDiscardingTaskGroup { group in
                if mode != .echo {
                    let input = InputFeed(bufferSize: framing.bufferSize)
                    group.addTask(executorPreference: listener.loop) {
                        for await chunk in input.chunks {
                            await self.hub.broadcast(chunk, except: nil)
                            input.consumed()
                        }
                    }
                }
                while true {
                    guard let (client, peer) = try await acceptNext() else { continue }
                    let member = hub.add(client)
                    if verbose { Console.error("sock: connection from \(peer)") }
                    group.addTask(executorPreference: client.loop) {
                        await self.serve(member, peer: peer, output: output)
                    }
                }
            }
        } catch {
            throw ToolError(error)
        }
    }

    /// The next connection; `nil` after an error that concerns only that connection.
    /// Running out of descriptors (`EMFILE`) is waited out inside `accept`.
    private func acceptNext() async throws(SocketError) -> (AsyncSocket, SocketAddress)? {
        do {
            return try await listener.accept()
        } catch where Self.concernsOneConnection(error) {
            if verbose { Console.error("sock: \(error)") }
            return nil
        }
    }

    /// Accept errors that concern one incoming connection, not the listener (`accept(2)`).
    private static func concernsOneConnection(_ error: SocketError) -> Bool {
        guard let code = error.errno else { return false }
        return [.connectionAbort, .protocolError, .notPermitted, .networkDown, .networkUnreachable, .noRouteToHost,
            .protocolNotAvailable, .notSupportedOnSocket, .timedOut].contains(code)
    }

    private func serve(_ member: ClientHub.Member, peer: SocketAddress, output: OutputPump?) async {
        defer {
            hub.remove(member)
            try? member.socket.close()
            if verbose { Console.error("sock: \(peer) closed") }
        }
        let connection = member.socket
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: framing.bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        do throws(SocketError) {
            while true {
                let count = try await connection.receive(into: buffer)
                // A zero-length seqpacket record also reads as 0: both end the connection.
                if count == 0 { break }
                let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<count])
                switch mode {
                case .echo:
                    if framing == .stream {
                        try await connection.sendAll(bytes)
                    } else {
                        _ = try await connection.send(bytes)
                    }
                case .broker:
                    await hub.broadcast(Array(bytes), except: member)
                case .plain:
                    await output?.write(Array(bytes))
                }
            }
        } catch {
            if verbose { Console.error("sock: \(peer): \(ToolError(error).message)") }
        }
    }
}

/// The clients connected right now, for broadcasting.
final class ClientHub: Sendable {
    final class Member: Sendable {
        let socket: AsyncSocket
        /// Keeps one sender at a time on this client, so that messages do not interleave.
        let sending = AsyncGate()

        init(socket: AsyncSocket) {
            self.socket = socket
        }
    }

    let framing: Framing
    private let members = LockedValue<[Member]>([])

    init(framing: Framing) {
        self.framing = framing
    }

    func add(_ socket: AsyncSocket) -> Member {
        let member = Member(socket: socket)
        members.withLock { $0.append(member) }
        return member
    }

    func remove(_ member: Member) {
        members.withLock { $0.removeAll { $0 === member } }
    }

    /// Sends bytes to every member but one, in turn; a member that cannot take them is
    /// dropped (closed, which also ends its task).
    func broadcast(_ bytes: [UInt8], except sender: Member?) async {
        let targets = members.withLock { $0.filter { $0 !== sender } }
        for target in targets {
            await target.sending.enter()
            do throws(SocketError) {
                if framing == .stream {
                    try await target.socket.sendAll(bytes)
                } else {
                    _ = try await target.socket.send(bytes)
                }
                target.sending.leave()
            } catch {
                target.sending.leave()
                remove(target)
                try? target.socket.close()
            }
        }
    }
}
