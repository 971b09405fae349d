import ArgumentParser
import Sockets

// Command-line values that several subcommands take: -4/-6, ports, host names, seconds.

/// `-4` / `-6`.
struct FamilyOptions: ParsableArguments {
    @Flag(name: .customShort("4"), help: "Use IPv4 only.")
    var ipv4 = false

    @Flag(name: .customShort("6"), help: "Use IPv6 only.")
    var ipv6 = false

    func validate() throws {
        if ipv4 && ipv6 { throw ValidationError("-4 and -6 cannot be used together") }
    }

    /// The family asked for, or `nil` for either.
    var family: SocketDomain? {
        if ipv4 { return .inet }
        if ipv6 { return .inet6 }
        return nil
    }
}

/// Parses a port: a number 0...65535 or a service name from /etc/services.
func parsePort(_ text: String, protocol: String, allowZero: Bool) throws(ToolError) -> UInt16 {
    if !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
        guard text.utf8.count <= 6, let value = Int(text), let port = UInt16(exactly: value) else {
            throw ToolError.usage("port \(text) is outside 0...65535")
        }
        if port == 0 && !allowZero { throw ToolError.usage("port 0 cannot be connected to") }
        return port
    }
    if text.hasPrefix("-"), Int(text) != nil {
        throw ToolError.usage("port \(text) is outside 0...65535")
    }
    guard !text.isEmpty, text.utf8.count < 64, let port = try? ServiceEntry(named: text, protocol: `protocol`).port else {
        throw ToolError.usage("unknown port or service \"\(text)\" (expected a number 0...65535 or a name from /etc/services)")
    }
    return port
}

/// Whether a host is written as an address (so it must parse as one, with no name lookup).
func looksNumeric(_ host: String) -> Bool {
    host.contains(":") || (!host.isEmpty && host.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E })
}

/// Rejects text that cannot be a DNS host name before it reaches a resolver: letters,
/// digits, `-`, `_` and `.` only, at most 253 bytes, labels of 1...63 bytes.
func validateHostName(_ host: String) throws(ToolError) {
    let allowed = host.utf8.allSatisfy { byte in
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == 0x2D || byte == 0x5F || byte == 0x2E
    }
    let labels = host.split(separator: ".", omittingEmptySubsequences: false)
    let trimmed = host.hasSuffix(".") ? labels.dropLast() : labels[...]
    guard allowed, !host.hasPrefix("-"), host.utf8.count <= 253, !trimmed.isEmpty,
        trimmed.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 63 })
    else {
        throw ToolError.usage("\"\(host.prefix(80))\" is not a valid host name or address")
    }
}

/// Parses a number of seconds given on the command line into a duration.
func seconds(_ value: Double, option: String, minimum: Double = 0.001, maximum: Double = 86_400 * 365) throws(ToolError) -> Duration {
    guard value.isFinite, value >= minimum, value <= maximum else {
        throw ToolError.usage("\(option) \(value) is outside \(minimum)...\(maximum) seconds")
    }
    return .nanoseconds(Int64(value * 1e9))
}
