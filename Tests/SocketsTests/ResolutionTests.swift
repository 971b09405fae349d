import Foundation
import Glibc
import Sockets
import SocketSyscalls
import Synchronization
import Testing

// Lookups here use only /etc/hosts, /etc/services, /etc/protocols and numeric addresses,
// except in the private network namespace of `PrivateResolver` (ResolutionSupport.swift),
// where a fake DNS server answers. No test sends a DNS query to the machine's resolver, unless
// that namespace cannot be made (not root), where the one unknown-host test asks it once.

/// Addresses of an entry list as text (`127.0.0.1`, `::1`, `fe80::1%lo`).
private func hostTexts(_ entries: [AddressInfo]) -> [String] {
    entries.map { entry in
        switch entry.address {
        case .ipv4(let address): return address.address.description
        case .ipv6(let address): return address.hostDescription
        default: return entry.address.description
        }
    }
}

/// The addresses /etc/hosts gives `localhost`.
private func localhostAddressesFromHostsFile() -> Set<String> {
    Set(hostsFileEntries().filter { $0.names.contains("localhost") }.map(\.address))
}

/// The first name /etc/hosts gives an address (what a reverse lookup returns), if any.
private func hostsFileName(for address: String) -> String? {
    hostsFileEntries().first { $0.address == address }?.names.first
}

/// The name /etc/services gives a port and protocol, if any.
private func servicesFileName(port: UInt16, protocol: String) -> String? {
    servicesFileEntries().first { $0.port == port && $0.protocol == `protocol` }?.name
}

/// Expects `body` to fail with an `EAI_*` code; returns the error.
@discardableResult
private func expectAddressInfoError(
    _ expected: AddressInfoError, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(SocketError) -> Void
) -> SocketError? {
    do {
        try body()
        Issue.record("expected \(expected.name), but the lookup succeeded", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.addressInfoError == expected, "\(error)", sourceLocation: sourceLocation)
        #expect(error.description.hasSuffix("(\(expected.name))"), "\(error)", sourceLocation: sourceLocation)
        return error
    }
}

/// Expects `body` to be rejected before any lookup; returns the message.
@discardableResult
private func expectInvalid(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(SocketError) -> Void) -> String {
    do {
        try body()
        Issue.record("expected the input to be rejected", sourceLocation: sourceLocation)
        return ""
    } catch {
        guard case .invalidArgument = error.reason else {
            Issue.record("expected invalidArgument, got \(error)", sourceLocation: sourceLocation)
            return ""
        }
        return error.description
    }
}

@Suite(.noDescriptorLeaks())
struct ResolutionTests {
    // MARK: getaddrinfo

    @Test func localhostGivesTheAddressesInHostsFile() throws {
        let expected = localhostAddressesFromHostsFile()
        try #require(!expected.isEmpty, "/etc/hosts has no localhost line")
        let entries = try AddressInfo.lookup(host: "localhost", service: nil, type: .stream)
        #expect(Set(hostTexts(entries)) == expected)
        #expect(Set(hostTexts(entries)).isSubset(of: ["127.0.0.1", "::1"]))
        for entry in entries {
            #expect(entry.type == .stream)
            #expect(entry.protocol == .tcp)
            #expect(entry.address.port == 0)
            #expect(entry.domain == entry.address.domain)
            #expect(entry.canonicalName == nil)
        }
        // Filtering by family, only for families the file lists (anything else would ask DNS).
        if expected.contains("127.0.0.1") {
            let v4 = try AddressInfo.lookup(host: "localhost", service: nil, family: .inet, type: .stream)
            #expect(hostTexts(v4) == ["127.0.0.1"])
            #expect(v4.allSatisfy { $0.domain == .inet })
        }
        if expected.contains("::1") {
            let v6 = try AddressInfo.lookup(host: "localhost", service: nil, family: .inet6, type: .stream)
            #expect(hostTexts(v6) == ["::1"])
        }
    }

    @Test func numericHosts() throws {
        let v4 = try AddressInfo.lookup(host: "127.0.0.1", service: "80", type: .stream, flags: .numericHost)
        #expect(v4 == [AddressInfo(domain: .inet, type: .stream, protocol: .tcp, address: .ipv4(.loopback, port: 80))])

        let v6 = try AddressInfo.lookup(host: "2001:db8::1", port: 443, type: .datagram, flags: .numericHost)
        #expect(v6.map(\.address) == [.ipv6(IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), port: 443)])
        #expect(v6.map(\.protocol) == [.udp])

        // A zone by interface name becomes the scope id.
        let loopbackIndex = try #require(Syscall.interfaceIndex(name: "lo"))
        let zoned = try AddressInfo.lookup(host: "fe80::1%lo", service: nil, type: .stream, flags: .numericHost)
        guard case .ipv6(let zonedAddress) = try #require(zoned.first?.address) else {
            Issue.record("expected an IPv6 address, got \(zoned)")
            return
        }
        #expect(zonedAddress.scopeID == loopbackIndex)
        #expect(zonedAddress.address == IPv6Address(0xfe80, 0, 0, 0, 0, 0, 0, 1))

        // With AI_NUMERICHOST a name, or anything that is not an address, is not looked up.
        expectAddressInfoError(.noName) { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: "localhost", service: nil, flags: .numericHost)
        }
        expectAddressInfoError(.noName) { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: "127.0.0.256", service: nil, flags: .numericHost)
        }
        // An IPv4 address when only IPv6 is wanted.
        expectAddressInfoError(.addressFamily) { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: "127.0.0.1", service: nil, family: .inet6, flags: .numericHost)
        }
    }

    @Test func v4MappedAddresses() throws {
        let mapped = try AddressInfo.lookup(host: "127.0.0.1", port: 80, family: .inet6, type: .stream, flags: [.numericHost, .v4Mapped])
        #expect(mapped.map(\.address) == [.ipv6(IPv6Address(ipv4Mapped: .loopback), port: 80)])
        #expect(mapped.first?.domain == .inet6)
        // AI_ALL with a real IPv6 address changes nothing: there is no IPv4 address to add.
        let native = try AddressInfo.lookup(host: "::1", port: 80, family: .inet6, type: .stream, flags: [.numericHost, .v4Mapped, .all])
        #expect(native.map(\.address) == [.ipv6(.loopback, port: 80)])
    }

    @Test func noHostGivesLoopbackOrWithPassiveTheWildcard() throws {
        let passive = try AddressInfo.lookup(host: nil, service: "8080", type: .stream, flags: .passive)
        #expect(Set(passive.map(\.address)) == [.ipv4(.any, port: 8080), .ipv6(.any, port: 8080)])
        let active = try AddressInfo.lookup(host: nil, service: "8080", type: .stream)
        #expect(Set(active.map(\.address)) == [.ipv4(.loopback, port: 8080), .ipv6(.loopback, port: 8080)])
        let passiveV4 = try AddressInfo.lookup(host: nil, port: 9, family: .inet, type: .datagram, flags: .passive)
        #expect(passiveV4 == [AddressInfo(domain: .inet, type: .datagram, protocol: .udp, address: .ipv4(.any, port: 9))])
    }

    @Test func servicesByNameAndNumber() throws {
        let expectedHTTP = try #require(servicesFileEntries().first { $0.name == "http" && $0.protocol == "tcp" }).port
        #expect(expectedHTTP == 80)
        let http = try AddressInfo.lookup(host: "127.0.0.1", service: "http", flags: .numericHost)
        #expect(!http.isEmpty)
        #expect(http.allSatisfy { $0.address.port == 80 })
        // An alias works as well as the name.
        let www = try AddressInfo.lookup(host: "127.0.0.1", service: "www", type: .stream, flags: .numericHost)
        #expect(www.map(\.address) == [.ipv4(.loopback, port: 80)])
        let numeric = try AddressInfo.lookup(host: "127.0.0.1", service: "8080", type: .stream, flags: [.numericHost, .numericService])
        #expect(numeric.map(\.address) == [.ipv4(.loopback, port: 8080)])
        // AI_NUMERICSERV refuses a name.
        expectAddressInfoError(.noName) { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: "127.0.0.1", service: "http", flags: [.numericHost, .numericService])
        }
        // A service with no entry for the socket type.
        let httpOverUDP = servicesFileEntries().contains { $0.name == "http" && $0.protocol == "udp" }
        if !httpOverUDP {
            expectAddressInfoError(.service) { () throws(SocketError) in
                _ = try AddressInfo.lookup(host: "127.0.0.1", service: "http", type: .datagram, flags: .numericHost)
            }
        }
        expectAddressInfoError(.service) { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: "127.0.0.1", service: "no-such-service-here", flags: .numericHost)
        }
    }

    @Test func typeProtocolAndFamilyHintsFilter() throws {
        // No type: one entry per type glibc knows for an address without a service.
        let all = try AddressInfo.lookup(host: "127.0.0.1", service: nil, flags: .numericHost)
        #expect(Set(all.map(\.type)) == [.stream, .datagram, .raw])
        #expect(Set(all.map(\.protocol)) == [.tcp, .udp, .default])

        let datagram = try AddressInfo.lookup(host: "127.0.0.1", service: nil, type: .datagram, flags: .numericHost)
        #expect(datagram.map(\.type) == [.datagram])
        #expect(datagram.map(\.protocol) == [.udp])

        let tcp = try AddressInfo.lookup(host: "127.0.0.1", service: nil, protocol: .tcp, flags: .numericHost)
        #expect(tcp.map(\.type) == [.stream])

        // "domain" is both tcp and udp in /etc/services.
        let domain = try AddressInfo.lookup(host: nil, service: "domain", family: .inet)
        #expect(Set(domain.map(\.type)) == [.stream, .datagram])
        #expect(domain.allSatisfy { $0.domain == .inet && $0.address == .ipv4(.loopback, port: 53) })
        let domainV6 = try AddressInfo.lookup(host: nil, service: "domain", family: .inet6, type: .datagram)
        #expect(domainV6 == [AddressInfo(domain: .inet6, type: .datagram, protocol: .udp, address: .ipv6(.loopback, port: 53))])
    }

    @Test func canonicalName() throws {
        let expected = try #require(hostsFileName(for: "127.0.0.1"), "/etc/hosts does not name 127.0.0.1")
        let entries = try AddressInfo.lookup(host: "localhost", service: nil, family: .inet, type: .stream, flags: .canonicalName)
        #expect(!entries.isEmpty)
        // glibc's files backend gives the first name on the address's line.
        #expect(entries.allSatisfy { $0.canonicalName == hostsFileName(for: "127.0.0.1") ?? expected })
        #expect(entries.first?.description.hasSuffix("(\(expected))") == true)

        let numeric = try AddressInfo.lookup(host: "127.0.0.1", service: nil, type: .stream, flags: [.numericHost, .canonicalName])
        #expect(numeric.map(\.canonicalName) == ["127.0.0.1"])

        // The IDN flags leave an ASCII name as it is (glibc needs no libidn2 for that).
        let idn = try AddressInfo.lookup(host: "localhost", service: nil, family: .inet, type: .stream, flags: [.canonicalName, .idn, .canonicalIDN])
        #expect(idn.map(\.canonicalName) == [expected])
        #expect(try NameInfo.lookup(.ipv4(.loopback, port: 0), flags: [.idn, .nameRequired]).host == expected)
        #expect(AddressInfoFlags([.canonicalName, .idn, .numericService]).description == "AI_CANONNAME|AI_IDN|AI_NUMERICSERV")
        #expect(NameInfoFlags([.nameRequired, .datagram]).description == "NI_NAMEREQD|NI_DGRAM")
    }

    @Test func errorCodesAndMessages() throws {
        // AI_CANONNAME needs a host.
        let badFlags = expectAddressInfoError(.badFlags) { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: nil, service: "80", flags: .canonicalName)
        }
        #expect(badFlags?.description == "getaddrinfo(*:80): \(AddressInfoError.badFlags.text) (EAI_BADFLAGS)")
        #expect(badFlags?.isHostNotFound == false)
        // A flag glibc does not know.
        expectAddressInfoError(.badFlags) { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: "127.0.0.1", service: nil, flags: AddressInfoFlags(rawValue: 0x4000_0000))
        }
        // Families getaddrinfo does not handle.
        let badFamily = expectAddressInfoError(.family) { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: "127.0.0.1", service: nil, family: .unix)
        }
        #expect(badFamily?.description == "getaddrinfo(127.0.0.1): \(AddressInfoError.family.text) (EAI_FAMILY)")
        expectAddressInfoError(.family) { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: "::1", service: "80", family: SocketDomain(rawValue: 12345))
        }
        // A socket type it does not handle.
        expectAddressInfoError(.socketType) { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: "127.0.0.1", service: "80", type: SocketType(rawValue: 99))
        }
        // Neither host nor service.
        let nothing = expectAddressInfoError(.noName) { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: nil, service: nil)
        }
        #expect(nothing?.description == "getaddrinfo(*): \(AddressInfoError.noName.text) (EAI_NONAME)")
        #expect(nothing?.isHostNotFound == true)
        #expect(nothing?.isTemporaryLookupFailure == false)
        // The text is gai_strerror's, and the IPv6 host is bracketed before the service.
        let service = expectAddressInfoError(.service) { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: "::1", service: "nosuchservice", flags: .numericHost)
        }
        #expect(service?.description == "getaddrinfo([::1]:nosuchservice): Servname not supported for ai_socktype (EAI_SERVICE)")
        #expect(AddressInfoError.noName.text == "Name or service not known")
        // EAI_SYSTEM carries an errno, named next to the code.
        let system = SocketError("getaddrinfo", address: "example.com", reason: .addressInfo(code: AddressInfoError.system.rawValue, systemError: .tooManyOpenFiles))
        #expect(system.description == "getaddrinfo(example.com): Too many open files (EAI_SYSTEM: EMFILE)")
        #expect(system.errno == .tooManyOpenFiles)
        #expect(AddressInfoError.again.name == "EAI_AGAIN")
    }

    @Test func inputIsCheckedBeforeTheLookup() throws {
        let nul = expectInvalid { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: "localhost\0.evil.example", service: nil)
        }
        #expect(nul.contains("NUL"))
        #expect(nul.contains("localhost\\0.evil.example"))
        expectInvalid { () throws(SocketError) in _ = try AddressInfo.lookup(host: "localhost", service: "ht\0tp") }
        expectInvalid { () throws(SocketError) in _ = try AddressInfo.lookup(host: "", service: "80") }
        expectInvalid { () throws(SocketError) in _ = try AddressInfo.lookup(host: "localhost", service: "") }
        let long = expectInvalid { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: String(repeating: "a", count: 1025), service: nil)
        }
        #expect(long.contains("1025 bytes; the limit is 1024"))
        // 1024 bytes is allowed through to getaddrinfo (numeric only, so nothing asks DNS).
        expectAddressInfoError(.noName) { () throws(SocketError) in
            _ = try AddressInfo.lookup(host: String(repeating: "a", count: 1024), service: nil, flags: .numericHost)
        }
        expectInvalid { () throws(SocketError) in _ = try HostEntry.byName("") }
        expectInvalid { () throws(SocketError) in _ = try Service.port(named: "ss\0h") }
        expectInvalid { () throws(SocketError) in _ = try Service.port(named: "ssh", protocol: "t\0cp") }
        expectInvalid { () throws(SocketError) in _ = try IPProtocolEntry.number(named: "t\0cp") }
        let longName = expectInvalid { () throws(SocketError) in try setHostName(String(repeating: "h", count: 65)) }
        #expect(longName.contains("65 bytes; the limit is 64"))
        expectInvalid { () throws(SocketError) in try setHostName("a\0b") }
    }

    // MARK: getnameinfo

    @Test func nameInfoNumericAndNamed() throws {
        let address = SocketAddress.ipv4(.loopback, port: 80)
        let numeric = try NameInfo.lookup(address, flags: [.numericHost, .numericService])
        #expect(numeric.host == "127.0.0.1")
        #expect(numeric.service == "80")

        let expectedHost = try #require(hostsFileName(for: "127.0.0.1"))
        let expectedService = try #require(servicesFileName(port: 80, protocol: "tcp"))
        let named = try NameInfo.lookup(address)
        #expect(named.host == expectedHost)
        #expect(named.service == expectedService)

        let v6 = try NameInfo.lookup(.ipv6(.loopback, port: 22), flags: .numericHost)
        #expect(v6.host == "::1")
        #expect(v6.service == servicesFileName(port: 22, protocol: "tcp"))
        // A port with no service comes back as a number.
        let unnamedPort = try #require((40000...40100).first { port in servicesFileName(port: UInt16(port), protocol: "tcp") == nil })
        #expect(try NameInfo.lookup(.ipv4(.loopback, port: UInt16(unnamedPort)), flags: .numericHost).service == String(unnamedPort))
        // The zone of a link-local address is printed by name.
        let loopbackIndex = try #require(Syscall.interfaceIndex(name: "lo"))
        let zoned = try NameInfo.lookup(.ipv6(IPv6Address(0xfe80, 0, 0, 0, 0, 0, 0, 1), port: 0, scopeID: loopbackIndex), flags: [.numericHost, .numericService])
        #expect(zoned.host == "fe80::1%lo")
    }

    @Test func nameInfoDatagramServicesAndUnixAddresses() throws {
        // Port 514 is "shell" over TCP and "syslog" over UDP in Debian's /etc/services.
        let tcpName = try #require(servicesFileName(port: 514, protocol: "tcp"))
        let udpName = try #require(servicesFileName(port: 514, protocol: "udp"))
        try #require(tcpName != udpName, "/etc/services gives 514 the same name for tcp and udp")
        let address = SocketAddress.ipv4(.loopback, port: 514)
        #expect(try NameInfo.lookup(address, flags: .numericHost).service == tcpName)
        #expect(try NameInfo.lookup(address, flags: [.numericHost, .datagram]).service == udpName)

        // For a Unix address glibc gives this machine's name (or "localhost" when numeric)
        // and the path.
        let path = "/tmp/resolution-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let unix = try NameInfo.lookup(.unix(path: path))
        #expect(unix.host == (try hostName()))
        #expect(unix.service == path)
        #expect(try NameInfo.lookup(.unix(path: path), flags: .numericHost).host == "localhost")
    }

    @Test func nameInfoErrors() throws {
        let badFlags = expectAddressInfoError(.badFlags) { () throws(SocketError) in
            _ = try NameInfo.lookup(.ipv4(.loopback, port: 80), flags: NameInfoFlags(rawValue: 0x4000))
        }
        #expect(badFlags?.description == "getnameinfo(127.0.0.1:80): \(AddressInfoError.badFlags.text) (EAI_BADFLAGS)")
        // A family getnameinfo does not handle (AF_PACKET).
        let packet = try RawSocketAddress(bytes: [UInt8(AF_PACKET), 0] + [UInt8](repeating: 0, count: 18))
        expectAddressInfoError(.family) { () throws(SocketError) in
            _ = try NameInfo.lookup(.other(packet))
        }
    }

    // MARK: python3 as an oracle

    @Test func agreesWithPython() throws {
        struct Query: Encodable {
            var kind: String
            var host: String?
            var service: String?
            var family: Int32 = 0
            var type: Int32 = 0
            var proto: Int32 = 0
            var flags: Int32 = 0
            var port: UInt16 = 0
        }
        struct Answer: Decodable, Equatable {
            var ok: [[String]]?
            var error: Int32?
        }
        let AI_PASSIVE: Int32 = 1, AI_CANONNAME: Int32 = 2, AI_NUMERICHOST: Int32 = 4, AI_V4MAPPED: Int32 = 8
        let AI_ADDRCONFIG: Int32 = 0x20, AI_NUMERICSERV: Int32 = 0x400
        let stream = SocketType.stream.rawValue, datagram = SocketType.datagram.rawValue
        let queries: [Query] = [
            Query(kind: "gai", host: "localhost", service: "http"),
            Query(kind: "gai", host: "localhost", service: nil, family: AF_INET, type: stream, flags: AI_CANONNAME),
            Query(kind: "gai", host: "localhost", service: "80", type: stream, flags: AI_ADDRCONFIG),
            Query(kind: "gai", host: nil, service: "8080", type: stream, flags: AI_PASSIVE),
            Query(kind: "gai", host: nil, service: "domain"),
            Query(kind: "gai", host: "127.0.0.1", service: nil, flags: AI_NUMERICHOST),
            Query(kind: "gai", host: "::1", service: "22", family: AF_INET6, type: datagram, flags: AI_NUMERICHOST | AI_NUMERICSERV),
            Query(kind: "gai", host: "127.0.0.1", service: "80", family: AF_INET6, flags: AI_NUMERICHOST | AI_V4MAPPED),
            Query(kind: "gai", host: "fe80::1%lo", service: "80", type: stream, flags: AI_NUMERICHOST),
            Query(kind: "gai", host: "localhost", service: "nosuchservice"),
            Query(kind: "gai", host: nil, service: nil),
            Query(kind: "gai", host: "127.0.0.1", service: "80", family: 12345),
            Query(kind: "gai", host: nil, service: "80", flags: AI_CANONNAME),
            Query(kind: "gni", host: "127.0.0.1", port: 80),
            Query(kind: "gni", host: "127.0.0.1", flags: 1 | 2, port: 80),
            Query(kind: "gni", host: "127.0.0.1", flags: 0x10, port: 514),
            Query(kind: "gni", host: "127.0.0.1", flags: 0x04, port: 22),
            Query(kind: "gni", host: "::1", flags: 1 | 0x10, port: 53),
            Query(kind: "gni", host: "127.0.0.1", flags: 0x4000, port: 80),
        ]
        let script = """
            import json, socket, sys
            out = []
            def host_text(a):
                return a[0] + ("%" + socket.if_indextoname(a[3]) if len(a) > 3 and a[3] else "")
            for q in json.loads(sys.argv[1]):
                try:
                    if q["kind"] == "gai":
                        rows = socket.getaddrinfo(q.get("host"), q.get("service"), q["family"], q["type"], q["proto"], q["flags"])
                        out.append({"ok": [[str(int(f)), str(int(t)), str(p), c, host_text(a), str(a[1])] for f, t, p, c, a in rows]})
                    else:
                        h = q["host"]
                        address = (h, q["port"], 0, 0) if ":" in h else (h, q["port"])
                        out.append({"ok": [list(socket.getnameinfo(address, q["flags"]))]})
                except socket.gaierror as e:
                    out.append({"error": e.errno})
            print(json.dumps(out))
            """
        let input = String(decoding: try JSONEncoder().encode(queries), as: UTF8.self)
        let expected = try JSONDecoder().decode([Answer].self, from: Data(try runPython(script, [input]).utf8))
        try #require(expected.count == queries.count)

        for (query, oracle) in zip(queries, expected) {
            let ours: Answer
            do {
                if query.kind == "gai" {
                    let entries = try AddressInfo.lookup(
                        host: query.host, service: query.service, family: SocketDomain(rawValue: query.family),
                        type: query.type == 0 ? nil : SocketType(rawValue: query.type),
                        protocol: query.proto == 0 ? nil : SocketProtocol(rawValue: query.proto),
                        flags: AddressInfoFlags(rawValue: query.flags))
                    ours = Answer(ok: zip(entries.indices, entries).map { index, entry in
                        [String(entry.domain.rawValue), String(entry.type.rawValue), String(entry.protocol.rawValue),
                         index == 0 ? entry.canonicalName ?? "" : "", hostTexts([entry])[0], String(entry.address.port ?? 0)]
                    })
                } else {
                    let host = query.host ?? ""
                    let address = try SocketAddress(host: host, port: query.port)
                    let (name, service) = try NameInfo.lookup(address, flags: NameInfoFlags(rawValue: query.flags))
                    ours = Answer(ok: [[name, service]])
                }
            } catch {
                ours = Answer(error: error.addressInfoCode)
            }
            #expect(ours == oracle, "\(query)")
        }
    }

    // MARK: Host entries (gethostbyname / gethostbyaddr)

    @Test func hostEntriesFromTheHostsFile() throws {
        let localhost = localhostAddressesFromHostsFile()
        try #require(localhost.contains("127.0.0.1"))
        let v4 = try HostEntry.byName("localhost", family: .inet)
        #expect(v4.addresses == [.v4(.loopback)])
        #expect(v4.name == hostsFileName(for: "127.0.0.1"))
        #expect(v4.aliases.isEmpty || v4.aliases == ["localhost"])

        let both = try HostEntry.byName("localhost")
        #expect(Set(both.addresses.map(\.description)) == localhost)

        // Numeric hosts, IPv4 and IPv6, come back as they are.
        let numeric4 = try HostEntry.byName("127.0.0.1")
        #expect(numeric4 == HostEntry(name: "127.0.0.1", aliases: [], addresses: [.v4(.loopback)]))
        let numeric6 = try HostEntry.byName("::1")
        #expect(numeric6 == HostEntry(name: "::1", aliases: [], addresses: [.v6(.loopback)]))
        let mapped = try HostEntry.byName("::ffff:127.0.0.1", family: .inet6)
        #expect(mapped.addresses == [.v6(IPv6Address(ipv4Mapped: .loopback))])

        let reverse = try HostEntry.byAddress(.v4(.loopback))
        #expect(reverse.name == hostsFileName(for: "127.0.0.1"))
        #expect(reverse.addresses == [.v4(.loopback)])
        // An IPv6 reverse lookup stays local only if /etc/hosts names the address.
        if let v6Line = hostsFileEntries().first(where: { $0.address.contains(":") }), let v6 = try? IPAddress(v6Line.address) {
            #expect(try HostEntry.byAddress(v6).name == v6Line.names.first)
        }
    }

    // MARK: Services and protocols

    @Test func servicesDatabase() throws {
        #expect(try Service.port(named: "ssh") == 22)
        #expect(try Service.port(named: "ssh", protocol: "tcp") == 22)
        #expect(try Service.name(port: 22) == "ssh")
        #expect(try Service.name(port: 22, protocol: "tcp") == "ssh")

        let http = try ServiceEntry(named: "http", protocol: "tcp")
        let httpLine = try #require(servicesFileEntries().first { $0.name == "http" && $0.protocol == "tcp" })
        #expect(http == ServiceEntry(name: "http", aliases: httpLine.aliases, port: 80, protocolName: "tcp"))
        #expect(try ServiceEntry(named: "www", protocol: "tcp") == http)

        let udp = try ServiceEntry(port: 514, protocol: "udp")
        #expect(udp.name == servicesFileName(port: 514, protocol: "udp"))
        #expect(udp.protocolName == "udp")

        // Every tcp entry of the file agrees with the database lookup, both ways.
        for line in servicesFileEntries().prefix(40) where line.protocol == "tcp" {
            #expect(try Service.port(named: line.name, protocol: "tcp") == line.port, "\(line.name)")
        }

        do {
            _ = try Service.port(named: "no-such-service", protocol: "tcp")
            Issue.record("an unknown service was found")
        } catch {
            #expect(error.description == "getservbyname(no-such-service/tcp): no such service in the services database")
        }
        let unnamedPort = try #require((40000...40100).first { port in servicesFileName(port: UInt16(port), protocol: "udp") == nil })
        #expect(throws: SocketError.self) { try Service.name(port: UInt16(unnamedPort), protocol: "udp") }
    }

    @Test func protocolsDatabase() throws {
        #expect(try IPProtocolEntry.number(named: "tcp") == .tcp)
        #expect(try IPProtocolEntry.number(named: "tcp").rawValue == 6)
        #expect(try IPProtocolEntry.number(named: "udp") == .udp)
        #expect(try IPProtocolEntry.name(number: .tcp) == "tcp")
        #expect(try IPProtocolEntry.name(number: .udp) == "udp")
        #expect(try IPProtocolEntry.name(number: .icmpv6) == "ipv6-icmp")

        let tcpLine = try #require(protocolsFileEntries().first { $0.name == "tcp" })
        let tcp = try IPProtocolEntry(named: "tcp")
        #expect(tcp == IPProtocolEntry(name: "tcp", aliases: tcpLine.aliases, number: .tcp))
        // Aliases find the entry too ("TCP").
        for alias in tcpLine.aliases {
            #expect(try IPProtocolEntry(named: alias) == tcp)
        }
        // By number, the first line with the number wins.
        var seen: Set<Int32> = []
        for line in protocolsFileEntries() where seen.insert(line.number).inserted {
            #expect(try IPProtocolEntry(number: SocketProtocol(rawValue: line.number)).name == line.name)
        }
        do {
            _ = try IPProtocolEntry(number: SocketProtocol(rawValue: 254))
            Issue.record("protocol 254 has an entry")
        } catch {
            #expect(error.description == "getprotobynumber(254): no such protocol number in the protocols database")
        }
        #expect(throws: SocketError.self) { try IPProtocolEntry.number(named: "no-such-protocol") }
    }

    // MARK: Host name

    @Test func hostNameMatchesTheKernel() throws {
        let kernel = try #require(fileText("/proc/sys/kernel/hostname"))
        #expect(try hostName() == kernel)
        #expect(try hostName() == (try runPython("import socket; print(socket.gethostname())")).trimmingCharacters(in: .newlines))
    }

    @Test(.requires(.utsNamespace))
    func setHostNameInAPrivateUTSNamespace() async throws {
        let before = try hostName()
        let newName = "resolution-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        let seen: Result<(String, String), any Error> = await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(returning: Result {
                    // Only this thread moves to the new namespace.
                    try Syscall.unshare(Syscall.newUTSNamespace)
                    try setHostName(newName)
                    // /proc/sys/kernel/hostname shows the reading thread's namespace.
                    return (try hostName(), fileText("/proc/sys/kernel/hostname") ?? "")
                })
            }.start()
        }
        let (inside, kernelInside) = try seen.get()
        #expect(inside == newName)
        #expect(kernelInside == newName)
        #expect(try hostName() == before)
    }

    // MARK: Thread safety

    @Test func concurrentLookupsAgree() async throws {
        @Sendable func snapshot() throws -> [String] {
            [
                hostTexts(try AddressInfo.lookup(host: "localhost", service: "http", type: .stream)).joined(separator: ","),
                "\(try NameInfo.lookup(.ipv4(.loopback, port: 80)))",
                "\(try NameInfo.lookup(.ipv6(.loopback, port: 514), flags: [.numericHost, .datagram]))",
                try HostEntry.byAddress(.v4(.loopback)).description,
                try HostEntry.byName("127.0.0.1").description,
                String(try Service.port(named: "ssh")),
                try Service.name(port: 53, protocol: "udp"),
                try IPProtocolEntry(named: "udp").description,
                try hostName(),
            ]
        }
        let reference = try snapshot()

        // Threads: eight at once, 100 rounds each.
        let mismatches = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        let threadCount = 8
        for _ in 0..<threadCount {
            Thread {
                for _ in 0..<100 {
                    do {
                        let current = try snapshot()
                        if current != reference { mismatches.withLock { $0.append(current.joined(separator: " | ")) } }
                    } catch {
                        mismatches.withLock { $0.append("\(error)") }
                    }
                }
                done.signal()
            }.start()
        }
        for _ in 0..<threadCount { done.wait() }
        #expect(mismatches.withLock { $0 }.isEmpty, "\(mismatches.withLock { $0.prefix(3) })")

        // Tasks: results are Sendable, so they cross task boundaries.
        let results = try await withThrowingTaskGroup(of: [AddressInfo].self) { group in
            for _ in 0..<16 {
                group.addTask { try AddressInfo.lookup(host: "localhost", service: "ssh", type: .stream) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 16)
        #expect(Set(results.map { hostTexts($0) }).count == 1)
        #expect(results.allSatisfy { $0.allSatisfy { $0.address.port == 22 } })
    }
}

// MARK: - Lookups that would ask DNS, answered in a private namespace

@Suite(.noDescriptorLeaks())
struct ResolutionOverDNSTests {
    /// The one unknown-host lookup. In the private namespace the fake server answers NXDOMAIN;
    /// without it (not root) the machine's resolver is asked once, and may also time out.
    @Test func unknownHostFailsWithAClearMessage() async throws {
        let host = "nosuch-\(getpid()).invalid"
        let lookup: @Sendable () -> SocketError? = {
            do throws(SocketError) {
                _ = try AddressInfo.lookup(host: host, service: nil, type: .stream)
                return nil
            } catch {
                return error
            }
        }
        if PrivateResolver.isAvailable {
            let (error, queries) = try await PrivateResolver.run(lookup)
            let failure = try #require(error, "an unknown host resolved")
            #expect(failure.addressInfoError == .noName)
            #expect(failure.isHostNotFound)
            #expect(failure.description == "getaddrinfo(\(host)): Name or service not known (EAI_NONAME)")
            // The question really went to the (fake) DNS server.
            #expect(queries.contains("\(host) A"))
        } else {
            let failure = try #require(lookup(), "an unknown host resolved")
            let code = try #require(failure.addressInfoError)
            #expect(code == .noName || code == .again, "\(failure)")
            #expect(failure.description == "getaddrinfo(\(host)): \(code.text) (\(code.name))")
        }
    }

    @Test(.enabled(if: PrivateResolver.isAvailable, "\(PrivateResolver.unavailableReason ?? "")"))
    func nameRequiredFailsForAnAddressWithoutAName() async throws {
        let unnamed = IPv4Address(192, 0, 2, 99)
        let (outcome, queries) = try await PrivateResolver.run { () -> [String] in
            var results: [String] = []
            // Without NI_NAMEREQD the numeric form comes back.
            results.append((try? NameInfo.lookup(.ipv4(unnamed, port: 80)).host) ?? "failed")
            do throws(SocketError) {
                _ = try NameInfo.lookup(.ipv4(unnamed, port: 80), flags: .nameRequired)
                results.append("resolved")
            } catch {
                results.append(error.description)
            }
            do throws(SocketError) {
                _ = try HostEntry.byAddress(.v6(IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99)))
                results.append("resolved")
            } catch {
                results.append(error.description)
            }
            return results
        }
        #expect(outcome == [
            "192.0.2.99",
            "getnameinfo(192.0.2.99:80): Name or service not known (EAI_NONAME)",
            "getnameinfo(2001:db8::99): Name or service not known (EAI_NONAME)",
        ])
        #expect(queries.contains("99.2.0.192.in-addr.arpa PTR"))
        #expect(queries.contains(FakeDNSServer.reverseName(.v6(IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99))) + " PTR"))
    }

    @Test(.enabled(if: PrivateResolver.isAvailable, "\(PrivateResolver.unavailableReason ?? "")"))
    func hostEntriesForIPv4AndIPv6() async throws {
        let (entries, queries) = try await PrivateResolver.run { () -> [HostEntry] in
            [
                try HostEntry.byName("dual.resolution.test"),
                try HostEntry.byName("dual.resolution.test", family: .inet),
                try HostEntry.byName("dual.resolution.test", family: .inet6),
                try HostEntry.byName("alias.resolution.test"),
                try HostEntry.byName("v6only.resolution.test"),
                try HostEntry.byAddress(.v4(PrivateResolver.dualV4)),
                try HostEntry.byAddress(.v6(PrivateResolver.dualV6)),
            ]
        }
        let v4 = IPAddress.v4(PrivateResolver.dualV4), v6 = IPAddress.v6(PrivateResolver.dualV6)
        try #require(entries.count == 7)
        #expect(entries[0].name == "dual.resolution.test")
        #expect(entries[0].aliases.isEmpty)
        #expect(Set(entries[0].addresses) == [v4, v6])
        #expect(entries[1] == HostEntry(name: "dual.resolution.test", aliases: [], addresses: [v4]))
        #expect(entries[2] == HostEntry(name: "dual.resolution.test", aliases: [], addresses: [v6]))
        // A CNAME: the canonical name is the target, the name asked for an alias.
        #expect(entries[3].name == "dual.resolution.test")
        #expect(entries[3].aliases == ["alias.resolution.test"])
        #expect(Set(entries[3].addresses) == [v4, v6])
        #expect(entries[4] == HostEntry(name: "v6only.resolution.test", aliases: [], addresses: [.v6(PrivateResolver.v6OnlyAddress)]))
        #expect(entries[5] == HostEntry(name: "dual.resolution.test", aliases: [], addresses: [v4]))
        #expect(entries[6] == HostEntry(name: "dual.resolution.test", aliases: [], addresses: [v6]))
        #expect(queries.contains("dual.resolution.test AAAA"))
        #expect(queries.contains(FakeDNSServer.reverseName(v6) + " PTR"))
    }

    @Test(.enabled(if: PrivateResolver.isAvailable, "\(PrivateResolver.unavailableReason ?? "")"))
    func missingFamilyAndAddressConfig() async throws {
        let (outcome, queries) = try await PrivateResolver.run { () -> [String] in
            func attempt(_ body: () throws(SocketError) -> String) -> String {
                do { return try body() } catch { return error.addressInfoError?.name ?? error.description }
            }
            return [
                // The name exists but has no IPv4 address.
                attempt { () throws(SocketError) in try HostEntry.byName("v6only.resolution.test", family: .inet).description },
                // Only IPv4 is configured beyond loopback here, so AI_ADDRCONFIG drops IPv6.
                attempt { () throws(SocketError) in
                    hostTexts(try AddressInfo.lookup(host: "dual.resolution.test", service: nil, type: .stream, flags: .addressConfig)).joined(separator: ",")
                },
                attempt { () throws(SocketError) in
                    hostTexts(try AddressInfo.lookup(host: "dual.resolution.test", service: nil, type: .stream)).sorted().joined(separator: ",")
                },
                attempt { () throws(SocketError) in
                    hostTexts(try AddressInfo.lookup(host: "::1", service: nil, family: .inet6, type: .stream, flags: [.numericHost, .addressConfig])).joined(separator: ",")
                },
                // AI_V4MAPPED fills in for the missing IPv6 address; AI_ALL adds mapped ones too.
                attempt { () throws(SocketError) in
                    hostTexts(try AddressInfo.lookup(host: "dual.resolution.test", service: nil, family: .inet6, type: .stream, flags: [.v4Mapped, .all])).sorted().joined(separator: ",")
                },
                // AI_NUMERICHOST asks nobody.
                attempt { () throws(SocketError) in
                    hostTexts(try AddressInfo.lookup(host: "numeric-only.resolution.test", service: nil, flags: .numericHost)).joined(separator: ",")
                },
            ]
        }
        #expect(outcome == [
            "EAI_NODATA",
            "192.0.2.10",
            "192.0.2.10,2001:db8::10",
            "EAI_NONAME",
            "2001:db8::10,::ffff:192.0.2.10",
            "EAI_NONAME",
        ])
        #expect(!queries.contains { $0.hasPrefix("numeric-only") })
    }
}
