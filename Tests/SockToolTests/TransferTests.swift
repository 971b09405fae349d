import Foundation
import Testing

/// `sock connect` and `sock listen` against independent peers (python3, socat) over loopback
/// and Unix sockets.
@Suite(.noDescriptorLeaks())
struct TransferTests {
    @Test func connectCopiesOneMebibyteBothWaysByteExact() throws {
        let upload = randomBytes(1 << 20)
        let download = randomBytes(1 << 20)
        let uploadPath = temporaryPath("up")
        let downloadPath = temporaryPath("down")
        let receivedPath = temporaryPath("received")
        defer { [uploadPath, downloadPath, receivedPath].forEach(removeFile) }
        try writeFile(uploadPath, upload)
        try writeFile(downloadPath, download)
        let server = try python("""
            import socket, sys, threading
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); s.settimeout(20)
            print(s.getsockname()[1])
            c, _ = s.accept(); c.settimeout(20)
            got = bytearray()
            def reader():
                while True:
                    b = c.recv(65536)
                    if not b: break
                    got.extend(b)
            t = threading.Thread(target=reader); t.start()
            c.sendall(open(sys.argv[2], 'rb').read())
            c.shutdown(socket.SHUT_WR)
            t.join(20)
            open(sys.argv[1], 'wb').write(got)
            c.close()
            """, [receivedPath, downloadPath])
        let port = try firstLineNumber(server)
        let client = try sock("connect", "127.0.0.1", String(port), input: .file(uploadPath))
        #expect(client.wait() == 0, "stderr: \(client.errors.text)")
        #expect(server.wait() == 0, "python: \(server.errors.text)")
        #expect(client.output.data == download)
        #expect(try readFile(receivedPath) == upload)
    }

    @Test(.enabled(if: hasSocat, "socat is not installed (scripts/install-test-deps.sh installs it)"))
    func listenCopiesOneMebibyteBothWaysWithSocat() throws {
        let upload = randomBytes(1 << 20)
        let download = randomBytes(1 << 20)
        let uploadPath = temporaryPath("up")
        let downloadPath = temporaryPath("down")
        defer { [uploadPath, downloadPath].forEach(removeFile) }
        try writeFile(uploadPath, upload)
        try writeFile(downloadPath, download)
        let server = try sock("listen", "0", input: .file(downloadPath))
        let port = try listeningPort(server)
        let client = try Child("/usr/bin/socat", ["-t", "20", "-", "TCP:127.0.0.1:\(port)"], input: .file(uploadPath))
        #expect(client.wait() == 0, "socat: \(client.errors.text)")
        #expect(server.wait() == 0, "stderr: \(server.errors.text)")
        #expect(server.output.data == upload)
        #expect(client.output.data == download)
        #expect(server.errors.text.hasPrefix("listening on 127.0.0.1:"))
    }

    @Test func endOfInputIsAHalfCloseAndReadingGoesOn() throws {
        // The server answers only after it has read end-of-file.
        let server = try python("""
            import socket
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); s.settimeout(20)
            print(s.getsockname()[1])
            c, _ = s.accept(); c.settimeout(20)
            n = 0
            while True:
                b = c.recv(100)
                if not b: break
                n += len(b)
            c.sendall(b'got %d bytes\\n' % n)
            c.close()
            """)
        let port = try firstLineNumber(server)
        let client = try sock("connect", "127.0.0.1", String(port), input: .bytes(Array("abcdefg".utf8)))
        #expect(client.wait() == 0, "stderr: \(client.errors.text)")
        #expect(server.wait() == 0)
        #expect(client.output.text == "got 7 bytes\n")
    }

    @Test func connectOverIPv6() throws {
        let server = try python("""
            import socket
            s = socket.socket(socket.AF_INET6); s.bind(('::1', 0)); s.listen(1); s.settimeout(20)
            print(s.getsockname()[1])
            c, _ = s.accept(); c.settimeout(20)
            data = b''
            while True:
                b = c.recv(100)
                if not b: break
                data += b
            c.sendall(data[::-1]); c.close()
            """)
        let port = try firstLineNumber(server)
        let client = try sock("connect", "-6", "::1", String(port), input: .bytes(Array("stressed".utf8)))
        #expect(client.wait() == 0, "stderr: \(client.errors.text)")
        server.wait()
        #expect(client.output.text == "desserts")
    }

    @Test func progressReportsTheBytesMoved() throws {
        let server = try python("""
            import socket
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); s.settimeout(20)
            print(s.getsockname()[1])
            c, _ = s.accept(); c.settimeout(20)
            while c.recv(65536): pass
            c.sendall(b'x' * 2048); c.close()
            """)
        let port = try firstLineNumber(server)
        let client = try sock("connect", "--progress", "127.0.0.1", String(port), input: .bytes(randomBytes(1 << 20)))
        #expect(client.wait() == 0, "stderr: \(client.errors.text)")
        server.wait()
        #expect(client.output.data.count == 2048)
        #expect(client.errors.text.contains("sent 1.0 MiB, received 2.0 KiB"), "stderr: \(client.errors.text)")
    }

    @Test func udpConnectSendsAndPrintsTheReply() throws {
        let server = try python("""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0)); s.settimeout(20)
            print(s.getsockname()[1])
            d, a = s.recvfrom(2000)
            s.sendto(d.upper(), a)
            """)
        let port = try firstLineNumber(server)
        let client = try sock("connect", "-u", "-w", "2", "127.0.0.1", String(port), input: .bytes(Array("hello udp\n".utf8)))
        #expect(client.wait() == 0, "stderr: \(client.errors.text)")
        #expect(server.wait() == 0)
        #expect(client.output.text == "HELLO UDP\n")
    }

    @Test func udpListenPrintsAndEchoesEachDatagram() throws {
        let server = try sock("listen", "-u", "--echo", "0")
        let port = try listeningPort(server)
        let client = try python("""
            import socket, sys
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(10)
            replies = []
            for word in [b'one', b'two', b'three']:
                c.sendto(word, ('127.0.0.1', int(sys.argv[1])))
                replies.append(c.recvfrom(100)[0])
            print(b','.join(replies).decode())
            """, [String(port)])
        #expect(client.wait() == 0, "python: \(client.errors.text)")
        #expect(client.output.text == "one,two,three\n")
        server.stop()
        #expect(server.output.text == "onetwothree")
    }

    @Test func unixStreamListenAndConnect() throws {
        let path = temporaryPath("stream.sock")
        defer { removeFile(path) }
        let reply = randomBytes(200_000)
        let server = try sock("listen", "-U", path, input: .bytes(reply))
        _ = try listeningPort(server, unix: true)
        let client = try python("""
            import socket, sys
            c = socket.socket(socket.AF_UNIX); c.settimeout(20); c.connect(sys.argv[1])
            c.sendall(bytes(range(256)) * 400); c.shutdown(socket.SHUT_WR)
            got = bytearray()
            while True:
                b = c.recv(65536)
                if not b: break
                got.extend(b)
            sys.stdout.buffer.write(got)
            """, [path])
        #expect(client.wait() == 0, "python: \(client.errors.text)")
        #expect(server.wait() == 0, "stderr: \(server.errors.text)")
        #expect(client.output.data == reply)
        #expect(server.output.data == Array((0..<400).flatMap { _ in (0...255).map { UInt8($0) } }))
        #expect(!FileManager.default.fileExists(atPath: path), "the socket file was left behind")

        // And `connect -U` against a python server that echoes to end-of-file.
        let echo = try python("""
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); s.settimeout(20)
            print(0)
            c, _ = s.accept()
            data = b''
            while True:
                b = c.recv(65536)
                if not b: break
                data += b
            c.sendall(data); c.close()
            """, [path])
        _ = try firstLineNumber(echo)
        let message = randomBytes(100_000)
        let connect = try sock("connect", "-U", path, input: .bytes(message))
        #expect(connect.wait() == 0, "stderr: \(connect.errors.text)")
        echo.wait()
        #expect(connect.output.data == message)
    }

    @Test func unixDatagramListenAndConnect() throws {
        let path = temporaryPath("dgram.sock")
        let clientPath = temporaryPath("dgram-client.sock")
        defer { [path, clientPath].forEach(removeFile) }
        let server = try sock("listen", "-U", path, "-u", "--echo")
        _ = try listeningPort(server, unix: true)
        let client = try python("""
            import socket, sys
            c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); c.settimeout(10)
            c.bind(sys.argv[2]); c.connect(sys.argv[1])
            c.send(b'first'); a = c.recv(100)
            c.send(b'second'); b = c.recv(100)
            print(a.decode(), b.decode())
            """, [path, clientPath])
        #expect(client.wait() == 0, "python: \(client.errors.text)")
        #expect(client.output.text == "first second\n")
        server.stop()
        #expect(server.output.text == "firstsecond")
        #expect(!FileManager.default.fileExists(atPath: path))

        // `connect -U -u` autobinds a name, so the server can answer.
        let peer = try python("""
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(20)
            print(0)
            d, a = s.recvfrom(100)
            s.sendto(b'reply to ' + d, a)
            print(repr(a))
            """, [path])
        _ = try firstLineNumber(peer)
        let connect = try sock("connect", "-U", path, "-u", "-w", "2", input: .bytes(Array("dgram".utf8)))
        #expect(connect.wait() == 0, "stderr: \(connect.errors.text)")
        peer.wait()
        #expect(connect.output.text == "reply to dgram")
    }

    @Test func unixSequencedPacketsKeepTheirBoundaries() throws {
        let path = temporaryPath("seq.sock")
        defer { removeFile(path) }
        let server = try sock("listen", "-U", path, "--seqpacket", "--echo", "-k")
        _ = try listeningPort(server, unix: true)
        let client = try python("""
            import socket, sys
            c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); c.settimeout(10); c.connect(sys.argv[1])
            sizes = [1, 1000, 70000, 3]
            for n in sizes: c.send(bytes([n % 251]) * n)
            got = [c.recv(100000) for _ in sizes]
            print(','.join(str(len(g)) for g in got), all(g == bytes([n % 251]) * n for g, n in zip(got, sizes)))
            """, [path])
        #expect(client.wait() == 0, "python: \(client.errors.text)")
        #expect(client.output.text == "1,1000,70000,3 True\n")
        server.stop()
        #expect(!FileManager.default.fileExists(atPath: path))

        // `connect -U --seqpacket`: input goes as records, end-of-input as a shutdown.
        let peer = try python("""
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(sys.argv[1]); s.listen(1); s.settimeout(20)
            print(0)
            c, _ = s.accept(); c.settimeout(20)
            total = 0
            while True:
                b = c.recv(300000)
                if not b: break
                total += len(b)
            c.send(b'total %d' % total); c.close()
            """, [path])
        _ = try firstLineNumber(peer)
        let connect = try sock("connect", "-U", path, "--seqpacket", input: .bytes(randomBytes(123_456)))
        #expect(connect.wait() == 0, "stderr: \(connect.errors.text)")
        peer.wait()
        #expect(connect.output.text == "total 123456")
    }

    @Test func unixListenerRemovesItsFileOnInterruptAndRefusesNonSockets() throws {
        let path = temporaryPath("owned.sock")
        defer { removeFile(path) }
        let server = try sock("listen", "-U", path, input: .pipe)
        _ = try listeningPort(server, unix: true)
        let status = try FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType
        #expect(status == .typeSocket)
        #expect(server.stop(SIGTERM) == 128 + SIGTERM)
        #expect(!FileManager.default.fileExists(atPath: path), "SIGTERM left the socket file behind")

        // A regular file in the way is never removed.
        try writeFile(path, Array("precious".utf8))
        let refused = try sock("listen", "-U", path)
        #expect(refused.wait() == 1)
        #expect(refused.errors.text.hasPrefix("sock: bind(\(path)): the path exists and is not a socket"))
        #expect(try readFile(path) == Array("precious".utf8))
    }

    @Test func echoServesFiftyConcurrentClients() throws {
        let server = try sock("listen", "-k", "--echo", "0")
        let port = try listeningPort(server)
        let clients = try python("""
            import os, socket, sys, threading
            port = int(sys.argv[1])
            barrier = threading.Barrier(50, timeout=20)
            results = []
            lock = threading.Lock()
            def client():
                payload = os.urandom(50000)
                c = socket.create_connection(('127.0.0.1', port), timeout=20)
                barrier.wait()   # all 50 connected before any sends
                c.sendall(payload); c.shutdown(socket.SHUT_WR)
                got = bytearray()
                while True:
                    b = c.recv(65536)
                    if not b: break
                    got.extend(b)
                c.close()
                with lock: results.append(bytes(got) == payload)
            threads = [threading.Thread(target=client) for _ in range(50)]
            for t in threads: t.start()
            for t in threads: t.join(30)
            print(sum(results), len(results))
            """, [String(port)])
        #expect(clients.wait(timeout: 60) == 0, "python: \(clients.errors.text)")
        #expect(clients.output.text == "50 50\n")
        server.stop()
    }

    @Test func brokerRelaysBetweenThreeClients() throws {
        let server = try sock("listen", "--broker", "-v", "0")
        let port = try listeningPort(server)
        let clients = try python("""
            import json, socket, sys
            port = int(sys.argv[1])
            cs = [socket.create_connection(('127.0.0.1', port), timeout=10) for _ in range(3)]
            print('connected')
            sys.stdin.readline()   # until the broker has all three
            def line(c):
                data = b''
                while not data.endswith(b'\\n'): data += c.recv(100)
                return data.decode()
            cs[0].sendall(b'hello from A\\n')
            b1, c1 = line(cs[1]), line(cs[2])
            cs[1].sendall(b'B here\\n')
            a2, c2 = line(cs[0]), line(cs[2])
            cs[0].settimeout(0.3)
            try: extra = cs[0].recv(100).decode()
            except socket.timeout: extra = ''
            print(json.dumps([b1, c1, a2, c2, extra]))
            """, [String(port)], input: .pipe)
        #expect(clients.output.wait(timeout: 20) { $0.contains("connected") })
        #expect(server.errors.wait(timeout: 20) { $0.components(separatedBy: "connection from").count == 4 }, "stderr: \(server.errors.text)")
        try clients.write("go\n")
        clients.closeInput()
        #expect(clients.wait() == 0, "python: \(clients.errors.text)")
        let lines = clients.output.text.split(separator: "\n")
        #expect(lines.last == #"["hello from A\n", "hello from A\n", "B here\n", "B here\n", ""]"#)
        server.stop()
    }

    @Test func keepListeningSendsClientsBytesToStandardOutput() throws {
        let server = try sock("listen", "-k", "-v", "0")
        let port = try listeningPort(server)
        for name in ["first", "second"] {
            let client = try python("""
                import socket, sys
                c = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
                c.sendall(sys.argv[2].encode()); c.close()
                """, [String(port), name])
            #expect(client.wait() == 0)
            #expect(server.output.wait(timeout: 20) { $0.contains(name) })
        }
        server.stop()
        #expect(server.output.text == "firstsecond")
    }
}

/// Waits for a Unix listener's `listening on PATH` line.
func listeningPort(_ child: Child, unix: Bool) throws -> String {
    let found = child.errors.wait(timeout: 20) { $0.contains("listening on ") && $0.contains("\n") }
    try #require(found, "no `listening on` line; stderr: \(child.errors.text)")
    return child.errors.text
}
