import SocketSyscalls

/// An entry of the services database (`/etc/services`): a named service, its port and its
/// transport protocol (`struct servent`).
public struct ServiceEntry: Hashable, Sendable, CustomStringConvertible {
    /// The official name, such as `http`.
    public var name: String
    /// Other names, such as `www`.
    public var aliases: [String]
    /// The port, in host byte order.
    public var port: UInt16
    /// The transport protocol's name, such as `tcp` or `udp`.
    public var protocolName: String

    /// Creates an entry.
    public init(name: String, aliases: [String], port: UInt16, protocolName: String) {
        self.name = name
        self.aliases = aliases
        self.port = port
        self.protocolName = protocolName
    }

    /// Looks up a service by name (or alias).
    ///
    /// The corresponding C function is `getservbyname_r(3)` (the thread-safe
    /// `getservbyname`).
    /// - Parameters:
    ///   - name: the service's name or alias, such as `"http"` or `"www"`.
    ///   - protocol: the transport, such as `"tcp"` or `"udp"`; `nil` for the first entry of
    ///     any transport.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` when the database has no such
    ///   service, or for text with a NUL byte (before the lookup).
    public init(named name: String, protocol: String? = nil) throws(SocketError) {
        let subject = name.replacingNULs() + (`protocol`.map { "/" + $0.replacingNULs() } ?? "")
        try validateDatabaseKey(name, kind: "service", operation: "getservbyname", subject: subject)
        if let `protocol` {
            try validateDatabaseKey(`protocol`, kind: "protocol", operation: "getservbyname", subject: subject)
        }
        let record: ServiceRecord?
        do {
            record = try Syscall.serviceEntry(name: name, protocol: `protocol`)
        } catch {
            throw SocketError("getservbyname", address: subject, errno: error)
        }
        guard let record else {
            throw SocketError.invalid("getservbyname", subject, "no such service in the services database")
        }
        self.init(record)
    }

    /// Looks up the service on a port.
    ///
    /// The corresponding C function is `getservbyport_r(3)` (the thread-safe
    /// `getservbyport`).
    /// - Parameters:
    ///   - port: the port, in host byte order.
    ///   - protocol: the transport, such as `"tcp"` or `"udp"`; `nil` for any.
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` when no service is listed on the
    ///   port, or for a protocol with a NUL byte (before the lookup).
    public init(port: UInt16, protocol: String? = nil) throws(SocketError) {
        let subject = String(port) + (`protocol`.map { "/" + $0.replacingNULs() } ?? "")
        if let `protocol` {
            try validateDatabaseKey(`protocol`, kind: "protocol", operation: "getservbyport", subject: subject)
        }
        let record: ServiceRecord?
        do {
            record = try Syscall.serviceEntry(port: port, protocol: `protocol`)
        } catch {
            throw SocketError("getservbyport", address: subject, errno: error)
        }
        guard let record else {
            throw SocketError.invalid("getservbyport", subject, "no service on this port in the services database")
        }
        self.init(record)
    }

    init(_ record: ServiceRecord) {
        self.init(name: record.name, aliases: record.aliases, port: record.port, protocolName: record.protocolName)
    }

    public var description: String {
        "\(name) \(port)/\(protocolName)" + (aliases.isEmpty ? "" : " (\(aliases.joined(separator: ", ")))")
    }
}

/// Service names and ports, from the services database (`/etc/services`).
public enum Service {
    /// The port of a named service: `Service.port(named: "http")` is 80.
    ///
    /// The corresponding C function is `getservbyname_r(3)`.
    /// - Throws: see ``ServiceEntry/init(named:protocol:)``.
    public static func port(named name: String, protocol: String? = nil) throws(SocketError) -> UInt16 {
        try ServiceEntry(named: name, protocol: `protocol`).port
    }

    /// The name of the service on a port: `Service.name(port: 22)` is `ssh`.
    ///
    /// The corresponding C function is `getservbyport_r(3)`.
    /// - Throws: see ``ServiceEntry/init(port:protocol:)``.
    public static func name(port: UInt16, protocol: String? = nil) throws(SocketError) -> String {
        try ServiceEntry(port: port, protocol: `protocol`).name
    }
}

/// An entry of the protocols database (`/etc/protocols`): an IP protocol's name and number
/// (`struct protoent`).
public struct IPProtocolEntry: Hashable, Sendable, CustomStringConvertible {
    /// The official name, such as `tcp`.
    public var name: String
    /// Other names, such as `TCP`.
    public var aliases: [String]
    /// The protocol number, such as ``SocketProtocol/tcp`` (6).
    public var number: SocketProtocol

    /// Creates an entry.
    public init(name: String, aliases: [String], number: SocketProtocol) {
        self.name = name
        self.aliases = aliases
        self.number = number
    }

    /// Looks up a protocol by name or alias.
    ///
    /// The corresponding C function is `getprotobyname_r(3)` (the thread-safe
    /// `getprotobyname`).
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` when the database has no such
    ///   protocol, or for a name with a NUL byte (before the lookup).
    public init(named name: String) throws(SocketError) {
        let subject = name.replacingNULs()
        try validateDatabaseKey(name, kind: "protocol", operation: "getprotobyname", subject: subject)
        let record: ProtocolRecord?
        do {
            record = try Syscall.protocolEntry(name: name)
        } catch {
            throw SocketError("getprotobyname", address: subject, errno: error)
        }
        guard let record else {
            throw SocketError.invalid("getprotobyname", subject, "no such protocol in the protocols database")
        }
        self.init(record)
    }

    /// Looks up a protocol by number.
    ///
    /// The corresponding C function is `getprotobynumber_r(3)` (the thread-safe
    /// `getprotobynumber`).
    /// - Throws: ``SocketError/Reason/invalidArgument(_:)`` when the database has no protocol
    ///   with that number.
    public init(number: SocketProtocol) throws(SocketError) {
        let subject = String(number.rawValue)
        let record: ProtocolRecord?
        do {
            record = try Syscall.protocolEntry(number: number.rawValue)
        } catch {
            throw SocketError("getprotobynumber", address: subject, errno: error)
        }
        guard let record else {
            throw SocketError.invalid("getprotobynumber", subject, "no such protocol number in the protocols database")
        }
        self.init(record)
    }

    init(_ record: ProtocolRecord) {
        self.init(name: record.name, aliases: record.aliases, number: SocketProtocol(rawValue: record.number))
    }

    /// The number of a named protocol: `IPProtocolEntry.number(named: "tcp")` is
    /// ``SocketProtocol/tcp`` (6).
    ///
    /// The corresponding C function is `getprotobyname_r(3)`.
    public static func number(named name: String) throws(SocketError) -> SocketProtocol {
        try IPProtocolEntry(named: name).number
    }

    /// The name of a protocol number: `IPProtocolEntry.name(number: .udp)` is `udp`.
    ///
    /// The corresponding C function is `getprotobynumber_r(3)`.
    public static func name(number: SocketProtocol) throws(SocketError) -> String {
        try IPProtocolEntry(number: number).name
    }

    public var description: String {
        "\(name) \(number.rawValue)" + (aliases.isEmpty ? "" : " (\(aliases.joined(separator: ", ")))")
    }
}

/// Rejects a services/protocols database key that C would misread (a NUL byte cuts it short).
func validateDatabaseKey(_ text: String, kind: String, operation: String, subject: String) throws(SocketError) {
    if text.utf8.contains(0) {
        throw SocketError.invalid(operation, subject, "\(kind) name contains a NUL byte")
    }
}
