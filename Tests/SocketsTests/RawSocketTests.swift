import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Testing

/// ICMP messages for the raw and ping socket tests.
enum ICMP {
    /// The Internet checksum (RFC 1071) of `bytes`.
    static func checksum<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        var sum: UInt32 = 0
        var iterator = bytes.makeIterator()
        while let high = iterator.next() {
            let low = iterator.next() ?? 0
            sum += UInt32(high) << 8 | UInt32(low)
        }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    /// An echo request or reply: type, code 0, checksum, identifier, sequence, payload.
    /// The checksum is filled in unless `withChecksum` is false (ICMPv6, where the kernel
    /// computes it over the pseudo-header).
    static func echo(type: UInt8, identifier: UInt16, sequence: UInt16, payload: [UInt8], withChecksum: Bool = true) -> [UInt8] {
        var message: [UInt8] = [type, 0, 0, 0, UInt8(identifier >> 8), UInt8(identifier & 0xFF), UInt8(sequence >> 8), UInt8(sequence & 0xFF)] + payload
        if withChecksum {
            let sum = checksum(message)
            message[2] = UInt8(sum >> 8)
            message[3] = UInt8(sum & 0xFF)
        }
        return message
    }

    /// The (type, identifier, sequence, payload) of an ICMP echo message.
    static func parseEcho<C: Collection>(_ message: C) -> (type: UInt8, identifier: UInt16, sequence: UInt16, payload: [UInt8])? where C.Element == UInt8, C.Index == Int {
        guard message.count >= 8 else { return nil }
        let s = message.startIndex
        return (message[s], UInt16(message[s + 4]) << 8 | UInt16(message[s + 5]),
                UInt16(message[s + 6]) << 8 | UInt16(message[s + 7]), Array(message[(s + 8)...]))
    }
}

@Suite(.noDescriptorLeaks())
struct RawSocketTests {
    @Test func checksumOfAKnownMessage() {
        // RFC 1071's example words 0001 f203 f4f5 f6f7 sum to ddf2, so the checksum is 220d.
        #expect(ICMP.checksum([0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]) == 0x220D)
        let message = ICMP.echo(type: 8, identifier: 0x1234, sequence: 7, payload: [1, 2, 3])
        #expect(ICMP.checksum(message) == 0, "a message with its checksum sums to zero")
    }

    @Test(.requires(.rawSockets)) func rawICMPEchoToLoopback() throws {
        let socket = try Socket(.inet, .raw, .icmp)
        try CoreTest.setTimeouts(socket, milliseconds: 2_000)
        let identifier = UInt16.random(in: 1...0xFFFF)
        let sequence = UInt16.random(in: 1...0xFFFF)
        let payload = CoreTest.pattern(56, seed: UInt64(identifier))
        let request = ICMP.echo(type: 8, identifier: identifier, sequence: sequence, payload: payload)
        #expect(try socket.send(request, to: .ipv4(.loopback, port: 0)) == request.count)

        // A raw ICMP socket sees every ICMP packet, our own request included: look for the reply.
        var reply: (packet: [UInt8], from: SocketAddress?)?
        for _ in 0..<50 {
            let datagram = try socket.receiveDatagram(maxLength: 65_536)
            let packet = datagram.bytes
            let from = datagram.sender
            guard packet.count >= 20, packet[0] >> 4 == 4 else { continue }
            let headerLength = Int(packet[0] & 0x0F) * 4
            guard let echo = ICMP.parseEcho(packet[headerLength...]),
                  echo.type == 0, echo.identifier == identifier, echo.sequence == sequence else { continue }
            reply = (packet, from)
            break
        }
        let (packet, from) = try #require(reply)
        let headerLength = Int(packet[0] & 0x0F) * 4
        #expect(packet[9] == UInt8(IPPROTO_ICMP), "IPv4 raw sockets deliver the IP header")
        #expect(Array(packet[12..<16]) == [127, 0, 0, 1], "from 127.0.0.1")
        #expect(ICMP.checksum(packet[headerLength...]) == 0, "the reply's checksum is valid")
        #expect(ICMP.parseEcho(packet[headerLength...])?.payload == payload)
        #expect(from == .ipv4(.loopback, port: 0))
    }

    @Test(.requires(.rawSockets)) func rawICMPv6EchoToLoopback() throws {
        let socket = try Socket(.inet6, .raw, .icmpv6)
        try CoreTest.setTimeouts(socket, milliseconds: 2_000)
        let identifier = UInt16.random(in: 1...0xFFFF)
        let sequence = UInt16.random(in: 1...0xFFFF)
        let payload = CoreTest.pattern(32, seed: UInt64(sequence))
        // The kernel computes ICMPv6 checksums on raw sockets (RFC 3542).
        let request = ICMP.echo(type: 128, identifier: identifier, sequence: sequence, payload: payload, withChecksum: false)
        #expect(try socket.send(request, to: .ipv6(.loopback, port: 0)) == request.count)
        var found: (message: [UInt8], from: SocketAddress?)?
        for _ in 0..<50 {
            let datagram = try socket.receiveDatagram(maxLength: 65_536)
            let message = datagram.bytes
            let from = datagram.sender
            guard let echo = ICMP.parseEcho(message), echo.type == 129,
                  echo.identifier == identifier, echo.sequence == sequence else { continue }
            found = (message, from)
            break
        }
        let (message, from) = try #require(found)
        #expect(ICMP.parseEcho(message)?.payload == payload, "IPv6 raw sockets deliver no IP header")
        #expect(from?.ipAddress == .v6(.loopback))
    }

    @Test func pingSocketsFollowPingGroupRange() throws {
        // On the host, net.ipv4.ping_group_range decides; on these machines it is "1 0"
        // (nobody), so the kernel refuses, and the error must say so plainly.
        let range = (CoreTest.readSmallFile("/proc/sys/net/ipv4/ping_group_range") ?? "")
            .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int64($0) }
        let allowed = range.count == 2 && range[0] <= Int64(getgid()) && Int64(getgid()) <= range[1]
        if allowed {
            let socket = try Socket(.inet, .datagram, .icmp)
            try socket.close()
        } else {
            let error = #expect(throws: SocketError.self) { try Socket(.inet, .datagram, .icmp) }
            #expect(error?.description == "socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP): Permission denied (EACCES)")
        }
    }

    /// Runs `body` on a thread that has its own, new network namespace (`unshare(CLONE_NEWNET)`
    /// affects only the calling thread), with `lo` up. The namespace goes away with the thread.
    func inOwnNetworkNamespace<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        try inNewNetworkNamespace { () throws -> T in
            // Bring lo up: SIOCGIFFLAGS, set IFF_UP, SIOCSIFFLAGS on a struct ifreq.
            let control = try Socket(.inet, .datagram)
            var request = [UInt8](repeating: 0, count: 40)
            request[0] = UInt8(ascii: "l")
            request[1] = UInt8(ascii: "o")
            try control.withDescriptor { fd in
                _ = try request.withUnsafeMutableBytes { try Syscall.ioctl(fd, 0x8913, $0.baseAddress!) }
                request[16] |= UInt8(IFF_UP)
                _ = try request.withUnsafeMutableBytes { try Syscall.ioctl(fd, 0x8914, $0.baseAddress!) }
            }
            try control.close()
            return try body()
        }
    }

    struct NamespaceFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    @Test(.requires(.networkNamespaces)) func pingSocketsInsideOwnNamespace() throws {
        let hostRange = CoreTest.readSmallFile("/proc/sys/net/ipv4/ping_group_range")
        let outcome = try inOwnNetworkNamespace { () throws -> [String] in
            // This sysctl is per namespace: allow every group here, and only here.
            let file = open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY | O_CLOEXEC)
            guard file >= 0 else { throw NamespaceFailure("open ping_group_range: \(String(cString: strerror(errno)))") }
            let text = Array("0 2147483647\n".utf8)
            let written = Glibc.write(file, text, text.count)
            Glibc.close(file)
            guard written == text.count else { throw NamespaceFailure("write ping_group_range failed") }

            var results: [String] = []
            for (domain, target, requestType) in [
                (SocketDomain.inet, SocketAddress.ipv4(.loopback, port: 0), UInt8(8)),
                (.inet6, .ipv6(.loopback, port: 0), 128),
            ] {
                let socket = try Socket(domain, .datagram, domain == .inet ? .icmp : .icmpv6)
                try CoreTest.setTimeouts(socket, milliseconds: 2_000)
                let sequence = UInt16.random(in: 1...0xFFFF)
                // The kernel sets the identifier (the socket's "port") and the checksum.
                let request = ICMP.echo(type: requestType, identifier: 0, sequence: sequence, payload: [1, 2, 3, 4], withChecksum: false)
                _ = try socket.send(request, to: target)
                let identifier = try socket.localAddress().port
                let datagram = try socket.receiveDatagram(maxLength: 1500)
                let reply = datagram.bytes
                let from = datagram.sender
                let echo = ICMP.parseEcho(reply)
                results.append("\(domain) type \(echo?.type ?? 255) seq \(echo?.sequence == sequence) id \(echo?.identifier == identifier) payload \(echo?.payload ?? []) from \(from?.ipAddress?.description ?? "nil")")
            }
            return results
        }
        #expect(outcome == [
            "AF_INET type 0 seq true id true payload [1, 2, 3, 4] from 127.0.0.1",
            "AF_INET6 type 129 seq true id true payload [1, 2, 3, 4] from ::1",
        ])
        #expect(CoreTest.readSmallFile("/proc/sys/net/ipv4/ping_group_range") == hostRange, "the host's setting is untouched")
    }
}
