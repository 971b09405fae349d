import ArgumentParser
import Foundation
import Sockets
import SystemPackage
import Synchronization

/// `sock listen`: a server for one client (with standard input and output), many (-k), an
/// echo server, a chat broker, or a datagram sink.
struct Listen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Listen for connections or datagrams.",
        usage: """
            sock listen [-u] [-k] [--echo|--broker] [-4|-6] [-v] [--progress] [HOST] PORT
            sock listen -u --multicast GROUP [--interface IFACE] [-v] [HOST] PORT
            sock listen -U PATH [--seqpacket|-u] [-k] [--echo|--broker] [-v]
            sock listen -U PATH [--seqpacket] [-k] --receive-fd [-v]
            """,
        discussion: """
            Binds to HOST (127.0.0.1 by default, ::1 with -6; 0.0.0.0 or :: only when given) and \
            PORT (0 picks a free port), then prints `listening on ADDRESS` on standard error with \
            the real port.

            Without -k it serves one client with standard input and output, like `sock connect`, \
            then exits. With -k it keeps accepting and serves many clients at once: what they \
            send goes to standard output and standard input goes to all of them. --echo sends \
            each client's bytes back; --broker relays each client's bytes to all the others \
            (a chat room; implies -k).

            With -u it receives datagrams and prints each one's payload (--echo also sends it \
            back); standard input goes to the latest sender. --multicast GROUP (repeatable) joins \
            an IPv4 or IPv6 multicast group on --interface (an address, name or index; by \
            default the interface the routing table picks), binds to the wildcard address unless \
            HOST is given, and prints only datagrams sent to the groups joined (IP_MULTICAST_ALL \
            off); SO_REUSEADDR lets several listeners share the port.

            --receive-fd takes open descriptors passed over the Unix socket (SCM_RIGHTS, as sent \
            by `sock connect -U PATH --send-fd FILE`): for each it prints on standard error what \
            it refers to (its type, the path from /proc/self/fd, its size, its access mode) and \
            the label that came with it, then copies what it reads from it to standard output. \
            Other bytes on the connection are ignored. Without -k it serves one connection; \
            with -k, one after another.

            A Unix listener (-U) removes its socket file when it exits, and refuses to remove \
            anything that is not a socket.

            Examples:
              sock listen 8080                        (one client, then exit)
              sock listen -k --echo 0                 (echo server on a free port)
              sock listen -k --broker 0.0.0.0 7000    (chat room on every interface)
              sock listen -u 5353                     (print UDP datagrams)
              sock listen -U /tmp/app.sock --seqpacket --echo
              sock listen -u --multicast 239.1.2.3 --interface eth0 5000
              sock listen -U /tmp/fd.sock --receive-fd     (then: sock connect -U /tmp/fd.sock --send-fd FILE)
            """
    )

    @Flag(name: .customShort("u"), help: "Use UDP (with -U: a Unix datagram socket).")
    var udp = false

    @Flag(name: .customShort("k"), help: "Keep listening: serve many clients at once.")
    var keepListening = false

    @Flag(help: "Send each client's bytes back to it.")
    var echo = false

    @Flag(help: "Relay each client's bytes to all the other clients (implies -k).")
    var broker = false

    @OptionGroup var family: FamilyOptions

    @Flag(name: .shortAndLong, help: "Report connections and datagrams on standard error.")
    var verbose = false

    @Option(name: .customShort("U"), help: ArgumentHelp("Listen on the Unix socket at PATH (@NAME for Linux's abstract namespace).", valueName: "PATH"))
    var unixPath: String?

    @Flag(help: "With -U: use a sequenced-packet socket (SOCK_SEQPACKET).")
    var seqpacket = false

    @Flag(help: "Show the bytes moved and the throughput on standard error (single client).")
    var progress = false

    @Option(name: .customLong("multicast"), help: ArgumentHelp("With -u: join this multicast group (IPv4 or IPv6; repeat for several).", valueName: "GROUP"))
    var multicastGroups: [String] = []

    @Option(name: .customLong("interface"), help: ArgumentHelp("With --multicast: the interface to join on, by address, name or index.", valueName: "IFACE"))
    var multicastInterface: String?

    @Flag(name: .customLong("receive-fd"), help: "With -U: take descriptors passed with SCM_RIGHTS and copy what they read to standard output.")
    var receiveDescriptors = false

    @Argument(help: ArgumentHelp("[HOST] PORT: the address to bind (HOST defaults to 127.0.0.1).", valueName: "host-and-port"))
    var endpoint: [String] = []

    func validate() throws {
        if echo && broker { throw ValidationError("--echo and --broker cannot be used together") }
        if unixPath != nil {
            if !endpoint.isEmpty { throw ValidationError("-U PATH takes no HOST or PORT") }
            if family.ipv4 || family.ipv6 { throw ValidationError("-4 and -6 do not apply to Unix sockets") }
            if seqpacket && udp { throw ValidationError("--seqpacket and -u cannot be used together") }
        } else {
            if endpoint.isEmpty { throw ValidationError("expected PORT, HOST PORT, or -U PATH") }
            if endpoint.count > 2 { throw ValidationError("expected at most HOST and PORT, got \(endpoint.count) arguments") }
            if seqpacket { throw ValidationError("--seqpacket needs -U PATH") }
        }
        if broker && udp { throw ValidationError("--broker needs a connection-oriented socket (not -u)") }
        if !multicastGroups.isEmpty {
            if !udp || unixPath != nil { throw ValidationError("--multicast needs -u (UDP over IPv4 or IPv6)") }
        }
        if multicastInterface != nil && multicastGroups.isEmpty { throw ValidationError("--interface needs --multicast GROUP") }
        if receiveDescriptors {
            if unixPath == nil || udp { throw ValidationError("--receive-fd needs -U PATH (a Unix stream or --seqpacket socket)") }
            if echo || broker { throw ValidationError("--receive-fd cannot be used with --echo or --broker") }
        }
    }

    var framing: Framing { seqpacket ? .sequencedPackets : (udp ? .datagrams : .stream) }

    func run() async throws {
        let (socket, cleanup) = try openAndBind()
        defer {
            try? socket.close()
            cleanup?.run()
        }
        if framing != .datagrams {
            do {
                try socket.listen(backlog: 511)
            } catch {
                throw ToolError(error)
            }
        }
        let local = (try? socket.localAddress())?.description ?? "?"
        Console.error("listening on \(local)")
        if framing == .datagrams {
            try DatagramServer(socket: socket, echo: echo, verbose: verbose).run()
        } else if receiveDescriptors {
            // One connection at a time on this thread: what the descriptors read goes to
            // standard output, which would interleave if clients were served at once.
            try DescriptorReceiver(listener: socket, keepListening: keepListening, verbose: verbose).run()
        } else if keepListening || broker {
            // Many clients at once: tasks on the event loop.
            let server = try ConnectionServer(
                listener: socket, framing: framing, mode: broker ? .broker : (echo ? .echo : .plain), verbose: verbose)
            try await server.run()
        } else {
            try serveOne(socket)
        }
    }

    /// Accepts one client and serves it, then returns.
    private func serveOne(_ listener: Socket) throws(ToolError) {
        let client: Socket
        do {
            let (accepted, peer) = try listener.accept()
            client = accepted
            if verbose { Console.error("sock: connection from \(peer)") }
        } catch {
            throw ToolError(error)
        }
        // One client only: stop accepting (later clients are refused, not queued).
        try? listener.close()
        defer { try? client.close() }
        if echo {
            try echoUntilClosed(client, framing: framing)
        } else {
            try StdioRelay(socket: client, framing: framing, idleTimeout: nil, progress: progress).run()
        }
    }

    /// Creates the socket and binds it.
    private func openAndBind() throws(ToolError) -> (Socket, UnixPathCleanup?) {
        let type: SocketType = seqpacket ? .sequencedPacket : (udp ? .datagram : .stream)
        if let unixPath {
            let address: SocketAddress
            do {
                address = try unixAddress(unixPath)
            } catch {
                throw ToolError(error)
            }
            let isPath = !unixPath.hasPrefix("@")
            if isPath { try UnixPathCleanup.clearStale(unixPath, type: type, verbose: verbose) }
            do {
                let socket = try Socket(.unix, type)
                do {
                    try socket.bind(to: address)
                } catch {
                    try? socket.close()
                    throw error
                }
                return (socket, isPath ? UnixPathCleanup(path: unixPath) : nil)
            } catch {
                throw ToolError(error)
            }
        }
        let groups = try MulticastSupport.groups(multicastGroups)
        var wantedFamily = family.family
        if let group = groups.first {
            let groupFamily = MulticastSupport.domain(of: group)
            if let wantedFamily, wantedFamily != groupFamily {
                throw ToolError.usage("--multicast \(group) is not an \(wantedFamily == .inet ? "IPv4" : "IPv6") address")
            }
            wantedFamily = groupFamily
        }
        // A multicast listener takes the group's datagrams on any interface's address.
        let defaultHost = groups.isEmpty ? (family.ipv6 ? "::1" : "127.0.0.1") : (wantedFamily == .inet6 ? "::" : "0.0.0.0")
        let host = endpoint.count == 2 ? endpoint[0] : defaultHost
        let port = try parsePort(endpoint[endpoint.count - 1], protocol: udp ? "udp" : "tcp", allowZero: true)
        let addresses = try resolveEndpoint(host: host, port: port, family: wantedFamily, type: type, passive: true)
        let interface = try multicastInterface.map { (text) throws(ToolError) in
            try MulticastSupport.interface(text, option: "--interface", family: wantedFamily ?? .inet)
        }
        var lastError: (any Error)?
        for address in addresses {
            do {
                let socket = try Socket(address.domain, type)
                do {
                    if type == .stream || !groups.isEmpty { try socket.set(.reuseAddress, true) }
                    if address.domain == .inet6 && !groups.isEmpty { try socket.set(.ipv6Only, true) }
                    try socket.bind(to: address)
                    if !groups.isEmpty { try joinGroups(socket, groups, on: interface, family: address.domain) }
                    return (socket, nil)
                } catch {
                    try? socket.close()
                    throw error
                }
            } catch let error as ToolError {
                throw error
            } catch {
                lastError = error
            }
        }
        throw ToolError(lastError ?? SocketError("bind", address: host, reason: .invalidArgument("no address")))
    }

    private func joinGroups(_ socket: Socket, _ groups: [IPAddress], on interface: MulticastSupport.Interface?, family: SocketDomain) throws(ToolError) {
        try MulticastSupport.receiveOnlyJoinedGroups(socket, family: family)
        for group in groups {
            try MulticastSupport.join(socket, group, on: interface)
            if verbose { Console.error("sock: joined \(group) on \(interface?.description ?? "the default interface")") }
        }
    }
}

/// Removes a Unix listener's socket file when the listener exits, also on SIGINT/SIGTERM,
/// and only while the path is still the socket this process bound.
final class UnixPathCleanup: Sendable {
    let path: String
    private let inode: UInt64?
    private let done = Atomic<Bool>(false)
    private let interruptKey = LockedValue<Int?>(nil)

    init(path: String) {
        self.path = path
        inode = (try? FilePath(path).stat(followTargetSymlink: false)).map { UInt64($0.inode.rawValue) }
        let key = Interrupts.onInterrupt { [self] in self.removeFile() }
        interruptKey.withLock { $0 = key }
    }

    /// Removes the file now (once).
    func run() {
        if let key = interruptKey.withLock({ $0 }) { Interrupts.remove(key) }
        removeFile()
    }

    private func removeFile() {
        guard !done.exchange(true, ordering: .acquiringAndReleasing) else { return }
        guard let status = try? FilePath(path).stat(followTargetSymlink: false), status.type == .socket else { return }
        if let inode, UInt64(status.inode.rawValue) != inode { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Before binding: refuses a path that exists and is not a socket; removes a stale socket
    /// file (nobody accepts on it), and refuses one that a server is using.
    static func clearStale(_ path: String, type: SocketType, verbose: Bool) throws(ToolError) {
        let status: Stat
        do {
            status = try FilePath(path).stat(followTargetSymlink: false)
        } catch {
            return  // nothing there (or unreadable): bind will say what is wrong
        }
        guard status.type == .socket else {
            throw ToolError.runtime("bind(\(path)): the path exists and is not a socket; refusing to remove it")
        }
        let inUse: Bool
        do {
            let probe = try Socket(.unix, type)
            defer { try? probe.close() }
            try probe.connect(to: .unix(path: path))
            inUse = true
        } catch let error where error.errno == .connectionRefused {
            inUse = false
        } catch {
            inUse = true
        }
        if inUse {
            throw ToolError.runtime("bind(\(path)): Address already in use (EADDRINUSE): a server is using this socket")
        }
        if verbose { Console.error("sock: removing stale socket file \(path)") }
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Sends every message or byte back until the client closes (one client, blocking).
func echoUntilClosed(_ socket: Socket, framing: Framing) throws(ToolError) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: framing.bufferSize, alignment: 16)
    defer { buffer.deallocate() }
    do {
        while true {
            let count = try socket.receive(into: buffer)
            if count == 0 { break }
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<count])
            if framing == .stream {
                try socket.sendAll(bytes)
            } else {
                _ = try socket.send(bytes)
            }
        }
    } catch {
        throw ToolError(error)
    }
}

/// Receives datagrams, prints their payloads, and optionally echoes them.
final class DatagramServer: Sendable {
    let socket: Socket
    let echo: Bool
    let verbose: Bool
    private let latestSender = LockedValue<SocketAddress?>(nil)

    init(socket: Socket, echo: Bool, verbose: Bool) {
        self.socket = socket
        self.echo = echo
        self.verbose = verbose
    }

    func run() throws(ToolError) {
        if !echo {
            startThread("stdin-to-sender") { self.replyWithInput() }
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let message: ReceivedMessage
            do {
                message = try socket.receiveMessage(into: [buffer])
            } catch let error where error.errno == .connectionRefused {
                // An ICMP error for an earlier reply: that sender is gone; keep serving.
                if verbose { Console.error("sock: \(error)") }
                continue
            } catch {
                throw ToolError(error)
            }
            let count = min(message.byteCount, buffer.count)
            let payload = UnsafeRawBufferPointer(rebasing: buffer[..<count])
            if verbose {
                let truncated = message.flags.contains(.truncated) ? " (truncated)" : ""
                Console.error("sock: datagram from \(message.sender?.description ?? "?"): \(count) bytes\(truncated)")
            }
            try Console.write(payload)
            guard let sender = message.sender else { continue }
            latestSender.withLock { $0 = sender }
            if echo {
                do {
                    _ = try socket.send(payload, to: sender)
                } catch {
                    if verbose { Console.error("sock: \(error)") }
                }
            }
        }
    }

    /// Standard input to the latest sender, one datagram per read.
    private func replyWithInput() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_507, alignment: 16)
        defer { buffer.deallocate() }
        while let count = try? Console.read(into: buffer), count > 0 {
            guard let sender = latestSender.withLock({ $0 }) else {
                Console.error("sock: no datagram received yet, so nobody to send input to; dropped \(count) bytes")
                continue
            }
            do {
                _ = try socket.send(UnsafeRawBufferPointer(rebasing: buffer[..<count]), to: sender)
            } catch {
                Console.error("sock: \(error)")
            }
        }
    }
}
