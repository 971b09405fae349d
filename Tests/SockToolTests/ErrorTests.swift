import Foundation
import Testing

/// Bad input gives status 64, runtime failures status 1, always with `sock: ` and a message,
/// never a crash, a signal death or a hang.
@Suite(.noDescriptorLeaks())
struct ErrorTests {
    static let longPath = "/tmp/" + String(repeating: "x", count: 200)

    @Test(arguments: [
        (["connect"], "expected HOST and PORT"),
        (["connect", "127.0.0.1"], "expected HOST and PORT"),
        (["connect", "127.0.0.1", "70000"], "port 70000 is outside 0...65535"),
        (["connect", "127.0.0.1", "0"], "port 0"),
        (["connect", "127.0.0.1", "no-such-service-name"], "unknown port or service"),
        (["connect", "1.2.3.4.5", "80"], "not an IPv4 address"),
        (["connect", "::1::2", "80"], "not an IPv6 address"),
        (["connect", "-4", "::1", "80"], "not an IPv4 address"),
        (["connect", "-U", longPath], "the limit is 107"),
        (["connect", "-U", "/tmp/x", "127.0.0.1", "80"], "-U PATH takes no HOST or PORT"),
        (["connect", "-w", "-1", "127.0.0.1", "80"], "-w"),
        (["connect", "--no-such-option", "127.0.0.1", "80"], "Unknown option '--no-such-option'"),
        (["listen"], "expected PORT"),
        (["listen", "--echo", "--broker", "0"], "cannot be used together"),
        (["listen", "127.0.0.1", "99999"], "outside 0...65535"),
        (["listen", "-U", longPath], "the limit is 107"),
        (["resolve"], "name"),
        (["resolve", "--reverse", "localhost"], "needs an IP address"),
        (["ping", "-c", "0", "127.0.0.1"], "-c 0"),
        (["ping", "-s", "70000", "127.0.0.1"], "-s 70000"),
        (["scan", "127.0.0.1", "0-10"], "not a number in 1...65535"),
        (["scan", "127.0.0.1", "10-5"], "runs backwards"),
        (["scan", "127.0.0.1", "80,,81"], "not a number"),
        (["scan", "--concurrency", "0", "127.0.0.1", "80"], "--concurrency"),
        (["bench", "--size", "0"], "--size"),
        (["bench", "carrier-pigeon"], "carrier-pigeon"),
        (["frobnicate"], "frobnicate"),
        (["bench", "--loops", "0"], "--loops 0 is outside 1...64"),
        (["bench", "--sync", "--loops", "2"], "cannot be used together"),
        (["scan", "--using", "kqueue", "127.0.0.1", "80"], "kqueue"),
        (["connect", "-u", "--file", "/etc/hostname", "127.0.0.1", "9"], "--file needs a stream socket"),
        (["connect", "--file", "/tmp", "127.0.0.1", "9"], "not a regular file"),
        (["connect", "--file", "/etc/hostname", "--send-fd", "/etc/hostname", "-U", "/tmp/x"], "cannot be used together"),
        (["connect", "--send-fd", "/etc/hostname", "127.0.0.1", "9"], "--send-fd needs -U PATH"),
        (["connect", "-u", "--multicast-ttl", "300", "239.1.2.3", "9"], "--multicast-ttl 300 is outside 0...255"),
        (["connect", "--multicast-ttl", "3", "239.1.2.3", "9"], "need -u"),
        (["connect", "-u", "--multicast-ttl", "3", "127.0.0.1", "9"], "need a multicast destination"),
        (["connect", "-u", "--multicast-interface", "no-such-if0", "239.1.2.3", "9"], "no such interface"),
        (["listen", "--multicast", "239.1.2.3", "0"], "--multicast needs -u"),
        (["listen", "-u", "--multicast", "10.1.2.3", "0"], "not a multicast address"),
        (["listen", "-u", "--multicast", "239.1.2.3", "--multicast", "ff15::1", "0"], "must all be IPv4 or all IPv6"),
        (["listen", "-u", "-6", "--multicast", "239.1.2.3", "0"], "is not an IPv6 address"),
        (["listen", "-u", "--interface", "lo", "0"], "--interface needs --multicast"),
        (["listen", "--receive-fd", "0"], "--receive-fd needs -U PATH"),
        (["listen", "-U", "/tmp/x", "--receive-fd", "--echo"], "cannot be used with --echo"),
    ])
    func usageErrorsExit64(arguments: [String], message: String) throws {
        let child = try sock(arguments: arguments)
        #expect(child.wait() == 64, "\(arguments): stderr \(child.errors.text)")
        #expect(child.exitedNormally)
        #expect(child.errors.text.hasPrefix("sock: "), "\(arguments): \(child.errors.text)")
        #expect(child.errors.text.contains(message), "\(arguments): \(child.errors.text)")
        #expect(child.output.text.isEmpty)
    }

    @Test func missingFileExits1BeforeConnecting() throws {
        let path = temporaryPath("missing")
        // Port 9 on loopback: nothing is contacted, since the file is opened first.
        let child = try sock("connect", "--file", path, "127.0.0.1", "9")
        #expect(child.wait() == 1)
        #expect(child.errors.text == "sock: open(\(path)): No such file or directory (ENOENT)\n")
        let fd = try sock("connect", "-U", path + ".sock", "--send-fd", path)
        #expect(fd.wait() == 1)
        #expect(fd.errors.text == "sock: open(\(path)): No such file or directory (ENOENT)\n")
    }

    @Test func refusedConnectionExits1() throws {
        // A bound port with no listener refuses connections, and nobody else can take it.
        let holder = try python("""
            import socket, sys
            s = socket.socket(); s.bind(('127.0.0.1', 0))
            print(s.getsockname()[1])
            sys.stdin.readline()
            """, input: .pipe)
        let port = try firstLineNumber(holder)
        let child = try sock("connect", "127.0.0.1", String(port))
        #expect(child.wait() == 1)
        #expect(child.errors.text == "sock: connect(127.0.0.1:\(port)): Connection refused (ECONNREFUSED)\n")
        let unix = try sock("connect", "-U", temporaryPath("absent.sock"))
        #expect(unix.wait() == 1)
        #expect(unix.errors.text.hasPrefix("sock: connect("))
        #expect(unix.errors.text.contains("ENOENT"))
        try holder.write("done\n")
        holder.wait()
    }

    @Test func connectTimeoutExits1() throws {
        // A listener with a full accept queue drops new SYNs: connecting can only time out.
        let holder = try python("""
            import socket, sys
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
            filler = socket.create_connection(s.getsockname())
            print(s.getsockname()[1])
            sys.stdin.readline()
            """, input: .pipe)
        let port = try firstLineNumber(holder)
        let child = try sock("connect", "-w", "0.3", "127.0.0.1", String(port))
        #expect(child.wait(timeout: 20) == 1)
        #expect(child.errors.text == "sock: connect(127.0.0.1:\(port)): timed out (ETIMEDOUT)\n")
        try holder.write("done\n")
        holder.wait()
    }

    @Test func connectionResetExits1() throws {
        let server = try python("""
            import socket, struct
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); s.settimeout(20)
            print(s.getsockname()[1])
            c, _ = s.accept(); c.settimeout(20)
            c.recv(1)   # the client is connected and has sent: the reset reaches its recv
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            c.close()   # SO_LINGER 0: reset
            """)
        let port = try firstLineNumber(server)
        let child = try sock("connect", "127.0.0.1", String(port), input: .pipe)
        // Reset only once the connect has surely finished: a reset racing the connect would
        // be reported by connect instead (also ECONNRESET, but not the path tested here).
        try child.write("x")
        #expect(child.wait() == 1, "stderr: \(child.errors.text)")
        #expect(child.exitedNormally)
        #expect(child.errors.text.hasPrefix("sock: recv: Connection reset by peer (ECONNRESET)"), "stderr: \(child.errors.text)")
        server.wait()
    }

    @Test func peerVanishingMidTransferExits1() throws {
        let uploadPath = temporaryPath("big")
        defer { removeFile(uploadPath) }
        try writeFile(uploadPath, [UInt8](repeating: 7, count: 32 << 20))
        let server = try python("""
            import socket
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); s.settimeout(20)
            print(s.getsockname()[1])
            c, _ = s.accept(); c.settimeout(20)
            c.recv(1000)
            c.close()   # with unread data: the kernel resets the connection
            """)
        let port = try firstLineNumber(server)
        let child = try sock("connect", "127.0.0.1", String(port), input: .file(uploadPath))
        #expect(child.wait() == 1, "stderr: \(child.errors.text)")
        #expect(child.exitedNormally, "killed by a signal")
        #expect(child.errors.text.hasPrefix("sock: "))
        #expect(child.errors.text.contains("ECONNRESET") || child.errors.text.contains("EPIPE"), "stderr: \(child.errors.text)")
        server.wait()
    }

    @Test func closedStandardOutputExits1WithoutSIGPIPE() throws {
        let server = try python("""
            import socket
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); s.settimeout(20)
            print(s.getsockname()[1])
            c, _ = s.accept(); c.settimeout(20)
            try: c.sendall(b'z' * (4 << 20))
            except OSError: pass
            c.close()
            """)
        let port = try firstLineNumber(server)
        let child = try sock("connect", "127.0.0.1", String(port), closeOutput: true)
        #expect(child.wait() == 1, "stderr: \(child.errors.text)")
        #expect(child.exitedNormally, "killed by a signal")
        #expect(child.errors.text.hasPrefix("sock: write(stdout): Broken pipe (EPIPE)"), "stderr: \(child.errors.text)")
        server.wait()
    }

    @Test func idleTimeoutEndsAQuietConnection() throws {
        let server = try python("""
            import socket, sys
            s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); s.settimeout(20)
            print(s.getsockname()[1])
            c, _ = s.accept()
            sys.stdin.readline()
            """, input: .pipe)
        let port = try firstLineNumber(server)
        let start = Date()
        let child = try sock("connect", "-w", "0.3", "127.0.0.1", String(port), input: .pipe)
        #expect(child.wait(timeout: 20) == 0, "stderr: \(child.errors.text)")
        // It waited at least the idle time (bounded above by `wait`'s own limit).
        #expect(Date().timeIntervalSince(start) >= 0.3)
        try server.write("done\n")
        server.wait()
    }

    @Test func listenOnABusyPortExits1() throws {
        let first = try sock("listen", "-k", "0")
        let port = try listeningPort(first)
        let second = try sock("listen", String(port))
        #expect(second.wait() == 1)
        #expect(second.errors.text == "sock: bind(127.0.0.1:\(port)): Address already in use (EADDRINUSE)\n")
        first.stop()
    }
}
