import ArgumentParser
import Foundation
import Sockets
import Synchronization

/// `sock tour`: every socket type and domain the library supports, at work on loopback.
struct Tour: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every socket type and domain on loopback and print what each did.",
        discussion: """
            TCP and UDP over IPv4 and IPv6, Unix stream, datagram and sequenced-packet sockets \
            (by path and in the abstract namespace), socketpair, descriptor passing, datagram \
            batches, sendfile and splice, AF_NETLINK, AF_PACKET, raw ICMP, select, poll, epoll, \
            name resolution, socket options and message I/O: each row says what was \
            exchanged and how long it took (-v adds the system calls). Rows that need something missing (root for \
            raw sockets, IPv6 on loopback) are skipped with the reason. Exits 0 when no row \
            failed. Needs no setup and sends nothing beyond loopback.

            Example:
              swift run sock tour
            """
    )

    @Flag(name: .shortAndLong, help: "Add a column with the system calls each row made.")
    var verbose = false

    func run() throws {
        let tour = TourRunner()
        let rows = tour.runAll()
        let header = ["#", "what", "exchanged", "time", "result"] + (verbose ? ["calls"] : [])
        let table = Format.table(
            header,
            rows.enumerated().map { index, row in
                [String(index + 1), row.title, row.exchanged, Format.duration(row.elapsed), row.result] + (verbose ? [row.calls] : [])
            })
        let failed = rows.filter(\.failed).count
        let skipped = rows.filter(\.skipped).count
        var summary = "\n\(rows.count - failed - skipped) passed, \(skipped) skipped, \(failed) failed"
        if skipped > 0 { summary += " (skipped rows say what they need)" }
        try Console.out(table + summary + "\n")
        if failed > 0 {
            throw ToolError.runtime("tour: \(failed) of \(rows.count) rows failed")
        }
    }
}

/// A row of the tour's table.
struct TourRow {
    var title: String
    var calls: String
    var exchanged = ""
    var elapsed: Duration = .zero
    var result = "ok"
    var failed = false
    var skipped = false
}

/// A reason to skip a row (something the machine lacks), not a failure.
struct TourSkip: Error {
    let reason: String
}

/// A check inside a row that did not hold.
struct TourCheckFailed: Error, CustomStringConvertible {
    let description: String
}

/// Runs the tour's steps; every blocking call is bounded by a receive timeout.
final class TourRunner {
    /// Every wait in the tour ends within this.
    static let patience: Duration = .seconds(5)
    private var cleanups: [() -> Void] = []
    private let tag = "\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"

    func runAll() -> [TourRow] {
        defer { for cleanup in cleanups.reversed() { cleanup() } }
        let steps: [(String, String, () throws -> String)] = [
            ("TCP over IPv4", "socket bind listen connect accept4 send recv shutdown", { try self.tcp(.ipv4(.loopback, port: 0)) }),
            ("TCP over IPv6", "socket bind listen connect accept4 send recv shutdown", { try self.tcp(.ipv6(.loopback, port: 0)) }),
            ("UDP over IPv4", "socket bind sendto recvfrom connect send recv", { try self.udp(.ipv4(.loopback, port: 0)) }),
            ("UDP over IPv6", "socket bind sendto recvfrom connect send recv", { try self.udp(.ipv6(.loopback, port: 0)) }),
            ("Unix stream (path)", "socket bind listen connect accept4 send recv", { try self.unixStream(self.path("stream")) }),
            ("Unix stream (abstract)", "socket bind listen connect accept4 send recv", { try self.unixStream(.unix(abstract: "sock-tour-\(self.tag)")) }),
            ("Unix datagram", "socket bind sendto recvfrom", unixDatagram),
            ("Unix seqpacket", "socket bind listen connect accept4 send recv(MSG_TRUNC)", unixSequencedPacket),
            ("socketpair", "socketpair send recv dup", socketPair),
            ("descriptor passing", "sendmsg/recvmsg SCM_RIGHTS (MSG_CMSG_CLOEXEC)", descriptorPassing),
            ("datagram batches", "sendmmsg recvmmsg", datagramBatches),
            ("sendfile + splice", "sendfile splice pipe2", zeroCopy),
            ("AF_NETLINK", "socket(AF_NETLINK) bind sendto recvfrom (RTM_GETLINK dump)", netlinkDump),
            ("AF_PACKET on lo", "socket(AF_PACKET) bind recvfrom", packetCapture),
            ("raw ICMP (IPv4)", "socket(SOCK_RAW) sendto recvmsg", { try self.rawPing(.ipv4(.loopback, port: 0)) }),
            ("raw ICMPv6", "socket(SOCK_RAW) sendto recvmsg", { try self.rawPing(.ipv6(.loopback, port: 0)) }),
            ("select", "select", selectStep),
            ("poll", "poll", pollStep),
            ("epoll + eventfd", "epoll_create1 epoll_ctl epoll_wait eventfd", epollStep),
            ("non-blocking connect", "connect(EINPROGRESS) epoll_wait getsockopt(SO_ERROR) accept4", nonBlockingConnect),
            ("refused connect", "connect -> ECONNREFUSED", refusedConnect),
            ("name resolution", "getaddrinfo getnameinfo", resolution),
            ("socket options", "setsockopt getsockopt", options),
            ("message I/O", "sendmsg recvmsg (scatter/gather) MSG_PEEK", messageIO),
        ]
        var rows: [TourRow] = []
        for (title, calls, body) in steps {
            var row = TourRow(title: title, calls: calls)
            let start = ContinuousClock.now
            do {
                row.exchanged = try body()
            } catch let skip as TourSkip {
                row.skipped = true
                row.result = "skipped: \(skip.reason)"
            } catch {
                row.failed = true
                row.result = "FAIL: \(ToolError(error).message)"
            }
            row.elapsed = start.duration(to: .now)
            rows.append(row)
        }
        return rows
    }

    // MARK: Helpers

    /// A socket whose receives and accepts give up after ``patience``.
    private func socket(_ domain: SocketDomain, _ type: SocketType, _ proto: SocketProtocol = .default) throws -> Socket {
        let socket: Socket
        do {
            socket = try Socket(domain, type, proto)
        } catch {
            if domain == .inet6, error.errno == .addressFamilyNotSupported {
                throw TourSkip(reason: "IPv6 is not available")
            }
            throw error
        }
        cleanups.append { try? socket.close() }
        try socket.set(.receiveTimeout, Self.patience)
        return socket
    }

    /// Binds, turning "IPv6 loopback missing" into a skip.
    private func bind(_ socket: Socket, _ address: SocketAddress) throws {
        do {
            try socket.bind(to: address)
        } catch {
            if address.domain == .inet6, error.errno == .addressNotAvailable || error.errno == .addressFamilyNotSupported {
                throw TourSkip(reason: "IPv6 loopback (::1) is not configured")
            }
            throw error
        }
    }

    /// A unique Unix path under /tmp, removed at the end.
    private func path(_ name: String) throws -> SocketAddress {
        let path = "/tmp/sock-tour-\(tag)-\(name).sock"
        cleanups.append { try? FileManager.default.removeItem(atPath: path) }
        return try .unix(path: path)
    }

    private func check(_ condition: Bool, _ what: @autoclosure () -> String) throws {
        if !condition { throw TourCheckFailed(description: what()) }
    }

    private func receiveAll(_ socket: Socket) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while true {
            let chunk = try socket.receive(maxLength: 65_536)
            if chunk.isEmpty { return bytes }
            bytes += chunk
            try check(bytes.count <= 1 << 20, "more data than was sent")
        }
    }

    // MARK: Steps

    /// A listener and a client: the client sends, half-closes, and reads the echo to EOF.
    private func tcp(_ address: SocketAddress) throws -> String {
        let listener = try socket(address.domain, .stream)
        try listener.set(.reuseAddress, true)
        try bind(listener, address)
        try listener.listen()
        let client = try socket(address.domain, .stream)
        try client.connect(to: try listener.localAddress())
        let (server, peer) = try listener.accept()
        cleanups.append { try? server.close() }
        try server.set(.receiveTimeout, Self.patience)
        try check(peer == (try client.localAddress()), "accept's peer \(peer) is not the client")
        let info = try client.get(.tcpInfo)
        try check(info.state == .established, "TCP_INFO says \(info.state), not ESTABLISHED")
        let message = Array("hello over TCP".utf8)
        try client.sendAll(message)
        try client.shutdown(.write)
        let received = try receiveAll(server)
        try check(received == message, "server received \(received.count) bytes, not the \(message.count) sent")
        try server.sendAll(received.reversed())
        try server.close()
        let reply = try receiveAll(client)
        try check(reply == message.reversed(), "client did not get the reply back")
        return "\(message.count) B each way + half-close, TCP_INFO on \(try listener.localAddress())"
    }

    private func udp(_ address: SocketAddress) throws -> String {
        let server = try socket(address.domain, .datagram)
        try bind(server, address)
        let client = try socket(address.domain, .datagram)
        let serverAddress = try server.localAddress()
        let message = Array("datagram".utf8)
        _ = try client.send(message, to: serverAddress)
        let datagram = try server.receiveDatagram(maxLength: 1500)
        let bytes = datagram.bytes
        let sender = datagram.sender
        try check(bytes == message, "the datagram changed on the way")
        // The client was bound implicitly to the wildcard address; the sender has the real one.
        try check(sender?.port == (try client.localAddress()).port && sender?.ipAddress?.isLoopback == true,
                  "the sender \(sender?.description ?? "none") is not the client")
        // Connected UDP: default destination, and only that peer's datagrams.
        try client.connect(to: serverAddress)
        _ = try client.send(Array("connected".utf8))
        let second = try server.receiveDatagram(maxLength: 1500)
        _ = try server.send(second.bytes, to: try client.localAddress())
        let echo = try client.receive(maxLength: 1500)
        try check(echo == Array("connected".utf8), "the connected reply differs")
        return "2 datagrams + 1 reply, connected and not"
    }

    private func unixStream(_ address: SocketAddress) throws -> String {
        let listener = try socket(.unix, .stream)
        try listener.bind(to: address)
        try listener.listen()
        let client = try socket(.unix, .stream)
        try client.connect(to: address)
        let (server, _) = try listener.accept()
        cleanups.append { try? server.close() }
        try server.set(.receiveTimeout, Self.patience)
        let credentials = try server.get(.peerCredentials)
        try check(credentials.pid == ProcessInfo.processInfo.processIdentifier, "SO_PEERCRED names pid \(credentials.pid)")
        let message = [UInt8](repeating: 0xA5, count: 100_000)
        try client.sendAll(message)
        try client.shutdown(.write)
        let received = try receiveAll(server)
        try check(received == message, "received \(received.count) of \(message.count) bytes")
        return "100,000 B + SO_PEERCRED on \(address.description.count > 30 ? "/tmp/sock-tour-…" : address.description)"
    }

    private func unixDatagram() throws -> String {
        let serverAddress = try path("dgram-server")
        let clientAddress = try path("dgram-client")
        let server = try socket(.unix, .datagram)
        try server.bind(to: serverAddress)
        let client = try socket(.unix, .datagram)
        try client.bind(to: clientAddress)
        _ = try client.send(Array("ping".utf8), to: serverAddress)
        let datagram = try server.receiveDatagram(maxLength: 100)
        let bytes = datagram.bytes
        let sender = datagram.sender
        try check(bytes == Array("ping".utf8) && sender == clientAddress, "wrong datagram or sender")
        _ = try server.send(Array("pong".utf8), to: clientAddress)
        try check(try client.receive(maxLength: 100) == Array("pong".utf8), "no reply")
        return "2 datagrams between two paths"
    }

    private func unixSequencedPacket() throws -> String {
        let address = try path("seqpacket")
        let listener = try socket(.unix, .sequencedPacket)
        try listener.bind(to: address)
        try listener.listen()
        let client = try socket(.unix, .sequencedPacket)
        try client.connect(to: address)
        let (server, _) = try listener.accept()
        cleanups.append { try? server.close() }
        try server.set(.receiveTimeout, Self.patience)
        _ = try client.send(Array("first".utf8))
        _ = try client.send(Array("second message".utf8))
        let first = try server.receive(maxLength: 100)
        // A buffer too small for the record: the rest is discarded and MSG_TRUNC reported.
        let (bytes, message) = try server.receiveMessage(maxLength: 6)
        try check(first == Array("first".utf8), "the first record was merged or split")
        try check(bytes == Array("second".utf8) && message.flags.contains(.truncated), "truncation was not reported")
        try client.close()
        try check(try server.receive(maxLength: 100).isEmpty, "no end-of-file after the peer closed")
        return "2 records kept apart, MSG_TRUNC, EOF"
    }

    private func socketPair() throws -> String {
        let (left, right) = try Socket.pair(.unix, .stream)
        cleanups.append { try? left.close(); try? right.close() }
        try right.set(.receiveTimeout, Self.patience)
        try left.set(.receiveTimeout, Self.patience)
        let copy = try left.duplicate()
        cleanups.append { try? copy.close() }
        try copy.sendAll("through a duplicate")
        try check(try right.receive(maxLength: 100) == Array("through a duplicate".utf8), "dup'd descriptor did not send")
        try right.sendAll("back")
        try check(try left.receive(maxLength: 100) == Array("back".utf8), "no reply")
        return "both ways, via dup"
    }

    private func descriptorPassing() throws -> String {
        let (left, right) = try Socket.pair(.unix, .stream)
        let (inner, innerPeer) = try Socket.pair(.unix, .datagram)
        cleanups.append { try? left.close(); try? right.close(); try? inner.close(); try? innerPeer.close() }
        try right.set(.receiveTimeout, Self.patience)
        try innerPeer.set(.receiveTimeout, Self.patience)
        try left.sendDescriptors([inner], bytes: Array("fd".utf8))
        let received = try right.receiveDescriptors(maxCount: 4)
        try check(received.bytes == Array("fd".utf8) && received.descriptors.count == 1 && !received.wereTruncated,
                  "received \(received.descriptors.count) descriptors with \(received.bytes.count) bytes")
        let passed = try received.descriptors[0].makeSocket()
        cleanups.append { try? passed.close() }
        try check(try passed.isCloseOnExec(), "the passed descriptor is not close-on-exec")
        _ = try passed.send(Array("through the passed descriptor".utf8))
        try check(try innerPeer.receive(maxLength: 100) == Array("through the passed descriptor".utf8), "nothing came through the passed socket")
        return "a socket passed, then used"
    }

    private func datagramBatches() throws -> String {
        let server = try socket(.inet, .datagram)
        try server.bind(to: .ipv4(.loopback, port: 0))
        let client = try socket(.inet, .datagram)
        let serverAddress = try server.localAddress()
        let outgoing = try DatagramBatch(capacity: 8, maximumDatagramSize: 64)
        for index in 0..<8 { try outgoing.append(Array("datagram \(index)".utf8), to: serverAddress) }
        let sent = try client.sendBatch(outgoing)
        let incoming = try DatagramBatch(capacity: 8, maximumDatagramSize: 64)
        var received: [[UInt8]] = []
        var calls = 0
        while received.count < sent && calls < 8 {
            let count = try server.receiveBatch(into: incoming)
            for index in 0..<count { received.append(try incoming.bytes(at: index)) }
            calls += 1
        }
        try check(sent == 8 && received == (0..<8).map { Array("datagram \($0)".utf8) }, "sent \(sent), received \(received.count)")
        return "8 datagrams: 1 sendmmsg, \(calls) recvmmsg"
    }

    private func zeroCopy() throws -> String {
        let path = "/tmp/sock-tour-\(tag)-sendfile"
        cleanups.append { try? FileManager.default.removeItem(atPath: path) }
        let content = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try Data(content).write(to: URL(fileURLWithPath: path))
        let (source, middle) = try Socket.pair(.unix, .stream)
        let (relay, sink) = try Socket.pair(.unix, .stream)
        cleanups.append { try? source.close(); try? middle.close(); try? relay.close(); try? sink.close() }
        try sink.set(.receiveTimeout, Self.patience)
        try middle.set(.receiveTimeout, Self.patience)
        // File to socket in the kernel, then socket to socket through a pipe, no user copy.
        let sent = try source.sendFile(path: path)
        let spliced = try middle.spliceAll(to: relay, count: Int64(content.count))
        var received: [UInt8] = []
        while received.count < content.count {
            let chunk = try sink.receive(maxLength: 65_536)
            if chunk.isEmpty { break }
            received += chunk
        }
        try check(sent == 100_000 && spliced == 100_000 && received == content, "sent \(sent), spliced \(spliced), received \(received.count)")
        return "100,000 B file -> socket -> pipe -> socket"
    }

    private func netlinkDump() throws -> String {
        let netlink = try socket(.netlink, .raw, .netlinkRoute)
        try netlink.bind(to: .netlink(NetlinkSocketAddress()))
        // RTM_GETLINK (18) with an empty ifinfomsg (16 bytes), as a dump; RTM_NEWLINK replies.
        let replies = try netlink.netlinkRequest(NetlinkMessage(type: 18, flags: .dump, payload: Array(repeating: 0, count: 16)))
        var names: [String] = []
        for reply in replies where reply.type == 16 && reply.payload.count >= 16 {
            if let name = try NetlinkAttribute.decode(reply.payload[16...]).first(where: { $0.type == 3 }) {  // IFLA_IFNAME
                names.append(name.stringValue)
            }
        }
        try check(names.contains("lo"), "the link dump has no lo: \(names)")
        return "RTM_GETLINK dump: \(names.count) links (\(names.prefix(3).joined(separator: ", "))\(names.count > 3 ? ", …" : ""))"
    }

    private func packetCapture() throws -> String {
        let packets: Socket
        do {
            packets = try Socket(.packet, .raw, .linkLayer(LinkLayerSocketAddress.allProtocols))
        } catch {
            if error.errno == .notPermitted || error.errno == .permissionDenied {
                throw TourSkip(reason: "needs root (CAP_NET_RAW)")
            }
            throw error
        }
        cleanups.append { try? packets.close() }
        try packets.set(.receiveTimeout, Self.patience)
        try packets.bind(to: .linkLayer(try LinkLayerSocketAddress(interface: "lo")))
        let server = try socket(.inet, .datagram)
        try server.bind(to: .ipv4(.loopback, port: 0))
        let client = try socket(.inet, .datagram)
        let marker = Array("sock-tour-frame-\(tag)".utf8)
        _ = try client.send(marker, to: try server.localAddress())
        // Other programs may talk on lo too (a benchmark sends thousands of frames in a few
        // milliseconds): read frames until ours shows up, for a bounded time.
        let deadline = ContinuousClock.now.advanced(by: Self.patience)
        while ContinuousClock.now < deadline {
            let datagram = try packets.receiveDatagram(maxLength: 65_536)
            let frame = datagram.bytes
            if frame.count >= 14 + 20 + 8 + marker.count, frame.suffix(marker.count).elementsEqual(marker) {
                return "our UDP datagram seen as a \(frame.count)-byte frame"
            }
        }
        throw TourCheckFailed(description: "our datagram never appeared on lo")
    }

    private func rawPing(_ target: SocketAddress) throws -> String {
        do {
            let probe = try Socket(target.domain, .raw, target.domain == .inet6 ? .icmpv6 : .icmp)
            try? probe.close()
        } catch {
            if error.errno == .notPermitted || error.errno == .permissionDenied {
                throw TourSkip(reason: "needs root (CAP_NET_RAW)")
            }
            if target.domain == .inet6, error.errno == .addressFamilyNotSupported {
                throw TourSkip(reason: "IPv6 is not available")
            }
            throw error
        }
        if target.domain == .inet6 {
            // Is ::1 configured? Binding a throw-away socket to it says.
            try bind(try socket(.inet6, .datagram), .ipv6(.loopback, port: 0))
        }
        let pinger = try Pinger(target: target, payloadSize: 32)
        cleanups.append { try? pinger.socket.close() }
        pinger.printsReplies = false
        try pinger.run(count: 2, interval: .milliseconds(20), wait: Self.patience)
        let statistics = pinger.statistics.snapshot
        try check(statistics.received == 2, "\(statistics.received) of 2 echo replies")
        let average = statistics.roundTrips.reduce(0, +) / Double(max(1, statistics.roundTrips.count))
        return String(format: "2 echo requests, 2 replies, avg %.3f ms", average)
    }

    private func selectStep() throws -> String {
        let (left, right) = try Socket.pair(.unix, .stream)
        cleanups.append { try? left.close(); try? right.close() }
        try check(try Socket.select(forReading: [right], timeout: .zero).isEmpty, "readable before anything was sent")
        try left.sendAll("x")
        let ready = try Socket.select(forReading: [right], forWriting: [left], timeout: Self.patience)
        try check(ready.readable.count == 1 && ready.readable[0] === right, "not readable after a send")
        try check(ready.writable.count == 1 && ready.writable[0] === left, "the sender is not writable")
        return "idle, then readable after 1 B (and writable)"
    }

    private func pollStep() throws -> String {
        let (left, right) = try Socket.pair(.unix, .stream)
        cleanups.append { try? left.close(); try? right.close() }
        var entries = [PollEntry(right, events: [.readable, .readHangUp])]
        try check(try Socket.poll(&entries, timeout: .zero) == 0, "events before anything happened")
        try left.sendAll("x")
        try Socket.poll(&entries, timeout: Self.patience)
        try check(entries[0].returnedEvents.contains(.readable), "no POLLIN after a send")
        try left.shutdown(.write)
        _ = try right.receive(maxLength: 10)
        try Socket.poll(&entries, timeout: Self.patience)
        try check(entries[0].returnedEvents.contains(.readHangUp), "no POLLRDHUP after the peer's shutdown")
        return "POLLIN, then POLLRDHUP"
    }

    private func epollStep() throws -> String {
        let epoll = try Epoll()
        let notifier = try EventNotifier()
        let (left, right) = try Socket.pair(.unix, .stream)
        cleanups.append { try? left.close(); try? right.close(); try? epoll.close(); try? notifier.close() }
        try epoll.add(right, events: [.readable], data: 1)
        try epoll.add(notifier.descriptor, events: [.readable], data: 2)
        try check(try epoll.wait(timeout: .zero).isEmpty, "events before anything happened")
        // Another thread wakes the waiter through the eventfd.
        startThread("tour-wake") { try? notifier.signal() }
        let woken = try epoll.wait(timeout: Self.patience)
        try check(woken.map(\.data) == [2], "the eventfd did not wake epoll_wait")
        try check(try notifier.drain() == 1, "the eventfd count is not 1")
        try left.sendAll("x")
        let ready = try epoll.wait(timeout: Self.patience)
        try check(ready.count == 1 && ready[0].data == 1 && ready[0].events.contains(.readable), "the socket did not become readable")
        return "cross-thread wake, then EPOLLIN"
    }

    private func nonBlockingConnect() throws -> String {
        let listener = try socket(.inet, .stream)
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen()
        try listener.setNonBlocking(true)
        try check(try listener.tryAccept() == nil, "accepted a connection that nobody made")
        let client = try Socket(.inet, .stream, nonBlocking: true)
        cleanups.append { try? client.close() }
        let epoll = try Epoll()
        cleanups.append { try? epoll.close() }
        let finishedAtOnce = try client.tryConnect(to: try listener.localAddress())
        if !finishedAtOnce {
            try epoll.add(client, events: [.writable])
            try check(try epoll.wait(timeout: Self.patience).count == 1, "the connect did not finish")
            try client.finishConnect()
        }
        try listener.setNonBlocking(false)
        let (server, _) = try listener.accept()
        cleanups.append { try? server.close() }
        return finishedAtOnce ? "connected at once" : "EINPROGRESS, then writable"
    }

    private func refusedConnect() throws -> String {
        // A bound socket that does not listen: connecting to its port is refused, and the port
        // cannot be taken by anyone else meanwhile.
        let holder = try socket(.inet, .stream)
        try holder.bind(to: .ipv4(.loopback, port: 0))
        let client = try socket(.inet, .stream)
        do {
            try client.connect(to: try holder.localAddress())
        } catch {
            try check(error.errno == .connectionRefused, "expected ECONNREFUSED, got \(error)")
            return "\(error.reasonText)"
        }
        throw TourCheckFailed(description: "a port with no listener accepted a connection")
    }

    private func resolution() throws -> String {
        let numeric = try AddressInfo.lookup(host: "127.0.0.1", port: 8080, type: .stream, flags: .numericHost)
        try check(numeric.first?.address == .ipv4(.loopback, port: 8080), "numeric lookup gave \(numeric.map(\.address))")
        let local: [AddressInfo]
        do {
            local = try AddressInfo.lookup(host: "localhost", service: nil, type: .stream)
        } catch {
            if error.isHostNotFound { throw TourSkip(reason: "localhost does not resolve (no entry in /etc/hosts)") }
            throw error
        }
        try check(local.contains { $0.address.ipAddress?.isLoopback == true }, "localhost is not a loopback address")
        let (name, _) = try NameInfo.lookup(.ipv4(.loopback, port: 0))
        try check(!name.isEmpty, "getnameinfo gave no name")
        return "localhost -> \(local.compactMap(\.address.ipAddress).map(\.description).uniqued().joined(separator: ", ")); 127.0.0.1 -> \(name)"
    }

    private func options() throws -> String {
        let socket = try socket(.inet, .stream)
        try socket.set(.reuseAddress, true)
        try check(try socket.get(.reuseAddress), "SO_REUSEADDR did not stick")
        try socket.set(.tcpNoDelay, true)
        try check(try socket.get(.tcpNoDelay), "TCP_NODELAY did not stick")
        try socket.set(.keepAlive, true)
        try check(try socket.get(.keepAlive), "SO_KEEPALIVE did not stick")
        try socket.set(.receiveBufferSize, 65_536)
        let buffer = try socket.get(.receiveBufferSize)
        try check(buffer >= 65_536, "SO_RCVBUF is \(buffer)")
        try check(try socket.get(.socketType) == .stream, "SO_TYPE is not SOCK_STREAM")
        return "SO_REUSEADDR TCP_NODELAY SO_KEEPALIVE SO_RCVBUF=\(buffer) SO_TYPE"
    }

    private func messageIO() throws -> String {
        let (left, right) = try Socket.pair(.unix, .datagram)
        cleanups.append { try? left.close(); try? right.close() }
        try right.set(.receiveTimeout, Self.patience)
        let parts = [Array("scatter ".utf8), Array("and ".utf8), Array("gather".utf8)]
        let sent = try parts[0].withUnsafeBytes { first in
            try parts[1].withUnsafeBytes { second in
                try parts[2].withUnsafeBytes { third in try left.sendMessage([first, second, third]) }
            }
        }
        let peeked = try right.receive(maxLength: 7, flags: .peek)
        var head = [UInt8](repeating: 0, count: 10)
        var tail = [UInt8](repeating: 0, count: 30)
        let message = try head.withUnsafeMutableBytes { headBuffer in
            try tail.withUnsafeMutableBytes { tailBuffer in try right.receiveMessage(into: [headBuffer, tailBuffer]) }
        }
        let joined = Array((head + tail).prefix(message.byteCount))
        try check(sent == 18 && message.byteCount == 18, "sent \(sent), received \(message.byteCount)")
        try check(joined == parts.joined().map { $0 }, "the gathered bytes differ")
        try check(peeked == Array("scatter".utf8), "MSG_PEEK saw \(peeked)")
        return "3 buffers -> 1 datagram -> 2 buffers"
    }
}

extension Array where Element: Hashable {
    /// The elements in order, each once.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
