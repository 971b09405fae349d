import Glibc
import Sockets
import SystemPackage
import Testing

/// A small deterministic generator, so that the random inputs are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Builds one raw record: a `cmsghdr` with the given `cmsg_len`, level and type, then bytes.
func rawRecord(length: UInt64, level: Int32, type: Int32, payload: [UInt8] = []) -> [UInt8] {
    withUnsafeBytes(of: length.littleEndian) { Array($0) }
        + withUnsafeBytes(of: level.littleEndian) { Array($0) }
        + withUnsafeBytes(of: type.littleEndian) { Array($0) }
        + payload
}

@Suite(.noDescriptorLeaks())
struct ControlMessageCodingTests {
    static let samples: [ControlMessage] = [
        .descriptors([0, 1, 2]),
        .credentials(PeerCredentials(pid: 1234, uid: 1000, gid: 100)),
        .ipv4PacketInfo(IPv4PacketInfo(interfaceIndex: 1, localAddress: IPv4Address(127, 0, 0, 2), destinationAddress: IPv4Address(127, 0, 0, 3))),
        .ipv6PacketInfo(IPv6PacketInfo(address: .loopback, interfaceIndex: 7)),
        .timeToLive(64),
        .hopLimit(255),
        .typeOfService(0xB8),
        .trafficClass(0x20),
        .timestamp(SocketTimestamp(seconds: 1_700_000_000, nanoseconds: 123_456_000, resolution: .microseconds)),
        .timestamp(SocketTimestamp(seconds: 1_700_000_000, nanoseconds: 123_456_789)),
        .timestamping(software: SocketTimestamp(seconds: 5, nanoseconds: 6), hardware: SocketTimestamp(seconds: 0, nanoseconds: 0)),
        .extendedError(ExtendedError(errno: .connectionRefused, origin: .icmp, type: 3, code: 3, offender: .ipv4(.loopback, port: 0))),
        .extendedError(ExtendedError(errno: .messageTooLong, origin: .local, info: 1400, domain: .inet)),
        .extendedError(ExtendedError(errno: .connectionRefused, origin: .icmp6, type: 1, code: 4, offender: .ipv6(.loopback, port: 0), domain: .inet6)),
        .originalDestination(.ipv4(IPv4Address(10, 0, 0, 1), port: 53)),
        .originalDestination(.ipv6(.loopback, port: 443)),
        .segmentSize(1200),
        .receivedSegmentSize(1400),
        .unknown(level: 99, type: 7, bytes: [1, 2, 3, 4, 5]),
        .unknown(level: 1, type: 12345, bytes: []),
    ]

    @Test func everyKindRoundTrips() throws {
        for sample in Self.samples {
            let bytes = try ControlMessage.encode([sample])
            #expect(bytes.count == sample.encodedSpace)
            #expect(bytes.count % MemoryLayout<Int>.size == 0)
            #expect(try ControlMessage.decode(bytes) == [sample], "\(sample)")
        }
        let all = try ControlMessage.encode(Self.samples)
        #expect(all.count == ControlMessage.encodedSpace(of: Self.samples))
        #expect(try ControlMessage.decode(all) == Self.samples)
    }

    @Test func layoutMatchesTheKernelMacros() throws {
        // CMSG_LEN(12) = 28, CMSG_SPACE(12) = 32 on 64-bit Linux.
        let bytes = try ControlMessage.encode([.descriptors([3, 4, 5])])
        #expect(bytes.count == 32)
        #expect(Array(bytes[0..<8]) == [28, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(bytes[8..<12]) == [1, 0, 0, 0])  // SOL_SOCKET
        #expect(Array(bytes[12..<16]) == [1, 0, 0, 0])  // SCM_RIGHTS
        #expect(Array(bytes[16..<28]) == [3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0])
        #expect(Array(bytes[28..<32]) == [0, 0, 0, 0])  // padding
        #expect(ControlMessage.space(forDescriptors: 3) == 32)
        #expect(ControlMessage.space(forPayloadBytes: 0) == 16)
        #expect(ControlMessage.space(forPayloadBytes: 1) == 24)
    }

    @Test func encoderRejectsASmallBufferAndBadValues() throws {
        var small = [UInt8](repeating: 0, count: 16)
        let error = #expect(throws: SocketError.self) {
            _ = try small.withUnsafeMutableBytes { try ControlMessage.encode([.timeToLive(3)], into: $0) }
        }
        #expect(error?.errno == .invalidArgument)
        for bad: ControlMessage in [.descriptors([]), .descriptors([-3]), .timeToLive(256), .hopLimit(-2), .trafficClass(300),
                                    .timestamp(SocketTimestamp(seconds: 0, nanoseconds: 1_000_000_000)),
                                    .originalDestination(try .unix(path: "/tmp/x"))] {
            #expect(throws: SocketError.self, "\(bad)") { _ = try ControlMessage.encode([bad]) }
        }
    }

    @Test func lastRecordWithoutPaddingIsAccepted() throws {
        // IP_TOS as the kernel writes it when the buffer ends right after the byte.
        let bytes = rawRecord(length: 17, level: Int32(IPPROTO_IP), type: IP_TOS, payload: [0x10])
        #expect(try ControlMessage.decode(bytes) == [.typeOfService(0x10)])
    }

    @Test func wrongPayloadSizeBecomesUnknown() throws {
        let shortInfo = rawRecord(length: 16 + 5, level: Int32(IPPROTO_IP), type: IP_PKTINFO, payload: [1, 2, 3, 4, 5])
        #expect(try ControlMessage.decode(shortInfo) == [.unknown(level: Int32(IPPROTO_IP), type: IP_PKTINFO, bytes: [1, 2, 3, 4, 5])])
        let oddRights = rawRecord(length: 16 + 3, level: SOL_SOCKET, type: Int32(SCM_RIGHTS), payload: [1, 0, 0])
        #expect(try ControlMessage.decode(oddRights) == [.unknown(level: SOL_SOCKET, type: Int32(SCM_RIGHTS), bytes: [1, 0, 0])])
        let shortError = rawRecord(length: 16 + 8, level: Int32(IPPROTO_IP), type: IP_RECVERR, payload: Array(repeating: 0, count: 8))
        #expect(try ControlMessage.decode(shortError).count == 1)
    }

    @Test func malformedBuffersAreRejected() throws {
        let cases: [(String, [UInt8])] = [
            ("fewer bytes than a header", [1, 2, 3]),
            ("cmsg_len shorter than the header", rawRecord(length: 8, level: 0, type: 0)),
            ("cmsg_len zero", rawRecord(length: 0, level: 0, type: 0, payload: Array(repeating: 0, count: 16))),
            ("cmsg_len past the end", rawRecord(length: 40, level: 0, type: 0, payload: [1, 2, 3, 4])),
            ("cmsg_len huge", rawRecord(length: UInt64.max, level: 0, type: 0, payload: [1, 2, 3, 4])),
            ("cmsg_len just past Int.max", rawRecord(length: UInt64(Int64.max) + 1, level: 0, type: 0)),
            ("trailing partial header", try ControlMessage.encode([.timeToLive(1)]) + [1, 2, 3, 4, 5, 6, 7, 8]),
            ("second record too long", try ControlMessage.encode([.timeToLive(1)]) + rawRecord(length: 1000, level: 0, type: 0)),
        ]
        for (name, bytes) in cases {
            let error = #expect(throws: SocketError.self, "\(name)") { _ = try ControlMessage.decode(bytes) }
            #expect(error?.errno == .invalidArgument, "\(name)")
        }
        #expect(try ControlMessage.decode([UInt8]()) == [])
    }

    @Test func everyTruncationOfAValidBufferDecodesOrThrows() throws {
        let full = try ControlMessage.encode(Self.samples)
        var accepted = 0
        for length in 0...full.count {
            // A copy of exactly `length` bytes, so that a read past it would touch other memory.
            let prefix = Array(full[..<length])
            if let decoded = try? ControlMessage.decode(prefix) {
                accepted += 1
                #expect(decoded.count <= Self.samples.count)
            }
        }
        // Every record boundary (and the last record without its padding) decodes.
        #expect(accepted >= Self.samples.count)
    }

    @Test func randomAndMutatedBuffersNeverCrash() throws {
        var random = SplitMix64(state: 0x5EED)
        let valid = try ControlMessage.encode(Self.samples)
        var outcomes = (decoded: 0, rejected: 0)
        // Every (level, type) the decoder knows, to give its payload decoders random sizes.
        let known: [(Int32, Int32)] = [
            (SOL_SOCKET, Int32(SCM_RIGHTS)), (SOL_SOCKET, 2), (SOL_SOCKET, SO_TIMESTAMP_OLD), (SOL_SOCKET, SO_TIMESTAMP_NEW),
            (SOL_SOCKET, SO_TIMESTAMPNS_OLD), (SOL_SOCKET, SO_TIMESTAMPNS_NEW), (SOL_SOCKET, SO_TIMESTAMPING_OLD),
            (SOL_SOCKET, SO_TIMESTAMPING_NEW), (Int32(IPPROTO_IP), IP_PKTINFO), (Int32(IPPROTO_IP), IP_TTL),
            (Int32(IPPROTO_IP), IP_TOS), (Int32(IPPROTO_IP), IP_RECVERR), (Int32(IPPROTO_IP), IP_ORIGDSTADDR),
            (Int32(IPPROTO_IPV6), IPV6_PKTINFO), (Int32(IPPROTO_IPV6), IPV6_HOPLIMIT), (Int32(IPPROTO_IPV6), IPV6_TCLASS),
            (Int32(IPPROTO_IPV6), IPV6_RECVERR), (Int32(IPPROTO_IPV6), IPV6_ORIGDSTADDR),
            (Int32(IPPROTO_UDP), 103), (Int32(IPPROTO_UDP), 104),  // UDP_SEGMENT, UDP_GRO
        ]
        for round in 0..<6000 {
            var bytes: [UInt8]
            if round % 3 == 2 {
                let (level, type) = known[Int.random(in: 0..<known.count, using: &random)]
                let payload = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                bytes = rawRecord(length: UInt64(16 + payload.count), level: level, type: type, payload: payload)
            } else if round % 3 == 0 {
                bytes = (0..<Int.random(in: 0...96, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                if bytes.count >= 8 && round % 2 == 0 {
                    // A plausible cmsg_len, so that the payload decoders get exercised too.
                    bytes.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64.random(in: 0...UInt64(bytes.count + 8), using: &random)) { Array($0) })
                }
            } else {
                bytes = Array(valid[..<Int.random(in: 0...valid.count, using: &random)])
                for _ in 0..<Int.random(in: 1...4, using: &random) where !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            }
            if (try? ControlMessage.decode(bytes)) != nil { outcomes.decoded += 1 } else { outcomes.rejected += 1 }
        }
        #expect(outcomes.decoded > 0 && outcomes.rejected > 0, "\(outcomes)")
    }

    @Test func receivedDescriptorsCanBeForwarded() throws {
        let (first, middle) = try Socket.pair(.unix, .datagram)
        let (middleOut, last) = try Socket.pair(.unix, .datagram)
        let pipe = TestPipe()
        try first.sendDescriptors([pipe.write])
        let received = try middle.receiveDescriptors(maxCount: 1)
        _ = try middleOut.sendMessage([1], controlMessages: [.receivedDescriptors(received.descriptors)])
        try received.descriptors[0].close()
        let forwarded = try last.receiveDescriptors(maxCount: 1)
        let written = try forwarded.descriptors[0].withDescriptor { fd in [UInt8]([7, 8]).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, 2) } }
        #expect(written == 2)
        #expect(readBytes(pipe.read, count: 10) == [7, 8])
        // A closed received descriptor is refused before the call.
        #expect(throws: SocketError.self) { _ = try middleOut.sendMessage([1], controlMessages: [.receivedDescriptors(received.descriptors)]) }
    }
}
