// Only the README example's imports (and the test's own), so that its import list is checked too.
import Logging
import ServiceLifecycle
import SocketsAsync
import SocketsServiceLifecycle
import SocketsTestSupport
import Testing

@Suite(.noDescriptorLeaks(usesAsyncRuntime: true))
struct ReadmeExampleTests {
    /// The README's "Running under swift-service-lifecycle" example, on port 0, with the
    /// graceful shutdown triggered rather than signalled (this process runs other tests).
    @Test func serviceLifecycleExampleRunsAsWritten() async throws {
        let logger = Logger(label: "echo")
        let server = try SocketServer(on: .ipv4(.loopback, port: 0), logger: logger)
        let echo = SocketService(server: server, gracePeriod: .seconds(5)) { connection, _ in
            while case let bytes = try await connection.receive(maxLength: 4096), !bytes.isEmpty {
                try await connection.sendAll(bytes)
            }
        }
        let running = RunningGroup(echo)
        defer { running.cancel() }

        let client = try await AsyncSocket.connect(to: server.localAddress, timeout: .seconds(5))
        defer { try? client.close() }
        #expect(try await roundTrip(client, Array("hello".utf8)) == Array("hello".utf8))
        try client.shutdown(.write)
        #expect(try await client.receive(maxLength: 4, deadline: .now + .seconds(5)).isEmpty)
        await running.group.triggerGracefulShutdown()
        try await running.finish()
    }
}
