import Sockets
import Testing

@Suite(.noDescriptorLeaks())
struct SmokeTests {
    @Test func tcpEchoOverLoopback() throws {
        let listener = try Socket(.inet, .stream)
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen()
        let address = try listener.localAddress()
        #expect(address.port != 0)
        let client = try Socket(.inet, .stream)
        try client.connect(to: address)
        let (server, peer) = try listener.accept()
        #expect(peer == (try client.localAddress()))
        try client.sendAll("hello")
        #expect(try server.receive(maxLength: 100) == Array("hello".utf8))
        try client.close()
        #expect(try server.receive(maxLength: 100) == [])
    }

    @Test func leakDetectionSeesAnOpenSocket() throws {
        // The trait compares descriptor sets; make sure openDescriptors sees a new socket.
        let before = openDescriptors()
        let socket = try Socket(.inet, .datagram)
        #expect(openDescriptors().subtracting(before) == [socket.descriptor])
        try socket.close()
        #expect(openDescriptors() == before)
    }
}
