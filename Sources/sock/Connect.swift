import ArgumentParser
import Sockets

/// `sock connect`: a client that copies standard input to a socket and the socket to standard
/// output.
struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect, then copy standard input to the socket and the socket to standard output.",
        usage: """
            sock connect [-u] [-4|-6] [-w SECS] [-v] [--progress] HOST PORT
            sock connect -U PATH [--seqpacket|-u] [-w SECS] [-v] [--progress]
            """,
        discussion: """
            Byte-exact and binary-safe. At the end of standard input the write side is shut \
            down (the peer reads end-of-file) and reading goes on until the peer closes. \
            Datagram sessions (-u) end once standard input has ended and no reply came for -w \
            seconds (1 by default).

            Examples:
              printf 'GET / HTTP/1.0\\r\\n\\r\\n' | sock connect example.com 80
              sock connect -u 127.0.0.1 5353 < query.bin
              sock connect -U /run/app.sock     (Unix stream; @NAME: abstract name)
              sock connect -U /tmp/s.sock --seqpacket
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
    }

    func run() throws {
        let waitLimit = try timeout.map { (value) throws(ToolError) in try seconds(value, option: "-w") }
        let (socket, framing) = try open(waitLimit: waitLimit)
        defer { try? socket.close() }
        if verbose {
            let local = (try? socket.localAddress())?.description ?? "?"
            let peer = (try? socket.peerAddress())?.description ?? "?"
            Console.error("sock: connected to \(peer) from \(local)")
        }
        let relay = StdioRelay(
            socket: socket, framing: framing, idleTimeout: waitLimit, linger: waitLimit ?? .seconds(1), progress: progress)
        if try relay.run() == .idle && verbose {
            Console.error("sock: nothing moved for \(Format.duration(waitLimit ?? .seconds(1))); closing")
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
        var lastError: SocketError?
        for address in addresses {
            do throws(SocketError) {
                let socket = try Socket(address.domain, type)
                do {
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
