import ArgumentParser
import Sockets

/// `sock resolve`: `getaddrinfo` and `getnameinfo` from the command line.
struct Resolve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Look up a host name's addresses (getaddrinfo), or an address's name (getnameinfo).",
        usage: "sock resolve [-4|-6] [--reverse] [--json] NAME [SERVICE]",
        discussion: """
            Prints one address a line (with the port when SERVICE is given), or with --reverse \
            the host name (and service name). --json prints one JSON object instead.

            Examples:
              sock resolve localhost
              sock resolve -6 example.com https
              sock resolve --reverse 127.0.0.1
              sock resolve --json localhost 80
            """
    )

    @OptionGroup var family: FamilyOptions

    @Flag(help: "Look up the name of the address NAME (getnameinfo with NI_NAMEREQD).")
    var reverse = false

    @Flag(help: "Print JSON.")
    var json = false

    @Argument(help: "The host name to look up (with --reverse, an IP address).")
    var name: String

    @Argument(help: "A service name or port number.")
    var service: String?

    func run() throws {
        if reverse {
            try runReverse()
        } else {
            try runForward()
        }
    }

    private func runForward() throws {
        guard !name.isEmpty, name.utf8.count <= 253 || looksNumeric(name) else {
            throw ToolError.usage("host name must be 1 to 253 bytes")
        }
        if looksNumeric(name) {
            // Checks the address's form (and family) with a clear message.
            _ = try resolveEndpoint(host: name, port: 0, family: family.family, type: .stream)
        } else {
            try validateHostName(name)
        }
        let entries = try AddressInfo.lookup(
            host: name, service: service, family: family.family ?? .unspecified,
            flags: looksNumeric(name) ? [.canonicalName, .numericHost] : .canonicalName)
        // getaddrinfo gives each address once per socket type: show each address once.
        var order: [SocketAddress] = []
        var types: [SocketAddress: [String]] = [:]
        for entry in entries {
            if types[entry.address] == nil { order.append(entry.address) }
            let typeName = Self.typeName(entry.type)
            if !(types[entry.address] ?? []).contains(typeName) { types[entry.address, default: []].append(typeName) }
        }
        let canonical = entries.lazy.compactMap(\.canonicalName).first
        if json {
            let items = order.map { address in
                "{\"family\": \(Format.json(address.domain == .inet6 ? "inet6" : "inet")), "
                    + "\"address\": \(Format.json(Self.host(of: address))), \"port\": \(address.port ?? 0), "
                    + "\"types\": [\((types[address] ?? []).map(Format.json).joined(separator: ", "))]}"
            }
            try Console.out("""
                {"name": \(Format.json(name)), "service": \(service.map(Format.json) ?? "null"), \
                "canonical_name": \(canonical.map(Format.json) ?? "null"), "addresses": [\(items.joined(separator: ", "))]}

                """)
        } else {
            let lines = order.map { service == nil ? Self.host(of: $0) : $0.description }
            try Console.out(lines.map { $0 + "\n" }.joined())
        }
    }

    private func runReverse() throws {
        guard looksNumeric(name) else {
            throw ToolError.usage("--reverse needs an IP address, not \"\(name)\"")
        }
        let port = try service.map { (text) throws(ToolError) in try parsePort(text, protocol: "tcp", allowZero: true) } ?? 0
        guard let address = try resolveEndpoint(host: name, port: port, family: family.family, type: .stream).first else {
            throw ToolError.usage("not an address: \(name)")
        }
        let (host, serviceName) = try NameInfo.lookup(address, flags: .nameRequired)
        if json {
            try Console.out("""
                {"address": \(Format.json(Self.host(of: address))), "host": \(Format.json(host)), \
                "service": \(service == nil ? "null" : Format.json(serviceName))}

                """)
        } else {
            try Console.out(service == nil ? "\(host)\n" : "\(host) \(serviceName)\n")
        }
    }

    /// The address without its port: `127.0.0.1`, `fe80::1%eth0`.
    static func host(of address: SocketAddress) -> String {
        switch address {
        case .ipv4(let inet): return inet.address.description
        case .ipv6(let inet6): return inet6.hostDescription
        default: return address.description
        }
    }

    static func typeName(_ type: SocketType) -> String {
        switch type {
        case .stream: return "stream"
        case .datagram: return "datagram"
        case .raw: return "raw"
        case .sequencedPacket: return "seqpacket"
        default: return "type \(type.rawValue)"
        }
    }
}
