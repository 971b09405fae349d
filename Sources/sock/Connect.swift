import ArgumentParser
import Sockets
import SystemPackage

/// `sock connect`: a client that copies standard input to a socket and the socket to standard
/// output.
struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect, then copy standard input to the socket and the socket to standard output.",
        usage: """
            sock connect [-u] [-4|-6] [-w SECS] [-v] [--progress] [--file FILE] HOST PORT
            sock connect -u [--multicast-ttl N] [--[no-]multicast-loop] [--multicast-interface IFACE] GROUP PORT
            sock connect -U PATH [--seqpacket|-u] [-w SECS] [-v] [--progress] [--file FILE | --send-fd FILE]
            """,
        discussion: """
            Byte-exact and binary-safe. At the end of standard input the write side is shut \
            down (the peer reads end-of-file) and reading goes on until the peer closes. \
            Datagram sessions (-u) end once standard input has ended and no reply came for -w \
            seconds (1 by default).

            --file FILE sends the file instead of standard input, with sendfile(2) (the bytes \
            go from the page cache to the socket without passing through sock), then shuts \
            down writing as at the end of input; whatever the peer sends still goes to \
            standard output.

            --send-fd FILE (with -U) opens FILE read-only and passes the open descriptor itself \
            over the Unix socket (SCM_RIGHTS), with FILE's name as the bytes that carry it; `-` \
            passes standard input's descriptor (a pipe, a terminal, ...). Then it shuts down \
            writing and prints what the peer sends. The receiver reads the file through the \
            descriptor, even one it could not open itself. See `sock listen --receive-fd`.

            To a multicast group (-u), --multicast-ttl sets the time-to-live (IPv6: hop limit; \
            1 by default: this network only), --no-multicast-loop keeps this host's own \
            listeners from getting the datagrams, and --multicast-interface picks the interface \
            to send from (an address, name or index).

            Examples:
              printf 'GET / HTTP/1.0\\r\\n\\r\\n' | sock connect example.com 80
              sock connect -u 127.0.0.1 5353 < query.bin
              sock connect -U /run/app.sock     (Unix stream; @NAME: abstract name)
              sock connect -U /tmp/s.sock --seqpacket
              sock connect --file backup.tar 10.0.0.2 9000
              sock connect -U /tmp/fd.sock --send-fd /etc/hostname
              echo hello | sock connect -u --multicast-ttl 4 --multicast-interface eth0 239.1.2.3 5000
            """
    )

    @Flag(name: .customShort("u"), help: "Use UDP (with -U: a Unix datagram socket).")
    var udp = false

    @OptionGroup var family: FamilyOptions

    @Option(name: [.customShort("w"), .customLong("timeout")], help: ArgumentHelp("Give up connecting after SECS, and stop after SECS with no data either way.", valueName: "SECS"))
    var timeout: Double?

    @Flag(name: .shortAndLong, help: "Report the connection on standard error.")
    var verbose = false

    @Option(name: .customShort("U"), help: ArgumentHelp("Connect to the Unix socket at PATH (@NAME for Linux's abstract namespace).", valueName: "PATH"))
    var unixPath: String?

    @Flag(help: "With -U: use a sequenced-packet socket (SOCK_SEQPACKET).")
    var seqpacket = false

    @Flag(help: "Show the bytes moved and the throughput on standard error.")
    var progress = false

    @Option(help: ArgumentHelp("Send FILE (with sendfile(2)) instead of standard input.", valueName: "FILE"))
    var file: String?

    @Option(name: .customLong("send-fd"), help: ArgumentHelp("With -U: pass FILE's open descriptor (- for standard input's) with SCM_RIGHTS.", valueName: "FILE"))
    var sendDescriptor: String?

    @Option(name: .customLong("multicast-ttl"), help: ArgumentHelp("With -u to a multicast group: the time-to-live (IPv6: hop limit), 0...255.", valueName: "N"))
    var multicastTimeToLive: Int?

    @Flag(name: .customLong("multicast-loop"), inversion: .prefixedNo, help: "With -u to a multicast group: whether this host's listeners get the datagrams too (default: yes).")
    var multicastLoop: Bool?

    @Option(name: .customLong("multicast-interface"), help: ArgumentHelp("With -u to a multicast group: the interface to send from (address, name or index).", valueName: "IFACE"))
    var multicastInterface: String?

    @Argument(help: "The host: a name, an IPv4 address or an IPv6 address.")
    var host: String?

    @Argument(help: "The port: a number or a service name.")
    var port: String?

    func validate() throws {
        if unixPath != nil {
            if host != nil || port != nil { throw ValidationError("-U PATH takes no HOST or PORT") }
            if family.ipv4 || family.ipv6 { throw ValidationError("-4 and -6 do not apply to Unix sockets") }
            if seqpacket && udp { throw ValidationError("--seqpacket and -u cannot be used together") }
        } else {
            guard host != nil, port != nil else { throw ValidationError("expected HOST and PORT, or -U PATH") }
            if seqpacket { throw ValidationError("--seqpacket needs -U PATH") }
        }
        if file != nil {
            if udp || seqpacket { throw ValidationError("--file needs a stream socket (TCP or a Unix stream socket)") }
            if sendDescriptor != nil { throw ValidationError("--file and --send-fd cannot be used together") }
        }
        if sendDescriptor != nil && (unixPath == nil || udp) {
            throw ValidationError("--send-fd needs -U PATH (a Unix stream or --seqpacket socket)")
        }
        if usesMulticastOptions {
            if !udp || unixPath != nil { throw ValidationError("--multicast-ttl, --multicast-loop and --multicast-interface need -u") }
            if let multicastTimeToLive, !(0...255).contains(multicastTimeToLive) {
                throw ValidationError("--multicast-ttl \(multicastTimeToLive) is outside 0...255")
            }
        }
    }

    private var usesMulticastOptions: Bool { multicastTimeToLive != nil || multicastLoop != nil || multicastInterface != nil }

    func run() throws {
        let waitLimit = try timeout.map { (value) throws(ToolError) in try seconds(value, option: "-w") }
        // Open what is to be sent first: a missing file fails before any connection.
        let source = try openSource()
        defer {
            switch source {
            case .file(let descriptor, _): try? descriptor.close()
            case .descriptor(let fd, _) where fd != 0: try? FileDescriptor(rawValue: fd).close()
            default: break
            }
        }
        let (socket, framing) = try open(waitLimit: waitLimit)
        defer { try? socket.close() }
        if verbose {
            let local = (try? socket.localAddress())?.description ?? "?"
            let peer = (try? socket.peerAddress())?.description ?? "?"
            Console.error("sock: connected to \(peer) from \(local)")
        }
        let relay = StdioRelay(
            socket: socket, framing: framing, source: source, idleTimeout: waitLimit, linger: waitLimit ?? .seconds(1),
            progress: progress)
        if try relay.run() == .idle && verbose {
            Console.error("sock: nothing moved for \(Format.duration(waitLimit ?? .seconds(1))); closing")
        }
    }

    /// Opens the file for --file or --send-fd.
    private func openSource() throws(ToolError) -> RelaySource {
        if let file {
            let descriptor = try Self.openReadOnly(file)
            do {
                let status = try descriptor.stat()
                guard status.type == .regular else {
                    throw ToolError.usage("--file \(file): not a regular file (sendfile(2) sends regular files)")
                }
            } catch let error as ToolError {
                try? descriptor.close()
                throw error
            } catch {
                try? descriptor.close()
                throw ToolError.runtime("fstat(\(file)): \(Console.describe(error))")
            }
            return .file(descriptor, path: file)
        }
        if let sendDescriptor {
            if sendDescriptor == "-" { return .descriptor(0, label: "standard input") }
            return .descriptor(try Self.openReadOnly(sendDescriptor).rawValue, label: sendDescriptor)
        }
        return .standardInput
    }

    private static func openReadOnly(_ path: String) throws(ToolError) -> FileDescriptor {
        do {
            return try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
        } catch {
            throw ToolError.runtime("open(\(path)): \(Console.describe(error))")
        }
    }

    /// Opens and connects the socket, trying each resolved address in turn.
    private func open(waitLimit: Duration?) throws(ToolError) -> (Socket, Framing) {
        if let unixPath {
            let type: SocketType = seqpacket ? .sequencedPacket : (udp ? .datagram : .stream)
            let framing: Framing = seqpacket ? .sequencedPackets : (udp ? .datagrams : .stream)
            do {
                let address = try unixAddress(unixPath)
                let socket = try Socket(.unix, type)
                do {
                    // A datagram client needs a name of its own to get replies: autobind one.
                    if udp { try socket.bind(to: .unix(.unnamed)) }
                    try connect(socket, to: address, waitLimit: waitLimit)
                } catch {
                    try? socket.close()
                    throw error
                }
                return (socket, framing)
            } catch {
                throw ToolError(error)
            }
        }
        guard let host, let port else { throw ToolError.usage("expected HOST and PORT") }
        let type: SocketType = udp ? .datagram : .stream
        let portNumber = try parsePort(port, protocol: udp ? "udp" : "tcp", allowZero: false)
        let addresses = try resolveEndpoint(host: host, port: portNumber, family: family.family, type: type)
        var interface: MulticastSupport.Interface?
        if usesMulticastOptions {
            guard let destination = addresses.first?.ipAddress, MulticastSupport.isMulticast(destination) else {
                throw ToolError.usage("--multicast-ttl, --multicast-loop and --multicast-interface need a multicast destination (224.0.0.0/4 or ff00::/8)")
            }
            interface = try multicastInterface.map { (text) throws(ToolError) in
                try MulticastSupport.interface(text, option: "--multicast-interface", family: MulticastSupport.domain(of: destination))
            }
        }
        var lastError: SocketError?
        for address in addresses {
            do throws(SocketError) {
                let socket = try Socket(address.domain, type)
                do {
                    if usesMulticastOptions {
                        try MulticastSupport.configureSender(
                            socket, family: address.domain, timeToLive: multicastTimeToLive, loop: multicastLoop, interface: interface)
                    }
                    try connect(socket, to: address, waitLimit: waitLimit)
                    return (socket, udp ? .datagrams : .stream)
                } catch {
                    try? socket.close()
                    throw error
                }
            } catch {
                lastError = error
                if verbose { Console.error("sock: \(error)") }
            }
        }
        throw ToolError(lastError ?? SocketError("connect", address: host, reason: .invalidArgument("no address")))
    }

    private func connect(_ socket: Socket, to address: SocketAddress, waitLimit: Duration?) throws(SocketError) {
        if let waitLimit {
            try socket.connect(to: address, timeout: waitLimit)
        } else {
            try socket.connect(to: address)
        }
    }
}

/// A Unix address from the command line: a path, or `@name` for an abstract name.
func unixAddress(_ text: String) throws(SocketError) -> SocketAddress {
    if text.hasPrefix("@") { return try .unix(abstract: String(text.dropFirst())) }
    return try .unix(path: text)
}
