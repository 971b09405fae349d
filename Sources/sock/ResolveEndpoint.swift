import Sockets

/// The addresses for HOST and PORT: a numeric host is parsed (never looked up), a name is
/// resolved with `getaddrinfo`.
func resolveEndpoint(
    host rawHost: String, port: UInt16, family: SocketDomain?, type: SocketType, passive: Bool = false
) throws(ToolError) -> [SocketAddress] {
    var host = rawHost
    if host.hasPrefix("["), host.hasSuffix("]"), host.count > 2 { host = String(host.dropFirst().dropLast()) }
    guard !host.isEmpty else { throw ToolError.usage("empty host name") }
    guard host.utf8.count <= 253 || looksNumeric(host) else {
        throw ToolError.usage("host name \"\(host.prefix(40))...\" is longer than 253 bytes")
    }
    if looksNumeric(host) {
        let address: SocketAddress
        do {
            address = try SocketAddress(host: host, port: port)
        } catch {
            throw ToolError.usage(error.description)
        }
        if let family, address.domain != family {
            throw ToolError.usage("\(host) is not an \(family == .inet ? "IPv4" : "IPv6") address")
        }
        return [address]
    }
    try validateHostName(host)
    let found: [AddressInfo]
    do {
        found = try AddressInfo.lookup(host: host, service: nil, family: family ?? .unspecified, type: type, flags: passive ? .passive : [])
    } catch {
        throw ToolError(error)
    }
    var addresses: [SocketAddress] = []
    for entry in found {
        var address = entry.address
        address.setPort(port)
        if !addresses.contains(address) { addresses.append(address) }
    }
    guard !addresses.isEmpty else {
        throw ToolError.runtime("getaddrinfo(\(host)): no \(family.map { $0 == .inet ? "IPv4 " : "IPv6 " } ?? "")address")
    }
    return addresses
}

extension SocketAddress {
    /// Changes the port of an IP address.
    mutating func setPort(_ port: UInt16) {
        switch self {
        case .ipv4(var address):
            address.port = port
            self = .ipv4(address)
        case .ipv6(var address):
            address.port = port
            self = .ipv6(address)
        default:
            break
        }
    }
}
