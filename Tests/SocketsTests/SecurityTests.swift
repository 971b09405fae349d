import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Testing

/// Security properties: no descriptor leaks into child processes, no SIGPIPE, and Unix socket
/// files that are never looser than asked.
@Suite(.noDescriptorLeaks())
struct SecurityTests {
    // MARK: Close-on-exec

    /// The descriptors a child process started now inherits, as (number, link target)
    /// pairs from its own `/proc/self/fd`, read by `ls` in the child.
    func descriptorsInheritedByAChild() throws -> [CInt: String] {
        let child = try ChildProcess(["/bin/ls", "-l", "/proc/self/fd/"])
        let listing = String(decoding: child.readToEnd(), as: UTF8.self)
        #expect(try child.wait() == 0, "ls: \(child.errorOutput())")
        var inherited: [CInt: String] = [:]
        // "lrwx------ 1 root root 64 Dec  2 17:30 3 -> socket:[1234]"
        for line in listing.split(separator: "\n") {
            guard let arrow = line.range(of: " -> ") else { continue }
            guard let number = line[..<arrow.lowerBound].split(separator: " ").last.flatMap({ CInt($0) }) else { continue }
            inherited[number] = String(line[arrow.upperBound...])
        }
        return inherited
    }

    @Test func noDescriptorTheLibraryCreatesIsInheritedByAChildProcess() throws {
        var kinds: [(String, CInt)] = []
        var keep: [AnyObject] = []
        func add(_ name: String, _ socket: Socket) {
            keep.append(socket)
            kinds.append((name, socket.descriptor))
        }
        // Sockets of every family and type this machine lets a test open.
        let plain: [(String, SocketDomain, SocketType, SocketProtocol)] = [
            ("TCP/IPv4", .inet, .stream, .default), ("UDP/IPv4", .inet, .datagram, .default),
            ("TCP/IPv6", .inet6, .stream, .default), ("UDP/IPv6", .inet6, .datagram, .default),
            ("Unix stream", .unix, .stream, .default), ("Unix datagram", .unix, .datagram, .default),
            ("Unix seqpacket", .unix, .sequencedPacket, .default), ("netlink", .netlink, .raw, .default),
        ]
        for (name, domain, type, proto) in plain {
            add(name, try Socket(domain, type, proto))
        }
        add("non-blocking TCP", try Socket(.inet, .stream, nonBlocking: true))
        if Privilege.rawSockets.isHeld {
            add("raw ICMP", try Socket(.inet, .raw, .icmp))
            add("AF_PACKET", try Socket(.packet, .raw, .default))
        }
        // Accepted (blocking and non-blocking accept), socketpair, dup.
        let (listener, address) = try CoreTest.tcpListener()
        add("listener", listener)
        let client = try Socket(.inet, .stream)
        try client.connect(to: address)
        add("client", client)
        add("accepted", try listener.accept().0)
        let second = try Socket(.inet, .stream)
        try second.connect(to: address)
        add("second client", second)
        _ = try listener.poll(.readable, timeout: .seconds(5))
        try listener.setNonBlocking(true)
        add("tryAccept", try #require(try listener.tryAccept()).0)
        let (left, right) = try Socket.pair(.unix, .stream)
        add("socketpair left", left)
        add("socketpair right", right)
        add("dup", try client.duplicate())
        // Readiness: epoll and eventfd; zero copy: a splice pipe.
        let epoll = try Epoll()
        keep.append(epoll)
        kinds.append(("epoll", epoll.descriptor))
        let notifier = try EventNotifier()
        keep.append(notifier)
        kinds.append(("eventfd", notifier.descriptor))
        let pipe = try SplicePipe()
        keep.append(pipe)
        kinds.append(("pipe read end", pipe.readDescriptor))
        kinds.append(("pipe write end", pipe.writeDescriptor))
        // Received over SCM_RIGHTS: descriptors another process (here, this one) sent.
        try left.sendDescriptors([client.descriptor, pipe.writeDescriptor])
        let received = try right.receiveDescriptors(maxCount: 2)
        #expect(received.descriptors.count == 2)
        for (index, descriptor) in received.descriptors.enumerated() {
            keep.append(descriptor)
            kinds.append(("received \(index)", descriptor.descriptor))
        }

        let ours = Dictionary(uniqueKeysWithValues: kinds.map { ($0.1, (name: $0.0, link: CoreTest.descriptorLink($0.1))) })
        #expect(ours.count == kinds.count, "every kind is a distinct open descriptor")
        for (fd, entry) in ours { #expect(!entry.link.isEmpty, "\(entry.name) (fd \(fd)) is open") }

        // A control: one descriptor made inheritable on purpose must show up in the child.
        let inheritable = try client.duplicate()
        try inheritable.setCloseOnExec(false)

        let inherited = try descriptorsInheritedByAChild()
        #expect(inherited[inheritable.descriptor] == CoreTest.descriptorLink(inheritable.descriptor), "the control was inherited")
        for (fd, entry) in ours {
            #expect(inherited[fd] != entry.link, "\(entry.name) (fd \(fd), \(entry.link)) leaked into the child")
        }
        withExtendedLifetime(keep) {}
    }

    // MARK: SIGPIPE

    /// Runs `body` with SIGPIPE blocked on this thread and returns whether a SIGPIPE became
    /// pending: a send without `MSG_NOSIGNAL` to a broken connection raises one even when the
    /// signal is ignored, so this sees what the disposition would hide.
    func raisesSIGPIPE(_ body: () throws -> Void) rethrows -> Bool {
        var pipeOnly = sigset_t()
        sigemptyset(&pipeOnly)
        sigaddset(&pipeOnly, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeOnly, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try body()
        var pending = sigset_t()
        sigpending(&pending)
        guard sigismember(&pending, SIGPIPE) == 1 else { return false }
        // Take it, so that it is not delivered when the mask is restored.
        var zero = timespec()
        _ = sigtimedwait(&pipeOnly, nil, &zero)
        return true
    }

    /// A TCP connection whose peer reset it (zero linger), past the first error: every send now
    /// fails with EPIPE.
    func resetConnection() throws -> Socket {
        let (client, server) = try CoreTest.tcpPair()
        try CoreTest.setZeroLinger(server)
        try server.close()
        _ = try client.poll(.readable, timeout: .seconds(5))
        var errors: [Errno?] = []
        for _ in 0..<3 {
            do { _ = try client.send([1]) } catch { errors.append(error.errno) }
        }
        #expect(errors.last == .brokenPipe, "\(errors)")
        return client
    }

    @Test func everySendPathToAResetPeerIsEPIPEWithoutSIGPIPE() throws {
        let client = try resetConnection()
        let byte: [UInt8] = [1]
        let batch = try DatagramBatch(capacity: 2, maximumDatagramSize: 16)
        try batch.append(byte)
        try batch.append(byte)
        let paths: [(String, () throws -> Void)] = [
            ("send", { _ = try client.send(byte) }),
            ("sendAll", { try client.sendAll(byte) }),
            ("write", { _ = try client.write(byte) }),
            ("sendmsg", { _ = try client.sendMessage(byte, controlMessages: []) }),
            ("sendmsg with control", { _ = try client.sendMessage(byte, controlMessages: [.typeOfService(0x10)]) }),
            ("sendmmsg", { _ = try client.sendBatch(batch) }),
        ]
        for (name, send) in paths {
            var failure: SocketError?
            let raised = raisesSIGPIPE {
                do { try send() } catch let error as SocketError { failure = error } catch {}
            }
            #expect(failure?.errno == .brokenPipe, "\(name): \(String(describing: failure))")
            #expect(!raised, "\(name) raised SIGPIPE (no MSG_NOSIGNAL)")
        }
    }

    @Test func sendfileAndSpliceToAResetPeerAreEPIPEAndTheProcessLives() throws {
        // sendfile(2) and splice(2) cannot take MSG_NOSIGNAL: the library blocks SIGPIPE in
        // the calling thread for each call and takes the signal it raised, so the process
        // lives, and its SIGPIPE disposition is left as it was.
        var before = sigaction()
        sigaction(SIGPIPE, nil, &before)
        let client = try resetConnection()
        let file = try TemporaryFile(contents: Array(repeating: 7, count: 4096))
        let fileError = #expect(throws: SocketError.self) { _ = try client.sendFile(from: file.fd) }
        #expect(fileError?.errno == .brokenPipe)

        let pipe = try SplicePipe()
        let (feeder, feederPeer) = try Socket.pair(.unix, .stream)
        try feederPeer.sendAll([1, 2, 3])
        #expect(try feeder.splice(into: pipe, maxCount: 3) == 3)
        let spliceError = #expect(throws: SocketError.self) { _ = try client.splice(from: pipe, count: 3) }
        #expect(spliceError?.errno == .brokenPipe)
        var after = sigaction()
        sigaction(SIGPIPE, nil, &after)
        let handler = { (action: sigaction) in action.__sigaction_handler.sa_handler.map { unsafeBitCast($0, to: Int.self) } }
        #expect(handler(after) == handler(before), "the SIGPIPE disposition is unchanged")
    }

    // MARK: Unix socket permissions

    /// A fresh directory under /tmp that other users may search (0755), removed afterwards.
    func withSharedDirectory(_ body: (String) throws -> Void) throws {
        var template = Array("/tmp/sockets-perm-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        let directory = try #require(created.map { String(cString: $0) })
        defer {
            if let entries = opendir(directory) {
                while let entry = readdir(entries) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                    if name != "." && name != ".." { unlink("\(directory)/\(name)") }
                }
                closedir(entries)
            }
            rmdir(directory)
        }
        chmod(directory, 0o755)
        try body(directory)
    }

    func mode(_ path: String) -> mode_t {
        var status = stat()
        guard lstat(path, &status) == 0 else { return 0 }
        return status.st_mode
    }

    @Test func bindWithPermissionsGivesExactlyThatModeAndNeverRemovesAnything() throws {
        try withSharedDirectory { directory in
            for wanted: FilePermissions in [.ownerReadWrite, [.ownerReadWrite, .groupReadWrite], [.ownerReadWrite, .groupReadWrite, .otherReadWrite], .ownerReadWriteExecute] {
                let path = "\(directory)/s\(wanted.rawValue).sock"
                let socket = try Socket(.unix, .stream)
                try socket.bind(to: UnixSocketAddress(path: path), permissions: wanted)
                #expect(mode(path) & S_IFMT == S_IFSOCK)
                #expect(mode(path) & 0o7777 == mode_t(wanted.rawValue), "asked 0o\(String(wanted.rawValue, radix: 8)), got 0o\(String(mode(path) & 0o7777, radix: 8))")
                try socket.listen()
                let client = try Socket(.unix, .stream)
                try client.connect(to: .unix(path: path))
            }

            // Something already at the path: EADDRINUSE, and it is left exactly as it was.
            let file = "\(directory)/regular"
            let fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
            #expect(fd >= 0)
            _ = Glibc.write(fd, "keep", 4)
            Glibc.close(fd)
            let link = "\(directory)/link"
            symlink(file, link)
            for path in [file, link] {
                let socket = try Socket(.unix, .stream)
                let error = #expect(throws: SocketError.self) { try socket.bind(to: UnixSocketAddress(path: path), permissions: .ownerReadWrite) }
                #expect(error?.errno == .addressInUse)
            }
            #expect(mode(link) & S_IFMT == S_IFLNK)
            #expect(mode(file) & 0o7777 == 0o644, "the link's target was not chmod-ed")
            #expect(CoreTest.readSmallFile(file) == "keep")

            let socket = try Socket(.unix, .stream)
            let abstract = #expect(throws: SocketError.self) { try socket.bind(to: UnixSocketAddress(abstract: "x"), permissions: .ownerReadWrite) }
            #expect(abstract?.description.contains("only to a filesystem path") == true)
            let setuid = #expect(throws: SocketError.self) {
                try socket.bind(to: UnixSocketAddress(path: "\(directory)/suid"), permissions: [.ownerReadWrite, .setUserID])
            }
            #expect(setuid?.description.contains("beyond 0o777") == true)
            #expect(mode("\(directory)/suid") == 0, "nothing was bound")
        }
    }

    /// Another user (nobody, through `setpriv`) can connect only when the mode lets it, and
    /// `SO_PEERCRED` then names that user and process.
    @Test(.requires(.otherUsers), .enabled(if: access("/usr/bin/setpriv", X_OK) == 0, "needs setpriv (util-linux)"))
    func anotherUserConnectsOnlyWhenTheModeAllowsAndPeerCredentialsNameIt() throws {
        try withSharedDirectory { directory in
            let script = """
                import socket, sys, os
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(sys.argv[1])
                except PermissionError:
                    print('denied'); sys.exit(0)
                print('connected', os.getpid(), os.getuid(), os.getgid(), flush=True)
                s.recv(1)
                """
            func attempt(_ path: String) throws -> ChildProcess {
                try ChildProcess(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CoreTest.python, "-c", script, path])
            }

            let privatePath = "\(directory)/private.sock"
            let privateListener = try Socket(.unix, .stream)
            try privateListener.bind(to: UnixSocketAddress(path: privatePath), permissions: .ownerReadWrite)
            try privateListener.listen()
            let denied = try attempt(privatePath)
            #expect(try denied.readLine() == "denied")
            #expect(try denied.wait() == 0)

            let openPath = "\(directory)/open.sock"
            let openListener = try Socket(.unix, .stream)
            try openListener.bind(to: UnixSocketAddress(path: openPath), permissions: [.ownerReadWrite, .groupReadWrite, .otherReadWrite])
            try openListener.listen()
            try CoreTest.setTimeouts(openListener)
            let allowed = try attempt(openPath)
            let line = try allowed.readLine()
            #expect(line == "connected \(allowed.pid) 65534 65534")
            let (connection, _) = try openListener.accept()
            #expect(try connection.get(.peerCredentials) == PeerCredentials(pid: allowed.pid, uid: 65534, gid: 65534))
            try connection.sendAll([1])
            #expect(try allowed.wait() == 0)
        }
    }
}
