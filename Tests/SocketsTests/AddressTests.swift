import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Testing

@Suite(.noDescriptorLeaks())
struct AddressTests {
    // MARK: inet_pton / inet_ntop

    static let validIPv4: [(String, UInt32)] = [
        ("0.0.0.0", 0), ("127.0.0.1", 0x7F00_0001), ("255.255.255.255", 0xFFFF_FFFF),
        ("1.2.3.4", 0x0102_0304), ("192.0.2.1", 0xC000_0201), ("10.0.0.255", 0x0A00_00FF),
    ]

    static let invalidIPv4 = [
        "", ".", "01.2.3.4", "1.2.3.04", "00.0.0.0", "256.0.0.1", "1.2.3.256", "1.2.3", "1.2.3.4.5",
        "1..2.3", "1.2.3.", ".1.2.3", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "1 .2.3.4", "0x7f.0.0.1",
        "0x7f000001", "127.1", "2130706433", "-1.2.3.4", "+1.2.3.4", "1.2.3.4/24", "1.2.3.4:80",
        "1.2.3.4\0", "1.2.3.4\0junk", "\u{661}.\u{662}.\u{663}.\u{664}", "1.2.3.4.", "4294967296.0.0.0",
        "999999999999999999999.1.1.1", "::1",
    ]

    @Test func ipv4ValidVectors() throws {
        for (text, value) in Self.validIPv4 {
            let address = try IPv4Address(text)
            #expect(address.value == value, "\(text)")
            #expect(address.description == text)
            #expect(try IPAddress(text) == .v4(address))
        }
        #expect(IPv4Address(192, 0, 2, 1).bytes == [192, 0, 2, 1])
        #expect(IPv4Address.loopback.description == "127.0.0.1")
        #expect(IPv4Address.broadcast.description == "255.255.255.255")
    }

    @Test(arguments: invalidIPv4)
    func ipv4InvalidVectors(text: String) {
        let error = #expect(throws: SocketError.self, "\(text.debugDescription)") { try IPv4Address(text) }
        if case .invalidArgument(let why)? = error?.reason {
            #expect(why.contains("IPv4"))
        } else {
            Issue.record("expected invalidArgument for \(text.debugDescription), got \(String(describing: error))")
        }
        #expect(error?.operation == "parse IPv4 address")
    }

    /// (input, inet_ntop's RFC 5952 output).
    static let validIPv6: [(String, String)] = [
        ("::", "::"), ("::1", "::1"), ("1::", "1::"), ("0:0:0:0:0:0:0:1", "::1"),
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4"), ("::ffff:0102:0304", "::ffff:1.2.3.4"),
        ("0:0:0:0:0:ffff:1.2.3.4", "::ffff:1.2.3.4"), ("::FFFF:1.2.3.4", "::ffff:1.2.3.4"),
        ("2001:DB8::1", "2001:db8::1"), ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8::0:1", "2001:db8::1"),
        // The longest run of zeros is compressed; on a tie, the first.
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"), ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
        // A single zero group is never compressed.
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"), ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"), ("fe80::1", "fe80::1"), ("FF02::1", "ff02::1"),
        // An embedded IPv4 part is allowed only as the last 32 bits.
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"), ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("::1.2.3.4", "::1.2.3.4"), ("::ffff:0:0", "::ffff:0.0.0.0"),
        ("abcd:ef01:2345:6789:abcd:ef01:2345:6789", "abcd:ef01:2345:6789:abcd:ef01:2345:6789"),
    ]

    static let invalidIPv6 = [
        "", ":", ":::", "::::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1::2::3", "12345::", "::g", ":1::",
        "1::2:", "1:::2", "::1.2.3", "1.2.3.4::", "::1.2.3.4:5", "::ffff:256.1.1.1", "::01.2.3.4",
        "1:2:3:4:5:6:7:1.2.3.4", "fe80::1%lo", "[::1]", " ::1", "::1 ", "0x1::", "::1\0", "1.2.3.4",
        "::ffff:1.2.3.4.5", "g::", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8",
    ]

    @Test func ipv6ValidVectors() throws {
        for (text, printed) in Self.validIPv6 {
            let address = try IPv6Address(text)
            #expect(address.description == printed, "\(text)")
            #expect(try IPv6Address(printed) == address)
            #expect(try IPv6Address(bytes: address.bytes) == address)
        }
        #expect(try IPv6Address("::ffff:1.2.3.4").ipv4Mapped == IPv4Address(1, 2, 3, 4))
        #expect(IPv6Address(ipv4Mapped: IPv4Address(10, 0, 0, 1)).description == "::ffff:10.0.0.1")
        #expect(try IPv6Address("2001:db8::1").ipv4Mapped == nil)
        #expect(IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).description == "2001:db8::1")
        #expect(try IPv6Address("fe80::1").isLinkLocal)
        #expect(try IPv6Address("ff02::1").isMulticast)
        #expect(IPv6Address.loopback.isLoopback && IPv6Address.any.isUnspecified)
    }

    @Test(arguments: invalidIPv6)
    func ipv6InvalidVectors(text: String) {
        let error = #expect(throws: SocketError.self, "\(text.debugDescription)") { try IPv6Address(text) }
        #expect(error?.operation == "parse IPv6 address")
        #expect(error?.errno == .invalidArgument)
    }

    @Test func ipv6BytesMustBe16() {
        #expect(throws: SocketError.self) { try IPv6Address(bytes: [1, 2, 3]) }
        #expect(throws: SocketError.self) { try IPv6Address(bytes: [UInt8](repeating: 0, count: 17)) }
    }

    /// Every corpus entry parsed and printed by us and by python3's `socket.inet_pton` /
    /// `inet_ntop`, which must agree (including which inputs are rejected).
    @Test func agreesWithPythonInetPton() throws {
        var corpus = Self.validIPv4.map(\.0) + Self.invalidIPv4 + Self.validIPv6.map(\.0) + Self.invalidIPv6
        corpus += ["1.2.3.4\u{0}", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:0", "1:0::", "::0:1", "1:0:0:0:0:0:0:0",
                   "0:1:0:1:0:1:0:1", "1:0:1:0:0:1:0:0", "a:b:c:d:e:f:0:0", "::ffff:ffff:ffff", "::a:b",
                   "1.1.1.1.", "192.168.001.1", "255.255.255.255.", "1e0.0.0.0"]
        let script = """
        import sys, socket
        for line in sys.stdin:
            text = bytes.fromhex(line.strip()).decode('utf-8', 'surrogateescape')
            out = []
            for family in (socket.AF_INET, socket.AF_INET6):
                try:
                    out.append(socket.inet_ntop(family, socket.inet_pton(family, text)))
                except (OSError, ValueError, UnicodeError):
                    out.append('ERR')
            print('\\t'.join(out), flush=True)
        """
        let python = try ChildProcess(python: script)
        let hexLines = corpus.map { text in text.utf8.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }
        try python.write(Array((hexLines.joined(separator: "\n") + "\n").utf8))
        python.closeInput()
        for text in corpus {
            let theirs = try python.readLine()
            let ours = ((try? IPv4Address(text))?.description ?? "ERR") + "\t" + ((try? IPv6Address(text))?.description ?? "ERR")
            #expect(ours == theirs, "\(text.debugDescription)")
        }
        #expect(try python.wait() == 0)
    }

    // MARK: socket address text

    @Test func parsesHostAndPort() throws {
        #expect(try SocketAddress("127.0.0.1:80") == .ipv4(.loopback, port: 80))
        #expect(try SocketAddress("0.0.0.0:0") == .ipv4(.any, port: 0))
        #expect(try SocketAddress("255.255.255.255:65535") == .ipv4(.broadcast, port: 65535))
        #expect(try SocketAddress("[::1]:8080") == .ipv6(.loopback, port: 8080))
        #expect(try SocketAddress("[::ffff:1.2.3.4]:1") == .ipv6(IPv6Address(ipv4Mapped: IPv4Address(1, 2, 3, 4)), port: 1))
        #expect(try SocketAddress(host: "::1", port: 443) == .ipv6(.loopback, port: 443))
        #expect(try SocketAddress(host: "10.1.2.3", port: 0) == .ipv4(IPv4Address(10, 1, 2, 3), port: 0))
        for text in ["127.0.0.1:80", "[::1]:8080", "[2001:db8::1]:443", "[::ffff:1.2.3.4]:1", "0.0.0.0:0"] {
            #expect(try SocketAddress(text).description == text)
        }
    }

    @Test func zoneByNameAndNumber() throws {
        let loopbackIndex = if_nametoindex("lo")
        #expect(loopbackIndex > 0)
        let byName = try SocketAddress("[fe80::1%lo]:80")
        guard case .ipv6(let named) = byName else { Issue.record("not IPv6: \(byName)"); return }
        #expect(named.scopeID == loopbackIndex)
        #expect(named.address == (try IPv6Address("fe80::1")))
        #expect(named.port == 80)
        #expect(byName.description == "[fe80::1%lo]:80")

        let byNumber = try SocketAddress("[fe80::1%\(loopbackIndex)]:80")
        #expect(byNumber == byName)
        #expect(byNumber.description == "[fe80::1%lo]:80", "printed with the interface's name")

        // A number that names no interface is kept and printed as a number.
        let unknown = try SocketAddress("[fe80::1%77777]:9")
        #expect(unknown.description == "[fe80::1%77777]:9")
        #expect(try SocketAddress(host: "fe80::2%lo", port: 1) == .ipv6(try IPv6Address("fe80::2"), port: 1, scopeID: loopbackIndex))

        let noSuch = #expect(throws: SocketError.self) { try SocketAddress("[fe80::1%nosuchif0]:80") }
        #expect(noSuch?.description.contains("nosuchif0") == true)
        #expect(throws: SocketError.self) { try SocketAddress("[fe80::1%]:80") }
    }

    static let badSocketAddresses: [(String, String)] = [
        ("127.0.0.1:65536", "port 65536 is outside 0...65535"),
        ("127.0.0.1:99999999999", "not a number"),
        ("127.0.0.1:-1", "not a number"),
        ("127.0.0.1:+80", "not a number"),
        ("127.0.0.1: 80", "not a number"),
        ("127.0.0.1:80 ", "not a number"),
        ("127.0.0.1:0x50", "not a number"),
        ("127.0.0.1", "expected HOST:PORT"),
        ("127.0.0.1:", "not a number"),
        ("[::1]", "expected ':PORT' after ']'"),
        ("[::1]:", "not a number"),
        ("[::1]:65536", "port 65536 is outside 0...65535"),
        ("[::1", "missing ']'"),
        ("::1:80", "must be written [ADDRESS]:PORT"),
        ("[1.2.3.4]:80", "not an IPv6 address"),
        ("[::1]x80", "expected ':PORT' after ']'"),
        ("1.2.3:80", "not an IPv4 address"),
        ("localhost:80", "not an IPv4 address"),
        ("", "expected HOST:PORT"),
        (":80", "not an IPv4 address"),
        ("1.2.3.4\u{0}:80", "not an IPv4 address"),
    ]

    @Test(arguments: badSocketAddresses)
    func rejectsMalformedSocketAddresses(text: String, why: String) {
        let error = #expect(throws: SocketError.self, "\(text.debugDescription)") { try SocketAddress(text) }
        guard let error else { return }
        #expect(error.description.contains(why), "\(text.debugDescription): \(error)")
        #expect(error.errno == .invalidArgument)
    }

    @Test func portRangeInHostPortInitializer() {
        #expect(throws: SocketError.self) { try SocketAddress("127.0.0.1:65536") }
        #expect(throws: SocketError.self) { try SocketAddress("127.0.0.1:-1") }
        #expect((try? SocketAddress(host: "127.0.0.1", port: 65535)) != nil)
    }

    // MARK: Unix addresses

    @Test func unixPathLengthLimitIsCheckedBeforeAnySyscall() throws {
        let longest = "/tmp/" + String(repeating: "p", count: 102)
        #expect(longest.utf8.count == 107)
        let tooLong = longest + "x"
        let error = #expect(throws: SocketError.self) { try SocketAddress.unix(path: tooLong) }
        #expect(error?.description == "make Unix address(\(tooLong)): path is 108 bytes; the limit is 107")
        #expect(throws: SocketError.self) { try SocketAddress(tooLong) }
        #expect(throws: SocketError.self) { try UnixSocketAddress(path: "") }
        #expect(throws: SocketError.self) { try UnixSocketAddress(path: "/tmp/a\0b") }
        // A multi-byte path counts bytes, not characters.
        #expect(throws: SocketError.self) { try UnixSocketAddress(path: "/tmp/" + String(repeating: "é", count: 52)) }

        // The longest allowed path binds, and reads back byte for byte.
        let path = "/tmp/\(getpid())-" + String(repeating: "q", count: 107 - 6 - String(getpid()).utf8.count)
        #expect(path.utf8.count == 107)
        CoreTest.remove(path)
        defer { CoreTest.remove(path) }
        let socket = try Socket(.unix, .stream)
        try socket.bind(to: .unix(path: path))
        #expect(try socket.localAddress() == .unix(path: path))
    }

    @Test func abstractNamesRoundTripExactly() throws {
        let name = "sockets-core-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let address = try SocketAddress.unix(abstract: name)
        #expect(address.description == "@" + name)
        #expect(try SocketAddress("@" + name) == address)
        let server = try Socket(.unix, .datagram)
        try server.bind(to: address)
        #expect(try server.localAddress() == address)

        // Bytes after a NUL are part of an abstract name: only the length ends it.
        let withNUL = SocketAddress.unix(try UnixSocketAddress(abstract: Array("x\0y-\(getpid())".utf8) + [0, 0]))
        let other = try Socket(.unix, .datagram)
        try other.bind(to: withNUL)
        #expect(try other.localAddress() == withNUL)
        #expect(try other.send([5], to: address) == 1)
        let datagram = try server.receiveDatagram(maxLength: 10)
        let bytes = datagram.bytes
        let sender = datagram.sender
        #expect(bytes == [5])
        #expect(sender == withNUL)

        #expect((try? UnixSocketAddress(abstract: [UInt8](repeating: 65, count: 107))) != nil)
        #expect(throws: SocketError.self) { try UnixSocketAddress(abstract: [UInt8](repeating: 65, count: 108)) }
    }

    @Test func bindingUnnamedAutobindsAnAbstractName() throws {
        let socket = try Socket(.unix, .datagram)
        #expect(try socket.localAddress() == .unix(.unnamed))
        try socket.bind(to: .unix(.unnamed))
        let bound = try socket.localAddress()
        guard case .unix(let unix) = bound else { Issue.record("\(bound)"); return }
        #expect(unix.kind == .abstract)
        // Linux autobinds five hex digits.
        #expect(unix.bytes.count == 5)
        #expect(unix.bytes.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }, "\(bound)")
        #expect(bound.description.hasPrefix("@"))
        #expect(SocketAddress.unix(.unnamed).description == "(unnamed)")
    }

    @Test func unixPathBytesThatAreNotUTF8SurviveDecoding() throws {
        // Bind with a raw sockaddr_un whose path is not valid UTF-8, then read it back.
        let prefix = Array("/tmp/sockets-core-\(getpid())-".utf8)
        let pathBytes = prefix + [0xFF, 0xFE, 0x41]
        let cPath = pathBytes.map { CChar(bitPattern: $0) } + [0]
        _ = unlink(cPath)
        defer { _ = unlink(cPath) }
        let socket = try Socket(.unix, .datagram)
        try rawBind(socket, pathBytes: pathBytes, length: 2 + pathBytes.count + 1)
        #expect(try SocketAddress.unix(UnixSocketAddress(pathBytes: pathBytes)) == socket.localAddress())
        let local = try socket.localAddress()
        guard case .unix(let unix) = local else { Issue.record("\(local)"); return }
        #expect(unix.kind == .path)
        #expect(unix.bytes == pathBytes)
        // And it encodes back to the same bytes, so sending to it reaches the socket.
        let sender = try Socket(.unix, .datagram)
        #expect(try sender.send([1, 2], to: local) == 2)
        #expect(try socket.receive(maxLength: 4, flags: .dontWait) == [1, 2])
    }

    /// Binds `socket` with a hand-made `sockaddr_un` holding `pathBytes` and `length`.
    func rawBind(_ socket: Socket, pathBytes: [UInt8], length: Int) throws {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            raw.storeBytes(of: sa_family_t(AF_UNIX), as: sa_family_t.self)
            raw.baseAddress!.advanced(by: 2).copyMemory(from: pathBytes, byteCount: pathBytes.count)
        }
        try socket.withDescriptor { fd in
            try withUnsafePointer(to: &storage) { pointer in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try Syscall.bind(fd, $0, socklen_t(length)) }
            }
        }
    }

    @Test func aPathFillingAllOfSunPathIsDecodedAndReachable() throws {
        // Another program may bind a 108-byte path with no NUL (length = sizeof(sockaddr_un)).
        let head = "/tmp/\(getpid())-"
        let pathBytes = Array((head + String(repeating: "z", count: 108 - head.utf8.count)).utf8)
        #expect(pathBytes.count == 108)
        let cPath = pathBytes.map { CChar(bitPattern: $0) } + [0]
        _ = unlink(cPath)
        defer { _ = unlink(cPath) }
        let socket = try Socket(.unix, .datagram)
        try rawBind(socket, pathBytes: pathBytes, length: MemoryLayout<sockaddr_un>.size)
        let local = try socket.localAddress()
        guard case .unix(let unix) = local else { Issue.record("\(local)"); return }
        #expect(unix.kind == .path)
        #expect(unix.bytes == pathBytes)
        var storage = sockaddr_storage()
        #expect(Int(local.encode(into: &storage)) == MemoryLayout<sockaddr_un>.size)
        let sender = try Socket(.unix, .datagram)
        #expect(try sender.send([9], to: local) == 1)
        #expect(try socket.receive(maxLength: 4, flags: .dontWait) == [9])
        // This library itself refuses to make such a path: 107 bytes plus the NUL is its limit.
        #expect(throws: SocketError.self) { try UnixSocketAddress(pathBytes: pathBytes) }
    }

    // MARK: sockaddr conversion

    @Test func sockaddrStorageRoundTripWithExactLengths() throws {
        let cases: [(SocketAddress, Int)] = [
            (.ipv4(IPv4Address(192, 0, 2, 7), port: 5353), MemoryLayout<sockaddr_in>.size),
            (.ipv6(try IPv6Address("2001:db8::7"), port: 443, flowInfo: 0x12345, scopeID: 3), MemoryLayout<sockaddr_in6>.size),
            (try .unix(path: "/tmp/a.sock"), 2 + 11 + 1),
            (try .unix(abstract: "ab"), 2 + 1 + 2),
            (.unix(try UnixSocketAddress(abstract: [])), 3),
            (.unix(.unnamed), 2),
            (.other(try RawSocketAddress(bytes: [17, 0, 8, 0, 1, 0, 0, 0, 0, 0, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0])), 20),
        ]
        #expect(MemoryLayout<sockaddr_in>.size == 16 && MemoryLayout<sockaddr_in6>.size == 28)
        for (address, expectedLength) in cases {
            var storage = sockaddr_storage()
            let length = address.encode(into: &storage)
            #expect(Int(length) == expectedLength, "\(address)")
            #expect(try SocketAddress(storage: storage, length: length) == address, "\(address)")
            let viaPointer = address.withUnsafeSockaddr { pointer, length in SocketAddress(sockaddr: pointer, length: length) }
            #expect(viaPointer == address)
            #expect(address.withUnsafeSockaddr { _, length in length } == length)
        }
        // The fields land where C expects them (network byte order).
        var storage = sockaddr_storage()
        _ = SocketAddress.ipv4(IPv4Address(1, 2, 3, 4), port: 0x1234).encode(into: &storage)
        let inet = withUnsafeBytes(of: &storage) { $0.loadUnaligned(as: sockaddr_in.self) }
        #expect(inet.sin_family == sa_family_t(AF_INET))
        #expect(inet.sin_port == UInt16(0x1234).bigEndian)
        #expect(inet.sin_addr.s_addr == UInt32(0x0102_0304).bigEndian)
        _ = SocketAddress.ipv6(.loopback, port: 80, flowInfo: 0xABCDE, scopeID: 9).encode(into: &storage)
        let inet6 = withUnsafeBytes(of: &storage) { $0.loadUnaligned(as: sockaddr_in6.self) }
        #expect(inet6.sin6_flowinfo == UInt32(0xABCDE).bigEndian)
        #expect(inet6.sin6_scope_id == 9)
        #expect(inet6.sin6_port == UInt16(80).bigEndian)

        #expect(throws: SocketError.self) { try SocketAddress(storage: sockaddr_storage(), length: 129) }
    }

    @Test func decodingShortLengthsNeverTraps() {
        var storage = sockaddr_storage()
        let full = SocketAddress.ipv6(.loopback, port: 1).encode(into: &storage)
        for length in 0...full {
            let decoded = withUnsafeBytes(of: &storage) { SocketAddress(sockaddr: $0.baseAddress!, length: length) }
            if length == full {
                #expect(decoded == .ipv6(.loopback, port: 1))
            } else {
                #expect(decoded.port == nil, "a cut-short sockaddr_in6 (\(length) bytes) is not an IPv6 address: \(decoded)")
            }
        }
    }

    @Test func descriptions() throws {
        #expect(SocketAddress.ipv4(IPv4Address(1, 2, 3, 4), port: 80).description == "1.2.3.4:80")
        #expect(SocketAddress.ipv6(try IPv6Address("2001:db8::1"), port: 443).description == "[2001:db8::1]:443")
        #expect(try SocketAddress.unix(path: "/run/x.sock").description == "/run/x.sock")
        #expect(try SocketAddress.unix(abstract: "name").description == "@name")
        #expect(try SocketAddress("./rel.sock") == .unix(path: "./rel.sock"))
        #expect(IPv4Address(1, 2, 3, 4).debugDescription == "IPv4Address(1.2.3.4)")
        #expect(IPv6Address.loopback.debugDescription == "IPv6Address(::1)")
        #expect(SocketAddress.ipv4(.loopback, port: 1).domain == .inet)
        #expect(SocketAddress.ipv6(.loopback, port: 1).ipAddress == .v6(.loopback))
        #expect(try RawSocketAddress(bytes: [17, 0, 0xAB]).description == "AF_PACKET[ab]")
        #expect(throws: SocketError.self) { try RawSocketAddress(bytes: [1]) }
    }
}

@Suite(.noDescriptorLeaks())
struct LegacyIPv4FormTests {
    @Test(arguments: [
        ("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("017700000001", "127.0.0.1"),
        ("10.0.258", "10.0.1.2"), ("010.0.0.1", "8.0.0.1"), ("1.2.3.4", "1.2.3.4"), ("4294967295", "255.255.255.255"),
    ])
    func inetAtonFormsParse(text: String, expected: String) throws {
        #expect(try IPv4Address(legacy: text).description == expected)
    }

    @Test(arguments: ["", "1.2.3.4.5", "256.256.256.256", "0x100000000", "1.2.3.4 junk", "a.b.c.d", "1.2.3.4\0"])
    func inetAtonRejects(text: String) {
        #expect(throws: SocketError.self) { try IPv4Address(legacy: text) }
    }

    @Test func strictParserRejectsWhatLegacyAccepts() {
        #expect(throws: SocketError.self) { try IPv4Address("127.1") }
    }
}
