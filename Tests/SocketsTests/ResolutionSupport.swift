// Test support for ResolutionTests: the system's own databases read directly (to know what to
// expect), python3 as an independent oracle, and a private network namespace whose DNS server
// is a small fake, so lookups of names that are not in /etc/hosts never leave the test.

import Foundation
import Glibc
import Sockets
import SocketSyscalls
import Synchronization

// MARK: - The system's databases, read directly

/// The lines of /etc/hosts: an address and its names, in file order.
func hostsFileEntries() -> [(address: String, names: [String])] {
    databaseLines("/etc/hosts").compactMap { fields in
        fields.count >= 2 ? (fields[0], Array(fields.dropFirst())) : nil
    }
}

/// The lines of /etc/services: name, port, protocol, aliases.
func servicesFileEntries() -> [(name: String, port: UInt16, protocol: String, aliases: [String])] {
    databaseLines("/etc/services").compactMap { fields in
        guard fields.count >= 2 else { return nil }
        let parts = fields[1].split(separator: "/")
        guard parts.count == 2, let port = UInt16(parts[0]) else { return nil }
        return (fields[0], port, String(parts[1]), Array(fields.dropFirst(2)))
    }
}

/// The lines of /etc/protocols: name, number, aliases.
func protocolsFileEntries() -> [(name: String, number: Int32, aliases: [String])] {
    databaseLines("/etc/protocols").compactMap { fields in
        guard fields.count >= 2, let number = Int32(fields[1]) else { return nil }
        return (fields[0], number, Array(fields.dropFirst(2)))
    }
}

/// A database file's lines without comments, split into fields.
func databaseLines(_ path: String) -> [[String]] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").compactMap { line in
        let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        return fields.isEmpty ? nil : fields
    }
}

/// A small text file's content without its trailing newline.
func fileText(_ path: String) -> String? {
    (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
}

// MARK: - python3 as an oracle

/// Runs `python3 -c script arguments...` and returns its standard output.
///
/// Spawned with `posix_spawn` rather than Foundation's `Process`, whose first use leaves
/// descriptors open for good (its run-loop machinery), which the leak check would report.
func runPython(_ script: String, _ arguments: [String] = []) throws -> String {
    try runCommand(["python3", "-c", script] + arguments)
}

struct OracleError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

// MARK: - A private network namespace with a fake DNS server

/// Runs code on a thread of its own inside a new network namespace that holds only loopback
/// (up, with 127.0.0.1 and ::1), the address 198.18.0.1, and the machine's first nameserver
/// address, where a fake DNS server answers for the zone `resolution.test`:
///
/// | name | records |
/// |---|---|
/// | dual.resolution.test | A 192.0.2.10, AAAA 2001:db8::10 |
/// | v6only.resolution.test | AAAA 2001:db8::6 |
/// | alias.resolution.test | CNAME dual.resolution.test |
/// | 10.2.0.192.in-addr.arpa, the ip6.arpa name of 2001:db8::10 | PTR dual.resolution.test |
///
/// Every other name is NXDOMAIN. `unshare(CLONE_NEWNET)` moves only the calling thread, so the
/// rest of the test process stays where it was; the namespace disappears when the thread ends.
enum PrivateResolver {
    static let dualV4 = IPv4Address(192, 0, 2, 10)
    static let dualV6 = IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10)
    static let v6OnlyAddress = IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 6)
    /// An IPv4 address on the namespace's loopback device, so that `AI_ADDRCONFIG` sees IPv4
    /// configured and IPv6 (only ::1) not.
    static let extraIPv4 = IPv4Address(198, 18, 0, 1)

    /// The nameserver glibc will ask: the first in /etc/resolv.conf, else 127.0.0.1.
    static let nameserver: IPAddress? = {
        for fields in databaseLines("/etc/resolv.conf") where fields.count >= 2 && fields[0] == "nameserver" {
            return try? IPAddress(fields[1])
        }
        return .v4(.loopback)
    }()

    /// Why the private resolver cannot work here, or `nil` when it can.
    static let unavailableReason: String? = {
        if !Privilege.networkNamespaces.isHeld { return Privilege.networkNamespaces.requirement }
        guard case .v4 = nameserver else { return "the first nameserver in /etc/resolv.conf is not an IPv4 address" }
        if access("/var/run/nscd/socket", F_OK) == 0 { return "nscd runs here and would answer lookups from outside the namespace" }
        let hostsSources = databaseLines("/etc/nsswitch.conf").first { $0.first == "hosts:" }?.dropFirst() ?? []
        if hostsSources.contains(where: { $0 != "files" && $0 != "dns" }) {
            return "nsswitch.conf's hosts line uses sources other than files and dns"
        }
        return nil
    }()

    static var isAvailable: Bool { unavailableReason == nil }

    /// Runs `body` in the namespace and returns its result with the queries the fake server
    /// received (`name TYPE`, in order).
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> (result: T, queries: [String]) {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try runOnThisThread(body) })
            }
            thread.start()
        }
    }

    private static func runOnThisThread<T>(_ body: () throws -> T) throws -> (result: T, queries: [String]) {
        guard case .v4(let nameserver)? = nameserver else { throw OracleError(message: unavailableReason ?? "no nameserver") }
        let outside = readLink("/proc/thread-self/ns/net")
        try Syscall.unshare(Syscall.newNetworkNamespace)
        guard readLink("/proc/thread-self/ns/net") != outside else {
            throw OracleError(message: "the thread did not move to a new network namespace")
        }
        let control = try Socket(.inet, .datagram)
        defer { try? control.close() }
        try setInterfaceUp(control, "lo")
        try addIPv4Address(control, interface: "lo:1", extraIPv4)
        if !nameserver.isLoopback {
            try addIPv4Address(control, interface: "lo:2", nameserver)
        }

        let server = FakeDNSServer(socket: try Socket(.inet, .datagram))
        defer { try? server.socket.close() }
        try server.socket.bind(to: .ipv4(nameserver, port: 53))
        let stopper = try Socket(.inet, .datagram)
        defer { try? stopper.close() }
        try stopper.bind(to: .ipv4(.loopback, port: 0))
        let stopAddress = try stopper.localAddress()
        let finished = DispatchSemaphore(value: 0)
        Thread {
            server.serve(until: stopAddress)
            finished.signal()
        }.start()
        defer {
            _ = try? stopper.send([0], to: .ipv4(nameserver, port: 53))
            finished.wait()
        }
        let result = try body()
        return (result, server.queries)
    }

    private static func readLink(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let count = readlink(path, &buffer, buffer.count - 1)
        return count > 0 ? String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }
}

/// `ioctl(SIOCSIFFLAGS)`: brings an interface up.
private func setInterfaceUp(_ socket: Socket, _ name: String) throws {
    var request = interfaceRequest(name)
    let flags = Int16(IFF_UP | IFF_RUNNING)
    withUnsafeBytes(of: flags.littleEndian) { request.replaceSubrange(16..<18, with: $0) }
    try socket.withDescriptor { fd in
        _ = try request.withUnsafeMutableBytes { raw in try Syscall.ioctl(fd, 0x8914, raw.baseAddress!) }
    }
}

/// `ioctl(SIOCSIFADDR)` on an alias such as `lo:1`: adds an IPv4 address to the interface.
private func addIPv4Address(_ socket: Socket, interface: String, _ address: IPv4Address) throws {
    var request = interfaceRequest(interface)
    request[16] = UInt8(AF_INET)
    request.replaceSubrange(20..<24, with: address.bytes)
    try socket.withDescriptor { fd in
        _ = try request.withUnsafeMutableBytes { raw in try Syscall.ioctl(fd, 0x8916, raw.baseAddress!) }
    }
}

/// A `struct ifreq` (40 bytes) holding an interface name.
private func interfaceRequest(_ name: String) -> [UInt8] {
    var request = [UInt8](repeating: 0, count: 40)
    request.replaceSubrange(0..<name.utf8.count, with: name.utf8)
    return request
}

/// A minimal authoritative DNS server over UDP for the zone in ``PrivateResolver``.
final class FakeDNSServer: Sendable {
    let socket: Socket
    private let log = Mutex<[String]>([])

    init(socket: Socket) { self.socket = socket }

    var queries: [String] { log.withLock { $0 } }

    /// Answers queries until a datagram arrives from `stopAddress` or the socket fails.
    func serve(until stopAddress: SocketAddress) {
        while let datagram = try? socket.receiveDatagram(maxLength: 1500), let sender = datagram.sender, sender != stopAddress {
            guard let query = DNSQuery(datagram.bytes) else { continue }
            log.withLock { $0.append("\(query.name) \(DNSQuery.typeName(query.type))") }
            _ = try? socket.send(response(to: query), to: sender)
        }
    }

    enum Record {
        static let a: UInt16 = 1
        static let cname: UInt16 = 5
        static let ptr: UInt16 = 12
        static let aaaa: UInt16 = 28
    }

    /// The zone: owner name, type, data.
    static let zone: [(name: String, type: UInt16, data: [UInt8])] = [
        ("dual.resolution.test", Record.a, PrivateResolver.dualV4.bytes),
        ("dual.resolution.test", Record.aaaa, PrivateResolver.dualV6.bytes),
        ("v6only.resolution.test", Record.aaaa, PrivateResolver.v6OnlyAddress.bytes),
        ("alias.resolution.test", Record.cname, encodeName("dual.resolution.test")),
        (reverseName(.v4(PrivateResolver.dualV4)), Record.ptr, encodeName("dual.resolution.test")),
        (reverseName(.v6(PrivateResolver.dualV6)), Record.ptr, encodeName("dual.resolution.test")),
    ]

    func response(to query: DNSQuery) -> [UInt8] {
        var answers: [(name: String, type: UInt16, data: [UInt8])] = []
        var name = query.name
        if query.type != Record.cname, let alias = Self.zone.first(where: { $0.name == name && $0.type == Record.cname }) {
            answers.append(alias)
            name = "dual.resolution.test" // the only CNAME's target
        }
        answers += Self.zone.filter { $0.name == name && $0.type == query.type }
        let nameExists = Self.zone.contains { $0.name == name }
        let rcode: UInt16 = nameExists ? 0 : 3 // NXDOMAIN
        var message: [UInt8] = []
        func append16(_ value: UInt16) { message += [UInt8(value >> 8), UInt8(value & 0xFF)] }
        append16(query.id)
        append16(0x8000 | 0x0400 | (query.flags & 0x0100) | 0x0080 | rcode) // QR, AA, RD copied, RA
        append16(1)
        append16(UInt16(answers.count))
        append16(0)
        append16(0)
        message += query.question
        for answer in answers {
            message += Self.encodeName(answer.name)
            append16(answer.type)
            append16(1) // IN
            message += [0, 0, 0, 60] // TTL
            append16(UInt16(answer.data.count))
            message += answer.data
        }
        return message
    }

    static func encodeName(_ name: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for label in name.split(separator: ".") {
            bytes.append(UInt8(label.utf8.count))
            bytes += label.utf8
        }
        return bytes + [0]
    }

    /// The in-addr.arpa or ip6.arpa name of an address.
    static func reverseName(_ address: IPAddress) -> String {
        switch address {
        case .v4(let v4):
            return v4.bytes.reversed().map(String.init).joined(separator: ".") + ".in-addr.arpa"
        case .v6(let v6):
            let nibbles = v6.bytes.reversed().flatMap { [$0 & 0xF, $0 >> 4] }
            return nibbles.map { String($0, radix: 16) }.joined(separator: ".") + ".ip6.arpa"
        }
    }
}

/// The parts of a DNS query the fake server needs.
struct DNSQuery {
    var id: UInt16
    var flags: UInt16
    /// The queried name in lower case, without the final dot.
    var name: String
    var type: UInt16
    /// The question section's bytes, echoed in the response.
    var question: [UInt8]

    init?(_ bytes: [UInt8]) {
        guard bytes.count > 12, bytes[4] == 0, bytes[5] == 1 else { return nil }
        id = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        flags = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        var index = 12
        var labels: [String] = []
        while index < bytes.count {
            let length = Int(bytes[index])
            index += 1
            if length == 0 { break }
            guard length < 64, index + length <= bytes.count else { return nil }
            labels.append(String(decoding: bytes[index..<index + length], as: UTF8.self).lowercased())
            index += length
        }
        guard index + 4 <= bytes.count else { return nil }
        name = labels.joined(separator: ".")
        type = UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])
        question = Array(bytes[12..<index + 4])
    }

    static func typeName(_ type: UInt16) -> String {
        switch type {
        case 1: return "A"
        case 5: return "CNAME"
        case 12: return "PTR"
        case 28: return "AAAA"
        default: return "TYPE\(type)"
        }
    }
}
