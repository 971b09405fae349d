import Sockets
import Testing

/// The README's examples, compiled and run, so that the documentation cannot drift from the API.
@Suite(.noDescriptorLeaks())
struct ReadmeTests {
    @Test func theTourRunsAsWritten() throws {
        let listener = try Socket(.inet, .stream)
        try listener.set(.reuseAddress, true)
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen()
        let address = try listener.localAddress()

        let client = try Socket(.inet, .stream)
        try client.connect(to: address, timeout: .seconds(2))
        let (connection, peer) = try listener.accept()
        try client.sendAll("hello")
        let bytes = try connection.receive(maxLength: 4096)
        #expect(bytes == Array("hello".utf8))
        #expect(peer == (try client.localAddress()))

        #expect(try SocketAddress("[fe80::1%lo]:8080").description == "[fe80::1%lo]:8080")
        #expect(try SocketAddress("/run/app.sock").description == "/run/app.sock")
        #expect(try SocketAddress("@my-service").description == "@my-service")
    }

    @Test func refusedConnectReadsAsDocumented() throws {
        // Port 9 (discard) has no listener here; find a closed port rather than assume it.
        let probe = try Socket(.inet, .stream)
        try probe.bind(to: .ipv4(.loopback, port: 0))
        let closed = try probe.localAddress()
        try probe.close()
        let error = #expect(throws: SocketError.self) { try Socket(.inet, .stream).connect(to: closed) }
        #expect(error?.description == "connect(\(closed)): Connection refused (ECONNREFUSED)")
    }

    @Test func aFamilyLinuxLacksIsAClearError() throws {
        let error = #expect(throws: SocketError.self) { try Socket(SocketDomain(rawValue: 4242), .stream) }
        #expect(error?.errno == .addressFamilyNotSupported)
        #expect(error?.description == "socket(family 4242, SOCK_STREAM, 0): Address family not supported by protocol (EAFNOSUPPORT)")
    }
}
