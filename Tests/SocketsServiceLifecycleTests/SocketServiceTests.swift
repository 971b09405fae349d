import Glibc
import InMemoryLogging
import Logging
import ServiceLifecycle
import Sockets
import SocketsAsync
import SocketsServiceLifecycle
import SocketsTestSupport
import Testing

/// SocketService under a real ServiceGroup, with real loopback clients: graceful shutdown,
/// cancellation, and the errors that reach the server's logger.
@Suite(.noDescriptorLeaks(usesAsyncRuntime: true))
struct SocketServiceTests {
    /// A grace period no test waits out: a test that ends at all has not waited for it (the
    /// suite's time limit is a minute).
    static let longGrace = Duration.seconds(3600)

    @Test func gracefulShutdownLetsOpenConnectionsFinishThenTheGroupReturns() async throws {
        try await withLoop { loop in
            let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop])
            let service = SocketService(server: server, gracePeriod: Self.longGrace) { connection, _ in
                try await echoStream(connection)
            }
            let running = RunningGroup(service)
            defer { running.cancel() }

            let first = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(5), loop: loop)
            let second = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(5), loop: loop)
            defer { try? first.close(); try? second.close() }
            #expect(try await roundTrip(first, [1, 2, 3]) == [1, 2, 3])
            #expect(try await roundTrip(second, [4]) == [4])

            await running.group.triggerGracefulShutdown()
            try await waitUntil("the listeners closed") { server.listeners.allSatisfy(\.isClosed) }
            await #expect(throws: SocketError.self) {
                let late = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(2), loop: loop)
                try late.close()
            }
            // Both connections are still served during the grace period.
            #expect(try await roundTrip(first, [5, 6]) == [5, 6])
            #expect(try await roundTrip(second, [7]) == [7])
            for client in [first, second] {
                try client.shutdown(.write)
                #expect(try await client.receive(maxLength: 4, deadline: .now + .seconds(5)).isEmpty)
            }
            // With both handlers done, the group returns long before the grace period ends.
            try await running.finish()
            #expect(server.connectionCount == 0)
        }
    }

    @Test func aConnectionStillOpenWhenTheGracePeriodEndsIsClosed() async throws {
        try await withLoop { loop in
            let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop])
            let outcomes = LockedValue<[String]>([])
            let service = SocketService(server: server, gracePeriod: .milliseconds(300)) { connection, _ in
                do {
                    try await echoStream(connection)
                    outcomes.withLock { $0.append("finished") }
                } catch {
                    outcomes.withLock { $0.append((error as? SocketError)?.reason == .timedOut ? "timed out" : "\(error)") }
                }
            }
            let running = RunningGroup(service)
            defer { running.cancel() }

            let silent = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(5), loop: loop)
            defer { try? silent.close() }
            #expect(try await roundTrip(silent, [1]) == [1])
            await running.group.triggerGracefulShutdown()
            try await running.finish()

            #expect(outcomes.withLock { $0 } == ["timed out"])
            #expect(server.connectionCount == 0)
            // The server closed it: the client reads end-of-file.
            #expect(try await silent.receive(maxLength: 4, deadline: .now + .seconds(5)).isEmpty)
        }
    }

    @Test func cancellingTheGroupStopsTheServerWithoutWaitingForTheGracePeriod() async throws {
        try await withLoop { loop in
            let capture = LogCapture()
            let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop], logger: capture.logger)
            let service = SocketService(server: server, gracePeriod: Self.longGrace) { connection, _ in
                try await echoStream(connection)
            }
            let running = RunningGroup(service)
            defer { running.cancel() }

            let client = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(5), loop: loop)
            defer { try? client.close() }
            #expect(try await roundTrip(client, [1, 2]) == [1, 2])
            running.cancel()
            _ = try? await running.finish()

            #expect(server.listeners.filter { !$0.isClosed }.isEmpty)
            #expect(server.connectionCount == 0)
            #expect(try await client.receive(maxLength: 4, deadline: .now + .seconds(5)).isEmpty)
            // Stopping is not a failure of the handler.
            #expect(capture.entries.isEmpty, "\(capture.entries)")
        }
    }

    @Test func aHandlerErrorIsLoggedWithThePeerAndTheError() async throws {
        try await withLoop { loop in
            let capture = LogCapture()
            let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop], logger: capture.logger)
            let thrown = LockedValue<[SocketError]>([])
            let service = SocketService(server: server, gracePeriod: .seconds(5)) { connection, _ in
                do throws(SocketError) {
                    _ = try await connection.receive(maxLength: 16)
                } catch {
                    thrown.withLock { $0.append(error) }
                    throw error
                }
            }
            let running = RunningGroup(service)
            defer { running.cancel() }

            let client = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(5), loop: loop)
            let peer = try client.localAddress()
            try await waitUntil("the connection accepted") { server.connectionCount == 1 }
            // A zero linger time makes close send a reset: the handler's receive fails.
            try client.socket.set(.linger, .zero)
            try client.close()
            try await waitUntil("the handler's error logged") { !capture.entries.isEmpty }

            let error = try #require(thrown.withLock { $0.first })
            #expect(error.errno == .connectionReset)
            let entry = try #require(capture.entries.first)
            #expect(entry.level == .debug)
            #expect(entry.message.description == "connection from \(peer) failed: \(error)")
            #expect(entry.message.description.hasSuffix("Connection reset by peer (ECONNRESET)"))
            #expect(entry.metadata["connection.peer"] == "\(peer)")

            await running.group.triggerGracefulShutdown()
            try await running.finish()
            #expect(capture.entries.count == 1, "\(capture.entries)")
        }
    }

    /// A listener that stops listening (`shutdown(SHUT_RD)` on it) makes `accept` fail with
    /// `EINVAL`: that listener is done, the error is logged once at `error`, and the service
    /// ends, which its group reports.
    @Test func anAcceptErrorThatStopsTheServerIsLoggedAndEndsTheService() async throws {
        try await withLoop { loop in
            let capture = LogCapture()
            let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop], logger: capture.logger)
            let service = SocketService(server: server) { connection, _ in try await echoStream(connection) }
            let running = RunningGroup(service)
            defer { running.cancel() }

            let client = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(5), loop: loop)
            #expect(try await roundTrip(client, [9]) == [9])
            try client.close()
            try #require(server.listeners.count == 1)
            try server.listeners[0].shutdown(.read)

            await #expect(throws: ServiceGroupError.serviceFinishedUnexpectedly(service: "\(service)")) {
                try await running.finish()
            }
            #expect(server.listeners.filter { !$0.isClosed }.isEmpty, "the service closes what the server left open")
            let entries = capture.entries
            #expect(entries.count == 1, "\(entries)")
            let entry = try #require(entries.first)
            #expect(entry.level == .error)
            #expect(entry.message.description
                == "accept on \(server.localAddress) failed, no longer accepting there: accept: Invalid argument (EINVAL)")
            #expect(entry.metadata["listener.address"] == "\(server.localAddress)")
        }
    }

    @Test func withoutALoggerAFailedHandlerChangesNothingElse() async throws {
        try await withLoop { loop in
            let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop])
            let failures = LockedValue(0)
            let service = SocketService(server: server, gracePeriod: .seconds(5)) { connection, _ in
                do {
                    try await echoStream(connection)
                } catch {
                    failures.withLock { $0 += 1 }
                    throw error
                }
            }
            let running = RunningGroup(service)
            defer { running.cancel() }

            let resetting = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(5), loop: loop)
            #expect(try await roundTrip(resetting, [1]) == [1])
            try resetting.socket.set(.linger, .zero)
            try resetting.close()
            try await waitUntil("the handler failed") { failures.withLock { $0 } == 1 }

            let next = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(5), loop: loop)
            defer { try? next.close() }
            #expect(try await roundTrip(next, [2, 3]) == [2, 3])
            try next.shutdown(.write)
            #expect(try await next.receive(maxLength: 4, deadline: .now + .seconds(5)).isEmpty)
            await running.group.triggerGracefulShutdown()
            try await running.finish()
            #expect(server.connectionCount == 0)
        }
    }

    /// A real `SIGTERM`, in a process of its own (the test binary again, running only this
    /// test): the group traps it, and an open connection finishes before the group returns.
    /// Were the signal not trapped, it would kill the child and fail the test.
    @Test func sigtermShutsTheServiceDownGracefully() async throws {
        guard FreshProcess.isChild else {
            return try FreshProcess.run("SocketServiceTests/sigtermShutsTheServiceDownGracefully")
        }
        let server = try SocketServer(on: .ipv4(.loopback, port: 0))
        let service = SocketService(server: server, gracePeriod: Self.longGrace) { connection, _ in
            try await echoStream(connection)
        }
        let running = RunningGroup(ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm], logger: quietLogger))
        defer { running.cancel() }

        // Served means running, and the group traps its signals before it starts a service.
        let client = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(5))
        defer { try? client.close() }
        #expect(try await roundTrip(client, [1]) == [1])
        #expect(kill(getpid(), SIGTERM) == 0)
        try await waitUntil("the listeners closed") { server.listeners.allSatisfy(\.isClosed) }
        #expect(try await roundTrip(client, [2]) == [2])
        try client.shutdown(.write)
        #expect(try await client.receive(maxLength: 4, deadline: .now + .seconds(5)).isEmpty)
        try await running.finish()
        // The group's signal source closes its signalfd on a Dispatch thread just after the
        // group has returned: wait for that, or the leak check may see it still open.
        try await waitUntil("Dispatch to close its signalfd") {
            !openDescriptors().contains { descriptorTarget($0) == "anon_inode:[signalfd]" }
        }
    }
}

/// A ServiceGroup running in a task of its own, so that the test can be a client meanwhile.
struct RunningGroup {
    let group: ServiceGroup
    private let task: Task<Void, any Error>

    init(_ group: ServiceGroup) {
        self.group = group
        task = Task { try await group.run() }
    }

    /// A group of `service` alone, trapping no signal (this process runs other tests).
    init(_ service: SocketService) {
        self.init(ServiceGroup(services: [service], logger: quietLogger))
    }

    /// Waits for the group to return. Cancelling the waiting test (its time limit) cancels
    /// the group: a service that does not stop fails the test rather than hanging the run.
    func finish() async throws {
        let task = task
        try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    /// Cancels the group (a test that failed early leaves nothing running).
    func cancel() { task.cancel() }
}

/// The ServiceGroup's own logger: its debug lines are not what these tests check.
let quietLogger = Logger(label: "service-group") { _ in SwiftLogNoOpLogHandler() }

/// A logger that keeps every record, at every level, in memory.
struct LogCapture {
    private let handler: InMemoryLogHandler

    init() {
        var handler = InMemoryLogHandler()
        handler.logLevel = .trace
        self.handler = handler
    }

    var logger: Logger {
        let handler = handler
        return Logger(label: "sockets-test") { _ in handler }
    }

    var entries: [InMemoryLogHandler.Entry] { handler.entries }
}

/// Polls `condition` every 10 ms for up to 10 s; throws naming what never happened.
func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() {
        guard ContinuousClock.now < deadline else { throw CommandFailure("waited 10 s for \(what)") }
        try await Task.sleep(for: .milliseconds(10))
    }
}
