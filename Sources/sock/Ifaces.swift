import ArgumentParser
import Sockets

/// `sock ifaces`: the network interfaces, their flags and addresses (`getifaddrs`).
struct Ifaces: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List network interfaces with their index, flags, MTU and addresses.",
        discussion: """
            Examples:
              sock ifaces
              sock ifaces --json
            """
    )

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let interfaces = try NetworkInterface.list()
        try Console.out(json ? jsonText(interfaces) : plainText(interfaces))
    }

    private static func flagNames(_ flags: InterfaceFlags) -> [String] {
        flags.isEmpty ? [] : flags.description.split(separator: "|").map(String.init)
    }

    private static func family(_ address: IPAddress) -> String {
        address.domain == .inet6 ? "inet6" : "inet"
    }

    /// The address with its zone for link-local IPv6 (`fe80::1%eth0`).
    private static func host(_ entry: InterfaceAddress) -> String {
        entry.address.map { Resolve.host(of: $0) } ?? entry.ipAddress?.description ?? "?"
    }

    private func plainText(_ interfaces: [NetworkInterface]) -> String {
        var text = ""
        for interface in interfaces {
            let mtu = (try? interface.mtu()).map { " mtu \($0)" } ?? ""
            text += "\(interface.index): \(interface.name) <\(Self.flagNames(interface.flags).joined(separator: ","))>\(mtu)\n"
            if let hardware = interface.hardwareAddress, !hardware.bytes.isEmpty {
                text += "    link/\(hardware.type) \(hardware)\n"
            }
            for entry in interface.addresses {
                guard let ip = entry.ipAddress else { continue }
                let prefix = entry.prefixLength.map { "/\($0)" } ?? ""
                let broadcast = entry.broadcast.map { " broadcast \($0)" } ?? ""
                let peer = entry.destination.map { " peer \($0)" } ?? ""
                text += "    \(Self.family(ip)) \(Self.host(entry))\(prefix)\(broadcast)\(peer)\n"
            }
        }
        return text
    }

    private func jsonText(_ interfaces: [NetworkInterface]) -> String {
        let items = interfaces.map { interface in
            let addresses = interface.addresses.compactMap { entry -> String? in
                guard let ip = entry.ipAddress else { return nil }
                return "{\"family\": \(Format.json(Self.family(ip))), "
                    + "\"address\": \(Format.json(Self.host(entry))), "
                    + "\"prefix\": \(entry.prefixLength.map(String.init) ?? "null"), "
                    + "\"broadcast\": \(entry.broadcast.map { Format.json($0.description) } ?? "null")}"
            }
            let hardware = interface.hardwareAddress.flatMap { $0.bytes.isEmpty ? nil : $0.description }
            return "{\"name\": \(Format.json(interface.name)), \"index\": \(interface.index), "
                + "\"flags\": [\(Self.flagNames(interface.flags).map(Format.json).joined(separator: ", "))], "
                + "\"mtu\": \((try? interface.mtu()).map(String.init) ?? "null"), "
                + "\"hardware_address\": \(hardware.map(Format.json) ?? "null"), "
                + "\"addresses\": [\(addresses.joined(separator: ", "))]}"
        }
        return "[" + items.joined(separator: ",\n ") + "]\n"
    }
}
