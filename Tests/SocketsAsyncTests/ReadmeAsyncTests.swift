import Sockets
import SocketsAsync
import Testing

/// The README's async example, run as written (on a loop of its own and a free port instead of
/// the shared loop and 8080), so that the documentation cannot drift from the API.
@Suite(.noDescriptorLeaks(usesAsyncRuntime: true))
struct ReadmeAsyncTests {
    @Test func theServerExampleEchoesAndShutsDown() async throws {
        try await withLoop { loop in
            let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop])
            let serving = Task { await server.run { connection, peer in
                var buffer: [UInt8] = []
                buffer.reserveCapacity(4096)
                while try await connection.receive(appendingTo: &buffer, maxLength: 4096) > 0 {
                    try await connection.sendAll(buffer.span.bytes)
                    buffer.removeAll(keepingCapacity: true)
                }
            } }

            let port = try #require(server.localAddress.port)
            let client = try await AsyncSocket.connect(host: "localhost", port: port, loop: loop)
            try await client.sendAll("hello")
            let reply = try await client.receive(exactly: 5, deadline: .now + .seconds(2))
            #expect(reply == Array("hello".utf8))
            try client.close()
            server.shutdown(gracePeriod: .seconds(5))
            await serving.value
            #expect(server.connectionCount == 0)
        }
    }
}
