import Foundation
import Glibc
import Testing

/// `sock connect --file` (sendfile), `--send-fd` / `sock listen --receive-fd` (SCM_RIGHTS),
/// multicast between sockets in a network namespace, and `listen -k` sending standard input
/// to every client.
@Suite(.noDescriptorLeaks())
struct AdvancedIOTests {
    // MARK: --file

    @Test func fileOfFiveMebibytesArrivesByteExactOverTCP() throws {
        let source = temporaryPath("five.bin")
        let received = temporaryPath("five-received.bin")
        defer {
            removeFile(source)
            removeFile(received)
        }
        let bytes = randomBytes(5 << 20)
        try writeFile(source, bytes)
        // An independent peer stores what arrives and replies after end-of-file, so the reply
        // also shows that sock half-closed (and went on reading) once the file was sent.
        let peer = try python("""
            import socket, sys
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); s.settimeout(20)
            print(s.getsockname()[1])
            c, _ = s.accept(); c.settimeout(20)
            data = bytearray()
            while True:
                b = c.recv(1 << 20)
                if not b: break
                data.extend(b)
            open(sys.argv[1], 'wb').write(data)
            c.sendall(b'received %d' % len(data)); c.close()
            """, [received])
        let port = try firstLineNumber(peer)
        // Standard input is ignored with --file: it must not be sent.
        let client = try sock("connect", "--file", source, "127.0.0.1", String(port), input: .bytes(Array("stdin".utf8)))
        #expect(client.wait() == 0, "stderr: \(client.errors.text)")
        #expect(peer.wait() == 0, "python: \(peer.errors.text)")
        #expect(client.output.text == "received \(bytes.count)")
        #expect(try readFile(received) == bytes)
    }

    @Test func fileOverAUnixStreamSocketWithProgress() throws {
        let source = temporaryPath("unix-file.bin")
        let path = temporaryPath("file.sock")
        defer {
            removeFile(source)
            removeFile(path)
        }
        let bytes = randomBytes(1 << 20)
        try writeFile(source, bytes)
        let server = try sock("listen", "-U", path)
        _ = try listeningPort(server, unix: true)
        let client = try sock("connect", "-U", path, "--file", source, "--progress")
        #expect(client.wait() == 0, "stderr: \(client.errors.text)")
        #expect(server.wait() == 0, "stderr: \(server.errors.text)")
        #expect(server.output.data == bytes)
        #expect(client.errors.text.contains("sock: sent 1.0 MiB, received 0 B in "), "stderr: \(client.errors.text)")
    }

    // MARK: Descriptor passing

    @Test func sentDescriptorIsReadByAnIndependentReceiver() throws {
        let path = temporaryPath("fd-python.sock")
        let file = temporaryPath("passed.bin")
        defer {
            removeFile(path)
            removeFile(file)
        }
        let bytes = randomBytes(200_000)
        try writeFile(file, bytes)
        // Python takes the descriptor, unlinks the file (so only the descriptor can reach the
        // bytes), reads them through it, and answers with what it saw.
        let receiver = try python("""
            import hashlib, os, socket, sys
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); s.settimeout(20)
            print(0)
            c, _ = s.accept(); c.settimeout(20)
            msg, fds, flags, _ = socket.recv_fds(c, 1024, 4)
            os.unlink(sys.argv[2])
            data = b''
            while True:
                b = os.read(fds[0], 65536)
                if not b: break
                data += b
            for fd in fds: os.close(fd)
            rest = c.recv(100)
            c.sendall(b'%s %d %s %d' % (msg, len(fds), hashlib.sha256(data).hexdigest().encode(), len(rest)))
            c.close()
            """, [path, file])
        _ = try firstLineNumber(receiver)
        let client = try sock("connect", "-U", path, "--send-fd", file)
        #expect(client.wait() == 0, "stderr: \(client.errors.text)")
        #expect(receiver.wait() == 0, "python: \(receiver.errors.text)")
        let digest = try sha256(bytes)
        // The label is the file's name; one descriptor; nothing after it (a half-close).
        #expect(client.output.text == "\(file) 1 \(digest) 0")
    }

    @Test func receiverCopiesWhatPassedDescriptorsRead() throws {
        let path = temporaryPath("fd-sock.sock")
        let file = temporaryPath("passed-file.bin")
        defer {
            removeFile(path)
            removeFile(file)
        }
        let fileBytes = randomBytes(300_000)
        try writeFile(file, fileBytes)
        let server = try sock("listen", "-U", path, "--receive-fd", "-k", "-v")
        _ = try listeningPort(server, unix: true)

        // 1. A regular file, passed by sock.
        let first = try sock("connect", "-U", path, "--send-fd", file)
        #expect(first.wait() == 0, "stderr: \(first.errors.text)")
        #expect(server.output.wait(timeout: 20) { $0.utf8.count >= fileBytes.count })
        #expect(server.errors.text.contains(
            "sock: received descriptor \"\(file)\": regular file \(file), \(fileBytes.count) bytes, opened read-only\n"),
            "stderr: \(server.errors.text)")

        // 2. sock's standard input, an anonymous pipe: only the descriptor leads to it.
        let pipeBytes = randomBytes(150_000)
        let second = try sock("connect", "-U", path, "--send-fd", "-", input: .bytes(pipeBytes))
        #expect(second.wait() == 0, "stderr: \(second.errors.text)")

        // 3. A pipe passed by python, written to only after it was passed.
        let sender = try python("""
            import os, socket, sys
            r, w = os.pipe()
            c = socket.socket(socket.AF_UNIX); c.settimeout(20); c.connect(sys.argv[1])
            socket.send_fds(c, [b'late writer'], [r]); os.close(r)
            os.write(w, b'written after passing\\n'); os.close(w)
            c.close()
            """, [path])
        #expect(sender.wait() == 0, "python: \(sender.errors.text)")
        let expected = fileBytes + pipeBytes + Array("written after passing\n".utf8)
        #expect(server.output.wait(timeout: 20) { $0.utf8.count >= expected.count })
        server.stop()
        #expect(server.output.data == expected)
        let errors = server.errors.text
        #expect(errors.contains("sock: received descriptor \"standard input\": pipe pipe:["), "stderr: \(errors)")
        #expect(errors.contains("sock: received descriptor \"late writer\": pipe pipe:["), "stderr: \(errors)")
        #expect(errors.contains("sock: read \(pipeBytes.count) bytes from \"standard input\""), "stderr: \(errors)")
    }

    // MARK: Multicast

    @Test(.requires(.networkNamespaces))
    func listenerJoinedToAGroupReceivesWhatIsSentToIt() throws {
        let namespace = try ToolNamespace()
        defer { namespace.delete() }
        // Loopback has no MULTICAST flag here: a veth pair inside the namespace does.
        try namespace.ip("link", "add", "mcA", "type", "veth", "peer", "name", "mcB")
        try namespace.ip("addr", "add", "10.77.0.1/30", "dev", "mcA")
        try namespace.ip("-6", "addr", "add", "fd77::1/64", "dev", "mcA", "nodad")
        try namespace.ip("link", "set", "mcA", "up")
        try namespace.ip("link", "set", "mcB", "up")

        // IPv4: joined by the interface's address; a datagram to another group, sent first,
        // must not show up (IP_MULTICAST_ALL is off), the group's must.
        let v4 = try namespace.sock("listen", "-u", "-v", "--multicast", "239.77.2.1", "--interface", "10.77.0.1", "0")
        let v4Port = String(try listeningPort(v4))
        #expect(v4.errors.text.contains("sock: joined 239.77.2.1 on 10.77.0.1\n"))
        for (group, text) in [("239.77.2.2", "other group\n"), ("239.77.2.1", "hello group\n")] {
            let sender = try namespace.sock(
                "connect", "-u", "-w", "0.2", "--multicast-interface", "10.77.0.1", "--multicast-ttl", "1", group, v4Port,
                input: .bytes(Array(text.utf8)))
            #expect(sender.wait() == 0, "stderr: \(sender.errors.text)")
        }
        #expect(v4.output.wait(timeout: 10) { $0.contains("hello group") }, "stderr: \(v4.errors.text)")
        v4.stop()
        #expect(v4.output.text == "hello group\n")

        // IPv6: joined by interface name; a datagram sent with --no-multicast-loop first must
        // not reach this host's listener.
        let v6 = try namespace.sock("listen", "-u", "--multicast", "ff15::77", "--interface", "mcA", "0")
        let v6Port = String(try listeningPort(v6))
        for (loop, text) in [("--no-multicast-loop", "not looped\n"), ("--multicast-loop", "hello v6\n")] {
            let sender = try namespace.sock(
                "connect", "-u", "-w", "0.2", loop, "--multicast-interface", "mcA", "ff15::77", v6Port,
                input: .bytes(Array(text.utf8)))
            #expect(sender.wait() == 0, "stderr: \(sender.errors.text)")
        }
        #expect(v6.output.wait(timeout: 10) { $0.contains("hello v6") }, "stderr: \(v6.errors.text)")
        v6.stop()
        #expect(v6.output.text == "hello v6\n")
    }

    // MARK: scan on the event loop

    @Test func asyncScanGivesEachConnectItsOwnDeadline() throws {
        // A listener with a full accept queue drops new SYNs: its port can only time out
        // (filtered); a bound port without a listener refuses (closed); one listens (open).
        let holder = try python("""
            import socket, sys
            full = socket.socket(); full.bind(('127.0.0.1', 0)); full.listen(0)
            filler = socket.create_connection(full.getsockname())
            closed = socket.socket(); closed.bind(('127.0.0.1', 0))
            open_ = socket.socket(); open_.bind(('127.0.0.1', 0)); open_.listen(8)
            print(full.getsockname()[1], closed.getsockname()[1], open_.getsockname()[1])
            sys.stdin.readline()
            """, input: .pipe)
        #expect(holder.output.wait(timeout: 20) { $0.contains("\n") })
        let ports = holder.output.text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        try #require(ports.count == 3, "python printed \(holder.output.text)")
        let (filtered, closed, open) = (ports[0], ports[1], ports[2])
        let child = try sock("scan", "-v", "-w", "0.3", "--concurrency", "2", "127.0.0.1", "\(filtered),\(closed),\(open)")
        #expect(child.wait(timeout: 20) == 0, "stderr: \(child.errors.text)")
        let expected = [(filtered, "filtered"), (closed, "closed"), (open, "open")].sorted { $0.0 < $1.0 }
        #expect(child.output.text == expected.map { "\($0.0)/tcp \($0.1)\n" }.joined())
        #expect(child.errors.text.contains("with async: 1 open, 1 closed, 1 filtered"), "stderr: \(child.errors.text)")
        try holder.write("done\n")
        holder.wait()
    }

    // MARK: listen -k with standard input

    @Test func keepListeningSendsStandardInputToEveryClient() throws {
        let server = try sock("listen", "-k", "-v", "0", input: .pipe)
        let port = try listeningPort(server)
        let clients = try python("""
            import socket, sys
            cs = [socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10) for _ in range(3)]
            print('connected')
            def line(c):
                data = b''
                while not data.endswith(b'\\n'): data += c.recv(100)
                return data.decode()
            print(','.join(line(c).strip() for c in cs))
            """, [String(port)])
        #expect(clients.output.wait(timeout: 20) { $0.contains("connected") })
        #expect(server.errors.wait(timeout: 20) { $0.components(separatedBy: "connection from").count == 4 }, "stderr: \(server.errors.text)")
        try server.write("to all\n")
        #expect(clients.wait() == 0, "python: \(clients.errors.text)")
        #expect(clients.output.text == "connected\nto all,to all,to all\n")
        server.stop()
    }
}

/// The SHA-256 of bytes, in hex, computed by python (no hashing library in the tests).
private func sha256(_ bytes: [UInt8]) throws -> String {
    let hasher = try python("import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())", input: .bytes(bytes))
    #expect(hasher.wait() == 0)
    return hasher.output.text.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A network namespace of the test's own, deleted (with its interfaces) by `delete()`.
private struct ToolNamespace {
    let name = "socktool-\(getpid())-\(UInt32.random(in: 0...999_999))"

    static let ipPath: String? = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { access($0, X_OK) == 0 }

    init() throws {
        try Self.run(["netns", "add", name])
    }

    /// `ip -n NAME arguments...`, which must succeed.
    func ip(_ arguments: String...) throws {
        try Self.run(["-n", name] + arguments)
    }

    /// Runs `sock` inside the namespace (`ip netns exec`, which execs it: the child is sock).
    func sock(_ arguments: String..., input: ChildInput = .none) throws -> Child {
        let ip = try #require(Self.ipPath, "the ip command (iproute2) is not installed")
        return try Child(ip, ["netns", "exec", name, try SockBinary.require()] + arguments, input: input)
    }

    func delete() {
        try? Self.run(["netns", "delete", name])
    }

    private static func run(_ arguments: [String]) throws {
        let ip = try #require(ipPath, "the ip command (iproute2) is not installed")
        let child = try Child(ip, arguments)
        let status = child.wait()
        try #require(status == 0, "ip \(arguments.joined(separator: " ")): status \(status), \(child.errors.text)")
    }
}
