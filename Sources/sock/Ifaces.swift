import ArgumentParser
import Sockets

/// `sock ifaces`: the network interfaces, their flags and addresses (`getifaddrs`).
struct Ifaces: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List network interfaces with their index, flags and addresses.",
        discussion: """
            Examples:
              sock ifaces
              sock ifaces --json
            """
    )

    @Flag(help: "Print JSON.")
    var json = false

    struct Interface {
        var name: String
        var index: UInt32
        var flags: [String]
        var hardwareAddress: String?
        var addresses: [(address: SocketAddress, prefix: Int?, broadcast: SocketAddress?)] = []
    }

    func run() throws {
        var interfaces: [Interface] = []
        for entry in try Interfaces.entries() {
            var position = interfaces.firstIndex { $0.name == entry.name }
            if position == nil {
                interfaces.append(Interface(
                    name: entry.name, index: Interfaces.index(of: entry.name) ?? 0, flags: Interfaces.flagNames(entry.flags)))
                position = interfaces.count - 1
            }
            guard let position, let address = entry.address else { continue }
            if let hardware = Interfaces.hardwareAddress(address) {
                interfaces[position].hardwareAddress = hardware
            } else if address.domain == .inet || address.domain == .inet6 {
                let broadcast = entry.flags & 0x2 != 0 ? entry.broadcastOrDestination : nil
                interfaces[position].addresses.append((address, Interfaces.prefixLength(entry.netmask), broadcast))
            }
        }
        interfaces.sort { $0.index < $1.index }
        try Console.out(json ? jsonText(interfaces) : plainText(interfaces))
    }

    private func plainText(_ interfaces: [Interface]) -> String {
        var text = ""
        for interface in interfaces {
            text += "\(interface.index): \(interface.name) <\(interface.flags.joined(separator: ","))>\n"
            if let hardware = interface.hardwareAddress { text += "    link \(hardware)\n" }
            for entry in interface.addresses {
                let family = entry.address.domain == .inet6 ? "inet6" : "inet"
                let prefix = entry.prefix.map { "/\($0)" } ?? ""
                let broadcast = entry.broadcast.map { " broadcast \(Resolve.host(of: $0))" } ?? ""
                text += "    \(family) \(Resolve.host(of: entry.address))\(prefix)\(broadcast)\n"
            }
        }
        return text
    }

    private func jsonText(_ interfaces: [Interface]) -> String {
        let items = interfaces.map { interface in
            let addresses = interface.addresses.map { entry in
                "{\"family\": \(Format.json(entry.address.domain == .inet6 ? "inet6" : "inet")), "
                    + "\"address\": \(Format.json(Resolve.host(of: entry.address))), "
                    + "\"prefix\": \(entry.prefix.map(String.init) ?? "null"), "
                    + "\"broadcast\": \(entry.broadcast.map { Format.json(Resolve.host(of: $0)) } ?? "null")}"
            }
            return "{\"name\": \(Format.json(interface.name)), \"index\": \(interface.index), "
                + "\"flags\": [\(interface.flags.map(Format.json).joined(separator: ", "))], "
                + "\"hardware_address\": \(interface.hardwareAddress.map(Format.json) ?? "null"), "
                + "\"addresses\": [\(addresses.joined(separator: ", "))]}"
        }
        return "[" + items.joined(separator: ",\n ") + "]\n"
    }
}
