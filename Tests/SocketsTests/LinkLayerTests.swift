import Glibc
import Sockets
import SystemPackage
import Testing

@Suite(.noDescriptorLeaks())
struct LinkLayerTests {
    @Test(.requires(.rawSockets))
    func packetSocketOnLoopbackSeesOurDatagram() throws {
        let packets = try Socket(.packet, .raw, .linkLayer(LinkLayerSocketAddress.allProtocols))
        let loopback = try LinkLayerSocketAddress(interface: "lo")
        try packets.bind(to: .linkLayer(loopback))
        try setReceiveTimeout(packets, seconds: 2)
        let bound = try #require(try packets.localAddress().linkLayer)
        #expect(bound.interfaceIndex == Int32(if_nametoindex("lo")))
        #expect(bound.protocolNumber == LinkLayerSocketAddress.allProtocols)

        let (server, serverAddress) = try udpReceiver()
        let marker = Array("packet-socket-\(getpid())-\(UInt32.random(in: 0...UInt32.max))".utf8)
        let client = try Socket(.inet, .datagram)
        _ = try client.send(marker, to: serverAddress)
        #expect(try server.receive(maxLength: 200) == marker)

        // Other tests may be talking on lo too: read frames until ours shows up (bounded).
        var seen: [LinkLayerSocketAddress.PacketType] = []
        for _ in 0..<1000 where seen.count < 2 {
            let datagram = try packets.receiveDatagram(maxLength: 65536)
            let frame = datagram.bytes
            let sender = datagram.sender
            guard frame.count >= 14 + 20 + 8 + marker.count, frame.suffix(marker.count).elementsEqual(marker) else { continue }
            let from = try #require(sender?.linkLayer)
            #expect(from.interfaceIndex == Int32(if_nametoindex("lo")))
            #expect(from.protocolNumber == LinkLayerSocketAddress.ipv4Protocol)
            #expect(from.hardwareType == 772)  // ARPHRD_LOOPBACK
            #expect(from.hardwareAddress == [0, 0, 0, 0, 0, 0])
            // Ethernet type 0x0800, then IPv4 to 127.0.0.1, protocol UDP, to the server's port.
            #expect(frame[12] == 0x08 && frame[13] == 0x00)
            #expect(frame[14 + 9] == UInt8(IPPROTO_UDP))
            #expect(Array(frame[(14 + 16)..<(14 + 20)]) == [127, 0, 0, 1])
            let port = try #require(serverAddress.port)
            #expect(UInt16(frame[14 + 20 + 2]) << 8 | UInt16(frame[14 + 20 + 3]) == port)
            seen.append(from.packetType)
        }
        // On loopback a packet socket sees each frame leave and arrive.
        #expect(Set(seen) == [.outgoing, .host], "\(seen)")
    }

    @Test func linkLayerAddressRoundTrips() throws {
        let address = try LinkLayerSocketAddress(
            protocolNumber: 0x86DD, interfaceIndex: 3, hardwareType: 1, packetType: .broadcast, hardwareAddress: [2, 0xFC, 0, 0, 0, 1])
        let socketAddress = SocketAddress.linkLayer(address)
        #expect(socketAddress.domain == .packet)
        #expect(socketAddress.linkLayer == address)
        #expect(socketAddress.netlink == nil)
        #expect(address.bytes.count == 20)
        #expect(Array(address.bytes[2..<4]) == [0x86, 0xDD])  // network byte order
        #expect(address.description.contains("02:fc:00:00:00:01"))
        #expect(throws: SocketError.self) { _ = try LinkLayerSocketAddress(interfaceIndex: 1, hardwareAddress: Array(repeating: 1, count: 9)) }
        #expect(throws: SocketError.self) { _ = try LinkLayerSocketAddress(interface: "no-such-interface0") }
        #expect(LinkLayerSocketAddress(bytes: [17, 0, 1]) == nil)
        // A hardware length larger than the bytes is clamped, not read past.
        var short = address.bytes
        short[11] = 8
        #expect(LinkLayerSocketAddress(bytes: Array(short[..<14]))?.hardwareAddress == [2, 0xFC])
    }

    @Test func netlinkRouteDumpListsLoopback() throws {
        let netlink = try Socket(.netlink, .raw, .netlinkRoute)
        try netlink.bind(to: .netlink(NetlinkSocketAddress()))
        try setReceiveTimeout(netlink, seconds: 5)
        let local = try #require(try netlink.localAddress().netlink)
        #expect(local.portID != 0)  // the kernel assigned a port id

        // RTM_GETLINK (18) with an empty ifinfomsg (16 bytes), as a dump.
        let replies = try netlink.netlinkRequest(NetlinkMessage(type: 18, flags: .dump, payload: Array(repeating: 0, count: 16)))
        var links: [Int32: String] = [:]
        for reply in replies {
            #expect(reply.type == 16)  // RTM_NEWLINK
            #expect(reply.flags.contains(.multipart))
            try #require(reply.payload.count >= 16)
            let index = reply.payload.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }
            let attributes = try NetlinkAttribute.decode(reply.payload[16...])
            if let name = attributes.first(where: { $0.type == 3 }) {  // IFLA_IFNAME
                links[index] = name.stringValue
            }
        }
        #expect(links[Int32(if_nametoindex("lo"))] == "lo", "\(links)")
        #expect(links.count == Set(links.values).count)
    }

    /// The promiscuity count of `lo` (`IFLA_PROMISCUITY`, attribute 30), from an RTM_GETLINK dump.
    func loopbackPromiscuity() throws -> UInt32? {
        let netlink = try Socket(.netlink, .raw, .netlinkRoute)
        try setReceiveTimeout(netlink, seconds: 5)
        let loopbackIndex = Int32(if_nametoindex("lo"))
        for reply in try netlink.netlinkRequest(NetlinkMessage(type: 18, flags: .dump, payload: Array(repeating: 0, count: 16)))
        where reply.payload.count >= 16 {
            let index = reply.payload.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }
            guard index == loopbackIndex else { continue }
            return try NetlinkAttribute.decode(reply.payload[16...]).first { $0.type == 30 }?.uint32Value
        }
        return nil
    }

    @Test(.requires(.rawSockets))
    func promiscuousMembershipIsCountedByTheKernel() throws {
        let before = try #require(try loopbackPromiscuity())
        let loopbackIndex = Int32(if_nametoindex("lo"))
        let packets = try Socket(.packet, .raw, .linkLayer(LinkLayerSocketAddress.allProtocols))
        try packets.addPacketMembership(.promiscuous, interfaceIndex: loopbackIndex)
        #expect(try loopbackPromiscuity() == before + 1)
        try packets.dropPacketMembership(.promiscuous, interfaceIndex: loopbackIndex)
        #expect(try loopbackPromiscuity() == before)
        // Closing the socket drops what it still holds.
        try packets.addPacketMembership(.promiscuous, interfaceIndex: loopbackIndex)
        #expect(try loopbackPromiscuity() == before + 1)
        try packets.close()
        #expect(try loopbackPromiscuity() == before)

        let other = try Socket(.packet, .raw, .linkLayer(LinkLayerSocketAddress.allProtocols))
        #expect(throws: SocketError.self) { try other.addPacketMembership(.multicast(Array(repeating: 1, count: 9)), interfaceIndex: loopbackIndex) }
        let error = #expect(throws: SocketError.self) { try other.addPacketMembership(.promiscuous, interfaceIndex: 0x7FFF_FFF0) }
        #expect(error?.errno == Errno(rawValue: ENODEV), "\(String(describing: error))")
    }

    @Test func netlinkErrorsAreReported() throws {
        let netlink = try Socket(.netlink, .raw, .netlinkRoute)
        try setReceiveTimeout(netlink, seconds: 5)
        // RTM_GETLINK for an interface index that does not exist (not a dump).
        var request = Array(repeating: UInt8(0), count: 16)
        request.replaceSubrange(4..<8, with: withUnsafeBytes(of: Int32(0x7FFF_FFF0)) { Array($0) })
        let error = #expect(throws: SocketError.self) {
            _ = try netlink.netlinkRequest(NetlinkMessage(type: 18, flags: .acknowledge, payload: request))
        }
        #expect(error?.errno == Errno(rawValue: ENODEV), "\(String(describing: error))")
    }

    @Test func netlinkDecodersRejectMalformedInput() throws {
        let message = NetlinkMessage(type: 3, flags: .multipart, sequence: 9, portID: 1, payload: [1, 2, 3])
        let encoded = message.encoded
        #expect(encoded.count == 20)
        #expect(try NetlinkMessage.decode(encoded) == [message])
        #expect(try NetlinkMessage.decode(encoded + encoded) == [message, message])
        #expect(throws: SocketError.self) { _ = try NetlinkMessage.decode(Array(encoded[..<10])) }
        var tooLong = encoded
        tooLong[0] = 200
        #expect(throws: SocketError.self) { _ = try NetlinkMessage.decode(tooLong) }
        var tooShort = encoded
        tooShort[0] = 4
        #expect(throws: SocketError.self) { _ = try NetlinkMessage.decode(tooShort) }

        let attribute = NetlinkAttribute(type: 3, payload: Array("lo\0".utf8))
        #expect(attribute.encoded.count == 8)
        #expect(try NetlinkAttribute.decode(attribute.encoded + attribute.encoded) == [attribute, attribute])
        #expect(attribute.stringValue == "lo")
        #expect(throws: SocketError.self) { _ = try NetlinkAttribute.decode([9, 0, 3, 0, 1]) }
        #expect(throws: SocketError.self) { _ = try NetlinkAttribute.decode([2, 0, 3, 0]) }
        #expect(throws: SocketError.self) { _ = try NetlinkAttribute.decode([1, 2]) }

        var random = SplitMix64(state: 7)
        for _ in 0..<3000 {
            let bytes = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = try? NetlinkMessage.decode(bytes)
            _ = try? NetlinkAttribute.decode(bytes)
            _ = LinkLayerSocketAddress(bytes: bytes)
            _ = NetlinkSocketAddress(bytes: bytes)
        }
    }
}
