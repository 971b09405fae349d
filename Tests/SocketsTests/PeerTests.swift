import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Testing

/// Our sockets against independent implementations: python3's `socket` module, OpenBSD
/// netcat and socat, each run as a child process. Every child has its own time limits (python's
/// `settimeout`, `nc -w`), and every wait here is bounded too.
@Suite(.noDescriptorLeaks())
struct PeerTests {
    @Test func pythonTCPServer() throws {
        let python = try ChildProcess(python: """
        import socket
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(('127.0.0.1', 0))
        server.listen(1)
        server.settimeout(10)
        print(server.getsockname()[1], flush=True)
        connection, peer = server.accept()
        connection.settimeout(10)
        data = b''
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
        print(peer[0], peer[1], len(data), flush=True)
        connection.sendall(data[::-1])
        connection.close()
        """)
        let port = try #require(UInt16(try python.readLine()))
        let client = try Socket(.inet, .stream)
        try CoreTest.setTimeouts(client)
        try client.connect(to: SocketAddress(host: "127.0.0.1", port: port))
        let payload = CoreTest.pattern(300_000, seed: 11)
        try client.sendAll(payload)
        try client.shutdown(.write)
        let reply = try client.receive(exactly: payload.count + 1)
        #expect(CoreTest.same(reply, payload.reversed()), "python got every byte, in order")
        let local = try client.localAddress()
        #expect(try python.readLine() == "127.0.0.1 \(local.port ?? 0) \(payload.count)", "python saw our address")
        #expect(try python.wait() == 0)
    }

    @Test(arguments: [SocketDomain.inet, .inet6])
    func pythonTCPClient(domain: SocketDomain) throws {
        let listener = try Socket(domain, .stream)
        try listener.bind(to: domain == .inet ? .ipv4(.loopback, port: 0) : .ipv6(.loopback, port: 0))
        try listener.listen()
        try CoreTest.setTimeouts(listener)
        let address = try listener.localAddress()
        let host = domain == .inet ? "127.0.0.1" : "::1"
        let python = try ChildProcess(python: """
        import socket, sys
        family = socket.AF_INET if sys.argv[1] == 'inet' else socket.AF_INET6
        client = socket.socket(family, socket.SOCK_STREAM)
        client.settimeout(10)
        client.connect((sys.argv[2], int(sys.argv[3])))
        print(client.getsockname()[1], flush=True)
        client.sendall(b'hello from python')
        client.shutdown(socket.SHUT_WR)
        reply = b''
        while True:
            chunk = client.recv(100)
            if not chunk:
                break
            reply += chunk
        print(reply.decode(), flush=True)
        """, [domain == .inet ? "inet" : "inet6", host, String(address.port ?? 0)])
        let (connection, peer) = try listener.accept()
        try CoreTest.setTimeouts(connection)
        let pythonPort = try python.readLine()
        #expect(String(peer.port ?? 0) == pythonPort)
        #expect(peer.ipAddress?.description == host)
        #expect(try connection.receive(exactly: 100) == Array("hello from python".utf8))
        try connection.sendAll("hello from swift")
        try connection.close()
        #expect(try python.readLine() == "hello from swift")
        #expect(try python.wait() == 0)
    }

    @Test func pythonUDPPeer() throws {
        let python = try ChildProcess(python: """
        import socket
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(('127.0.0.1', 0))
        peer.settimeout(10)
        print(peer.getsockname()[1], flush=True)
        for _ in range(3):
            data, sender = peer.recvfrom(65536)
            peer.sendto(('%s:%d %d' % (sender[0], sender[1], len(data))).encode(), sender)
        """)
        let port = try #require(UInt16(try python.readLine()))
        let socket = try Socket(.inet, .datagram)
        try socket.bind(to: .ipv4(.loopback, port: 0))
        try CoreTest.setTimeouts(socket)
        let target = try SocketAddress(host: "127.0.0.1", port: port)
        let local = try socket.localAddress()
        for size in [0, 1, 1200] {
            #expect(try socket.send([UInt8](repeating: 0x5A, count: size), to: target) == size)
            let datagram = try socket.receiveDatagram(maxLength: 200)
            let reply = datagram.bytes
            let from = datagram.sender
            #expect(String(decoding: reply, as: UTF8.self) == "\(local) \(size)", "one datagram each, boundaries kept")
            #expect(from == target)
        }
        #expect(try python.wait() == 0)
    }

    @Test func pythonUnixPeers() throws {
        let serverPath = CoreTest.unixPath("py-server")
        let datagramPath = CoreTest.unixPath("py-dgram")
        let ourPath = CoreTest.unixPath("our-dgram")
        defer { for path in [serverPath, datagramPath, ourPath] { CoreTest.remove(path) } }
        let python = try ChildProcess(python: """
        import socket, sys
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(sys.argv[1])
        server.listen(1)
        server.settimeout(10)
        dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dgram.bind(sys.argv[2])
        dgram.settimeout(10)
        print('ready', flush=True)
        connection, _ = server.accept()
        connection.settimeout(10)
        connection.sendall(connection.recv(100).upper())
        connection.close()
        data, sender = dgram.recvfrom(100)
        dgram.sendto(data + b' from ' + sender.encode(), sender)
        """, [serverPath, datagramPath])
        #expect(try python.readLine() == "ready")

        let stream = try Socket(.unix, .stream)
        try CoreTest.setTimeouts(stream)
        try stream.connect(to: .unix(path: serverPath))
        try stream.sendAll("shout")
        #expect(try stream.receive(exactly: 100) == Array("SHOUT".utf8))

        let datagram = try Socket(.unix, .datagram)
        try datagram.bind(to: .unix(path: ourPath))
        try CoreTest.setTimeouts(datagram)
        _ = try datagram.send(Array("hi".utf8), to: .unix(path: datagramPath))
        let received = try datagram.receiveDatagram(maxLength: 300)
        let reply = received.bytes
        let from = received.sender
        #expect(String(decoding: reply, as: UTF8.self) == "hi from \(ourPath)")
        #expect(from == (try .unix(path: datagramPath)))
        #expect(try python.wait() == 0)
    }

    @Test func netcatClient() throws {
        let (listener, address) = try CoreTest.tcpListener()
        let port = String(address.port ?? 0)
        // -N: shut the socket down after end-of-file on stdin; -w: time limit.
        let nc = try ChildProcess(["nc", "-N", "-w", "10", "127.0.0.1", port])
        let request = CoreTest.pattern(100_000, seed: 5)
        try nc.write(request)
        nc.closeInput()
        let (connection, peer) = try listener.accept()
        try CoreTest.setTimeouts(connection)
        #expect(peer.ipAddress == .v4(.loopback))
        let received = try connection.receive(exactly: request.count + 1)
        #expect(CoreTest.same(received, request), "netcat's bytes arrive exactly, then end-of-file")
        try connection.sendAll("answer from swift\n")
        try connection.close()
        #expect(String(decoding: nc.readToEnd(), as: UTF8.self) == "answer from swift\n")
        #expect(try nc.wait() == 0)
    }

    @Test func netcatUDPServer() throws {
        // nc -u -l takes the first datagram's sender as its peer and prints what it receives.
        let probe = try Socket(.inet, .datagram)
        try probe.bind(to: .ipv4(.loopback, port: 0))
        let port = try probe.localAddress().port ?? 0
        try probe.close()
        let nc = try ChildProcess(["nc", "-u", "-l", "-W", "1", "127.0.0.1", String(port)])
        let socket = try Socket(.inet, .datagram)
        let target = SocketAddress.ipv4(.loopback, port: port)
        // nc may not be listening yet: resend until it has printed the datagram.
        var output: [UInt8] = []
        for _ in 0..<100 {
            _ = try socket.send(Array("datagram\n".utf8), to: target)
            output = nc.readToEnd(milliseconds: 50)
            if !output.isEmpty { break }
        }
        #expect(String(decoding: output, as: UTF8.self).hasPrefix("datagram\n"))
        try nc.wait(milliseconds: 5_000)
    }

    @Test func socatOverUnixAndUDP() throws {
        let path = CoreTest.unixPath("socat")
        defer { CoreTest.remove(path) }
        let listener = try Socket(.unix, .stream)
        try listener.bind(to: .unix(path: path))
        try listener.listen()
        try CoreTest.setTimeouts(listener)
        let socat = try ChildProcess(["socat", "-T", "10", "-", "UNIX-CONNECT:\(path)"])
        try socat.write(Array("through socat".utf8))
        socat.closeInput()
        let (connection, _) = try listener.accept()
        try CoreTest.setTimeouts(connection)
        #expect(try connection.receive(exactly: 100) == Array("through socat".utf8))
        try connection.sendAll("back")
        try connection.close()
        #expect(String(decoding: socat.readToEnd(), as: UTF8.self) == "back")
        #expect(try socat.wait() == 0)

        let receiver = try Socket(.inet, .datagram)
        try receiver.bind(to: .ipv4(.loopback, port: 0))
        try CoreTest.setTimeouts(receiver)
        let port = try receiver.localAddress().port ?? 0
        let sender = try ChildProcess(["socat", "-u", "-", "UDP-SENDTO:127.0.0.1:\(port)"])
        try sender.write(Array("one datagram".utf8))
        sender.closeInput()
        let datagram = try receiver.receiveDatagram(maxLength: 100)
        let bytes = datagram.bytes
        let from = datagram.sender
        #expect(bytes == Array("one datagram".utf8))
        #expect(from?.ipAddress == .v4(.loopback))
        #expect(try sender.wait() == 0)
    }
}
