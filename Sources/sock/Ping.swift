import ArgumentParser
import Foundation
import Sockets
import Synchronization

/// `sock ping`: ICMP echo over a raw socket, IPv4 and IPv6.
struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send ICMP echo requests (raw socket, IPv4 or IPv6) and report the replies.",
        usage: "sock ping [-c COUNT] [-i SECS] [-W SECS] [-s SIZE] [-4|-6] HOST",
        discussion: """
            Needs root (CAP_NET_RAW) for the raw socket; without it, an unprivileged ICMP \
            "ping" socket is tried (allowed by net.ipv4.ping_group_range). Prints a line per \
            reply and a summary like ping's; exits 1 when no reply came. Interrupting (Ctrl-C) \
            prints the summary so far.

            Examples:
              sudo sock ping -c 3 127.0.0.1
              sudo sock ping -6 -i 0.2 -s 1000 ::1
            """
    )

    @Option(name: .shortAndLong, help: "How many requests to send.")
    var count = 4

    @Option(name: .shortAndLong, help: ArgumentHelp("Seconds between requests.", valueName: "SECS"))
    var interval = 1.0

    @Option(name: .customShort("W"), help: ArgumentHelp("Seconds to wait for a reply after the last request.", valueName: "SECS"))
    var wait = 1.0

    @Option(name: .shortAndLong, help: ArgumentHelp("Bytes of data in each request (0...65507).", valueName: "SIZE"))
    var size = 56

    @OptionGroup var family: FamilyOptions

    @Argument(help: "The host to ping.")
    var host: String

    func validate() throws {
        guard (1...1_000_000).contains(count) else { throw ValidationError("-c \(count) is outside 1...1000000") }
        guard (0...65_507).contains(size) else { throw ValidationError("-s \(size) is outside 0...65507") }
    }

    func run() throws {
        let intervalDuration = try seconds(interval, option: "-i", minimum: 0.01)
        let waitDuration = try seconds(wait, option: "-W", minimum: 0.01)
        guard let target = try resolveEndpoint(host: host, port: 0, family: family.family, type: .datagram).first else {
            throw ToolError.runtime("no address for \(host)")
        }
        let pinger = try Pinger(target: target, payloadSize: size)
        defer { try? pinger.socket.close() }
        let label = Resolve.host(of: target)
        try Console.out("PING \(host) (\(label)): \(size) data bytes\(pinger.isRaw ? "" : " (ICMP datagram socket)")\n")
        let statistics = pinger.statistics
        let interruptKey = Interrupts.onInterrupt {
            try? Console.out(statistics.summary(host: host))
        }
        defer { Interrupts.remove(interruptKey) }
        try pinger.run(count: count, interval: intervalDuration, wait: waitDuration)
        try Console.out(statistics.summary(host: host))
        if statistics.snapshot.received == 0 {
            throw ToolError.runtime("no reply from \(label)")
        }
    }
}

/// Counters for ping's summary, shared with the interrupt handler.
final class PingStatistics: Sendable {
    struct Snapshot {
        var transmitted = 0
        var received = 0
        var duplicates = 0
        var roundTrips: [Double] = []
    }

    private let state = LockedValue(Snapshot())

    var snapshot: Snapshot { state.withLock { $0 } }

    func update(_ body: (inout Snapshot) -> Void) { state.withLock { body(&$0) } }

    func summary(host: String) -> String {
        let current = snapshot
        let loss = current.transmitted == 0 ? 0 : 100 * Double(current.transmitted - current.received) / Double(current.transmitted)
        var text = "\n--- \(host) ping statistics ---\n"
        text += "\(current.transmitted) packets transmitted, \(current.received) received"
        if current.duplicates > 0 { text += ", +\(current.duplicates) duplicates" }
        text += String(format: ", %.0f%% packet loss\n", loss)
        if let minimum = current.roundTrips.min(), let maximum = current.roundTrips.max() {
            let average = current.roundTrips.reduce(0, +) / Double(current.roundTrips.count)
            text += String(format: "rtt min/avg/max = %.3f/%.3f/%.3f ms\n", minimum, average, maximum)
        }
        return text
    }
}

/// Sends echo requests and matches the replies.
final class Pinger {
    let socket: Socket
    let target: SocketAddress
    let isIPv6: Bool
    /// A raw socket sees IPv4 headers and every ICMP packet; a datagram "ping" socket sees
    /// only its own replies, with the identifier chosen by the kernel.
    let isRaw: Bool
    let identifier: UInt16
    let payload: [UInt8]
    let statistics = PingStatistics()
    /// Print a line per reply.
    var printsReplies = true
    private var sentAt: [UInt16: ContinuousClock.Instant] = [:]
    private var answered: Set<UInt16> = []

    init(target: SocketAddress, payloadSize: Int) throws(ToolError) {
        self.target = target
        isIPv6 = target.domain == .inet6
        identifier = UInt16(truncatingIfNeeded: ProcessInfo.processInfo.processIdentifier)
        payload = (0..<payloadSize).map { UInt8(truncatingIfNeeded: $0) }
        let proto: SocketProtocol = isIPv6 ? .icmpv6 : .icmp
        do {
            socket = try Socket(target.domain, .raw, proto)
            isRaw = true
        } catch let rawError {
            guard rawError.errno == .notPermitted || rawError.errno == .permissionDenied,
                let fallback = try? Socket(target.domain, .datagram, proto)
            else {
                throw ToolError.runtime("\(rawError) (ping needs root or CAP_NET_RAW, or net.ipv4.ping_group_range covering your group)")
            }
            socket = fallback
            isRaw = false
        }
        if isIPv6 {
            try? socket.set(.ipv6ReceiveHopLimit, true)
        }
    }

    /// The echo request for a sequence number.
    func request(sequence: UInt16) -> [UInt8] {
        var packet: [UInt8] = [isIPv6 ? 128 : 8, 0, 0, 0]
        packet += [UInt8(identifier >> 8), UInt8(truncatingIfNeeded: identifier)]
        packet += [UInt8(sequence >> 8), UInt8(truncatingIfNeeded: sequence)]
        packet += payload
        if !isIPv6 {
            // ICMPv6 checksums cover a pseudo-header, so the kernel fills them in.
            let sum = Self.checksum(packet)
            packet[2] = UInt8(sum >> 8)
            packet[3] = UInt8(truncatingIfNeeded: sum)
        }
        return packet
    }

    /// The Internet checksum (RFC 1071).
    static func checksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var index = 0
        while index + 1 < bytes.count {
            sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(truncatingIfNeeded: sum)
    }

    func run(count: Int, interval: Duration, wait: Duration) throws(ToolError) {
        var sequence: UInt16 = 0
        var nextSend = ContinuousClock.now
        var lastSend = ContinuousClock.now
        var sent = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536 + 60, alignment: 16)
        defer { buffer.deallocate() }
        let control: ControlMessageBuffer
        do {
            control = try ControlMessageBuffer(capacity: 128)
        } catch {
            throw ToolError(error)
        }
        while true {
            let now = ContinuousClock.now
            if sent < count && now >= nextSend {
                sequence &+= 1
                let packet = request(sequence: sequence)
                sentAt[sequence] = .now
                do {
                    _ = try socket.send(packet, to: target)
                } catch {
                    throw ToolError(error)
                }
                sent += 1
                statistics.update { $0.transmitted += 1 }
                lastSend = .now
                nextSend = nextSend.advanced(by: interval)
            }
            if sent == count && (answered.count >= sent || ContinuousClock.now >= lastSend.advanced(by: wait)) { return }
            let deadline = sent < count ? nextSend : lastSend.advanced(by: wait)
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { continue }
            do {
                guard try !socket.poll(.readable, timeout: left).isEmpty else { continue }
                let message = try socket.receiveMessage(into: [buffer], controlBuffer: control, flags: .dontWait)
                try handle(UnsafeRawBufferPointer(rebasing: buffer[..<min(message.byteCount, buffer.count)]), message: message)
            } catch let error as SocketError where error.isWouldBlock {
                continue
            } catch {
                throw ToolError(error)
            }
        }
    }

    /// Reports a packet if it is a reply to one of ours.
    private func handle(_ packet: UnsafeRawBufferPointer, message: ReceivedMessage) throws(ToolError) {
        var offset = 0
        var hopLimit: Int?
        if !isIPv6 && isRaw {
            // A raw IPv4 socket receives the IP header: its length is in the low nibble.
            guard packet.count >= 20 else { return }
            offset = Int(packet[0] & 0x0F) * 4
            hopLimit = Int(packet[8])
        } else if isIPv6 {
            for case .hopLimit(let hops) in message.controlMessages { hopLimit = hops }
        }
        guard packet.count >= offset + 8 else { return }
        let type = packet[offset]
        guard type == (isIPv6 ? 129 : 0) else { return }  // echo reply
        let identifier = UInt16(packet[offset + 4]) << 8 | UInt16(packet[offset + 5])
        if isRaw && identifier != self.identifier { return }
        let sequence = UInt16(packet[offset + 6]) << 8 | UInt16(packet[offset + 7])
        guard let sentTime = sentAt[sequence] else { return }
        let roundTrip = sentTime.duration(to: .now).seconds * 1000
        let duplicate = answered.contains(sequence)
        answered.insert(sequence)
        let data = packet[(offset + 8)...]
        let intact = data.elementsEqual(payload)
        statistics.update {
            if duplicate {
                $0.duplicates += 1
            } else {
                $0.received += 1
                $0.roundTrips.append(roundTrip)
            }
        }
        let from = message.sender.map { Resolve.host(of: $0) } ?? "?"
        var line = "\(packet.count - offset) bytes from \(from): icmp_seq=\(sequence)"
        if let hopLimit { line += isIPv6 ? " hlim=\(hopLimit)" : " ttl=\(hopLimit)" }
        line += String(format: " time=%.3f ms", roundTrip)
        if duplicate { line += " (DUP!)" }
        if !intact { line += " (wrong data)" }
        if printsReplies { try Console.out(line + "\n") }
    }
}
