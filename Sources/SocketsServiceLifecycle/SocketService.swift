public import ServiceLifecycle
public import Sockets
public import SocketsAsync

/// A ``SocketsAsync/SocketServer`` run as a swift-service-lifecycle `Service`: a
/// `ServiceGroup` starts it, and stops it gracefully on the group's graceful shutdown (for
/// example on `SIGTERM`).
///
/// On graceful shutdown the server stops accepting and gives the open connections
/// ``gracePeriod`` to finish (``SocketsAsync/SocketServer/shutdown(gracePeriod:)``); ``run()``
/// returns when the last handler has ended. On cancellation (the group cancelled, or its
/// graceful shutdown escalated) it stops at once: the listeners close and the handlers'
/// waiting reads and writes fail.
///
/// ```swift
/// import Logging
/// import ServiceLifecycle
/// import SocketsAsync
/// import SocketsServiceLifecycle
///
/// let logger = Logger(label: "echo")
/// let server = try SocketServer(on: .ipv4(.any, port: 7000), logger: logger)
/// let echo = SocketService(server: server, gracePeriod: .seconds(5)) { connection, _ in
///     while case let bytes = try await connection.receive(maxLength: 4096), !bytes.isEmpty {
///         try await connection.sendAll(bytes)
///     }
/// }
/// let group = ServiceGroup(services: [echo], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
///
/// `Sockets` has a `Service` of its own (the services database): in a file that imports both,
/// name the protocol `ServiceLifecycle.Service`.
public struct SocketService: ServiceLifecycle.Service, CustomStringConvertible {
    /// The server this service runs.
    public let server: SocketServer
    /// How long the open connections have to finish once graceful shutdown begins.
    public let gracePeriod: Duration
    private let handler: @Sendable (AsyncSocket, SocketAddress) async throws -> Void

    /// Creates a service that runs `server` with `handler`.
    /// - Parameters:
    ///   - server: the server to run; its listeners are already open, so its
    ///     ``SocketsAsync/SocketServer/localAddress`` is known before the group starts.
    ///   - gracePeriod: how long, from the start of graceful shutdown, the open connections
    ///     have to finish before their waiting reads and writes fail with
    ///     ``Sockets/SocketError/Reason/timedOut``.
    ///   - handler: serves one connection, as in ``SocketsAsync/SocketServer/run(_:)``.
    public init(
        server: SocketServer, gracePeriod: Duration = .seconds(10),
        handler: @escaping @Sendable (AsyncSocket, SocketAddress) async throws -> Void
    ) {
        self.server = server
        self.gracePeriod = gracePeriod
        self.handler = handler
    }

    /// Serves until graceful shutdown or cancellation, then returns once every handler has
    /// ended. It returns early, without an error, if the server stops by itself (every listener
    /// failed; the server's logger says why), which a `ServiceGroup` reports as the service
    /// finishing unexpectedly.
    public func run() async throws {
        let server = server
        let gracePeriod = gracePeriod
        // Cancellation needs no handler: it reaches the server's accept loops and connection
        // handlers as the cancellation of their tasks, which ends their waits at once.
        await withGracefulShutdownHandler {
            await server.run(handler)
        } onGracefulShutdown: {
            server.shutdown(gracePeriod: gracePeriod)
        }
        // Nothing is served any more: close the listeners, which neither cancellation nor a
        // server that stopped by itself has closed.
        server.shutdown(gracePeriod: .zero)
    }

    /// `SocketService(<address>)`: how a `ServiceGroup` names the service in its logs and errors.
    public var description: String { "SocketService(\(server.localAddress))" }
}
