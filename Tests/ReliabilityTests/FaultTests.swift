import Foundation
import Glibc
import Sockets
import SocketsAsync
import Testing

/// Faults made in network namespaces the tests create and remove: random loss, delay, a rate
/// limit, black holes, refusals, unreachable hosts and resets (nftables and `tc tbf`; `netem`
/// does not exist on this kernel).
@Suite(.noDescriptorLeaks(usesAsyncRuntime: true), .requires(.networkNamespaces))
struct FaultTests {
    /// Adds an nftables table `f` with an input chain to `namespace`, then `rules` to it.
    static func filter(_ namespace: NetworkNamespace, _ rules: String...) throws {
        try namespace.nft("add table inet f")
        try namespace.nft("add chain inet f input { type filter hook input priority 0 ; policy accept ; }")
        for rule in rules { try namespace.nft("add rule inet f input \(rule)") }
    }

    /// The packets the `counter` rules of table `f` counted, summed.
    static func droppedPackets(_ namespace: NetworkNamespace) throws -> Int {
        let listing = try namespace.nft("list table inet f")
        let words = listing.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        return zip(words, words.dropFirst()).reduce(0) { $0 + ($1.0 == "packets" ? Int($1.1) ?? 0 : 0) }
    }

    // MARK: Loss

    /// The receiving side drops a share of the packets that reach the port at random; the
    /// transfer must still arrive byte-exact.
    @Test(arguments: [(5, 50 << 20), (20, 4 << 20)])
    func transferThroughRandomLoss(percent: Int, size: Int) async throws {
        try await TestNetwork.with { network in
            let congestion = try network.client.exec("sysctl", "-n", "net.ipv4.tcp_congestion_control")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            // One segment per packet (no GSO super-packets), so that loss is per MTU-sized packet.
            try network.client.ip("link", "set", network.clientDevice, "gso_max_segs", "1")
            let (listening, address) = try listener(in: network.server, on: network.serverAddress)
            defer { try? listening.close() }
            try Self.filter(network.server, "tcp dport \(address.port ?? 0) numgen random mod 100 < \(percent) counter drop")
            let stream = PatternStream(seed: UInt64(percent))
            let receiver = Background { () throws -> (count: Int, intact: Bool) in
                let (connection, _) = try listening.accept()
                defer { try? connection.close() }
                try connection.set(.receiveTimeout, .seconds(30))
                return try stream.receive(on: connection)
            }
            let client = try socket(in: network.client)
            defer { try? client.close() }
            try client.set(.sendTimeout, .seconds(30))
            let start = ContinuousClock.now
            try client.connect(to: address, timeout: .seconds(10))
            try stream.send(size, on: client)
            try client.shutdown(.write)
            let (count, intact) = try await receiver.value
            let elapsed = seconds(since: start)
            let dropped = try Self.droppedPackets(network.server)
            #expect(dropped > 0, "the loss rule dropped nothing")
            #expect(count == size)
            #expect(intact, "the bytes received differ from those sent")
            print("RELIABILITY loss \(percent)%: \(size >> 20) MiB byte-exact=\(intact && count == size), \(dropped) packets dropped, in \(String(format: "%.2f", elapsed)) s (\(congestion))")
        }
    }

    // MARK: Delay and rate limit

    /// Through a relay that holds every chunk 1.2 s each way, a receive deadline of 1 s
    /// fires on time (sync `SO_RCVTIMEO` and async deadline), and the late answer still comes.
    @Test func receiveDeadlinesThroughADelayedPath() async throws {
        let (echoListener, echoAddress) = try listener(in: NetworkNamespace.host, on: "127.0.0.1")
        defer { try? echoListener.close() }
        let echo = Background { () throws -> Void in
            for _ in 0..<2 {
                let (connection, _) = try echoListener.accept()
                defer { try? connection.close() }
                try connection.set(.receiveTimeout, .seconds(10))
                while case let bytes = try connection.receive(maxLength: 100), !bytes.isEmpty { try connection.sendAll(bytes) }
            }
        }
        let delay = 1.2
        let asked = 1.0

        // Sync: SO_RCVTIMEO.
        let relay = try DelayRelay(to: echoAddress, delay: .milliseconds(1200))
        let client = try Socket(.inet, .stream)
        try client.connect(to: relay.address, timeout: .seconds(5))
        try client.set(.receiveTimeout, .seconds(1))
        var start = ContinuousClock.now
        try client.sendAll("ping")
        let error = #expect(throws: SocketError.self) { try client.receive(maxLength: 100) }
        expectWithinTenPercent(seconds(since: start), of: asked, "sync receive timeout through a 1.2 s relay")
        #expect(error?.isWouldBlock == true)
        #expect(error?.isTimeout == true)
        #expect(error?.description == "recv: Resource temporarily unavailable (EAGAIN: SO_RCVTIMEO ran out)")
        try client.set(.receiveTimeout, .seconds(5))
        #expect(try client.receive(maxLength: 100) == Array("ping".utf8))
        #expect(seconds(since: start) >= 2 * delay * 0.9, "the relay did not delay the answer")
        try client.close()
        try relay.stop()

        // Async: a deadline on receive.
        let asyncRelay = try DelayRelay(to: echoAddress, delay: .milliseconds(1200))
        let connection = try await AsyncSocket.connect(to: asyncRelay.address, timeout: .seconds(5))
        start = ContinuousClock.now
        try await connection.sendAll("ping")
        do {
            _ = try await connection.receive(maxLength: 100, deadline: start + .seconds(1))
            Issue.record("the receive did not time out")
        } catch {
            expectWithinTenPercent(seconds(since: start), of: asked, "async receive deadline through a 1.2 s relay")
            #expect(error.isTimeout)
            #expect(error.description == "recv: timed out (ETIMEDOUT)")
        }
        #expect(try await connection.receive(maxLength: 100, deadline: .now + .seconds(5)) == Array("ping".utf8))
        #expect(seconds(since: start) >= 2 * delay * 0.9, "the relay did not delay the answer")
        try connection.close()
        try asyncRelay.stop()
        try echo.join()
    }

    /// Over a link limited to 1 Mbit/s (`tc tbf`), a send timeout of 500 ms (sync
    /// `SO_SNDTIMEO`: the call returns what it sent) and an async send deadline of 500 ms fire
    /// on time, although the link keeps moving a little.
    @Test func sendDeadlinesOverARateLimitedLink() async throws {
        try await TestNetwork.with { network in
            try network.client.exec("tc", "qdisc", "add", "dev", network.clientDevice, "root", "tbf",
                "rate", "1mbit", "burst", "32kbit", "latency", "400ms")
            let (listening, address) = try listener(in: network.server, on: network.serverAddress)
            defer { try? listening.close() }
            let payload = [UInt8](repeating: 0x5A, count: 8 << 20)
            let asked = 0.5

            // Sync: one send of 8 MiB returns part of it when SO_SNDTIMEO runs out.
            let client = try socket(in: network.client)
            defer { try? client.close() }
            try client.connect(to: address, timeout: .seconds(5))
            let (accepted, _) = try listening.accept()
            defer { try? accepted.close() }
            try client.set(.sendTimeout, .milliseconds(500))
            var start = ContinuousClock.now
            let sent = try client.send(payload)
            expectWithinTenPercent(seconds(since: start), of: asked, "sync send timeout at 1 Mbit/s")
            #expect(sent > 0 && sent < payload.count, "sent \(sent) of \(payload.count)")

            // Async: sendAll with a deadline.
            let asyncClient = try AsyncSocket(try socket(in: network.client))
            defer { try? asyncClient.close() }
            try await asyncClient.connect(to: address, deadline: .now + .seconds(5))
            let (second, _) = try listening.accept()
            defer { try? second.close() }
            start = ContinuousClock.now
            do throws(SocketError) {
                try await asyncClient.sendAll(payload, deadline: start + .milliseconds(500))
                Issue.record("sendAll of 8 MiB at 1 Mbit/s did not time out")
            } catch {
                expectWithinTenPercent(seconds(since: start), of: asked, "async send deadline at 1 Mbit/s")
                #expect(error.isTimeout)
                #expect(error.description == "send: timed out (ETIMEDOUT)")
            }
        }
    }

    // MARK: Black hole, refusal, unreachable host

    /// Every packet to the server is dropped (nft `drop`): connect gives up when asked, sync
    /// and async, and says where and why.
    @Test func connectToABlackHoleTimesOutOnTime() async throws {
        try await TestNetwork.with { network in
            try Self.filter(network.server, "ip saddr \(network.clientAddress) counter drop")
            let address = try SocketAddress("\(network.serverAddress):80")
            let asked = 0.5

            let client = try socket(in: network.client)
            defer { try? client.close() }
            var start = ContinuousClock.now
            let error = #expect(throws: SocketError.self) { try client.connect(to: address, timeout: .milliseconds(500)) }
            expectWithinTenPercent(seconds(since: start), of: asked, "sync connect timeout")
            #expect(error?.description == "connect(\(network.serverAddress):80): timed out (ETIMEDOUT)")

            let asyncClient = try AsyncSocket(try socket(in: network.client))
            defer { try? asyncClient.close() }
            start = ContinuousClock.now
            do throws(SocketError) {
                try await asyncClient.connect(to: address, deadline: start + .milliseconds(500))
                Issue.record("connect to a black hole succeeded")
            } catch {
                expectWithinTenPercent(seconds(since: start), of: asked, "async connect deadline")
                #expect(error.isTimeout)
                #expect(error.description == "connect(\(network.serverAddress):80): timed out (ETIMEDOUT)")
            }
            #expect(try Self.droppedPackets(network.server) >= 2)
        }
    }

    /// A port nobody listens on, one the firewall refuses with a TCP reset, and a host the
    /// firewall reports unreachable (ICMP host-unreachable): each error names the address
    /// and the errno, sync and async.
    @Test func refusedAndUnreachable() async throws {
        try await TestNetwork.with { network in
            try Self.filter(network.server,
                "tcp dport 81 counter reject with tcp reset",
                "tcp dport 82 counter reject with icmp type host-unreachable")
            let server = network.serverAddress
            let cases = [
                (80, "connect(\(server):80): Connection refused (ECONNREFUSED)"),
                (81, "connect(\(server):81): Connection refused (ECONNREFUSED)"),
                (82, "connect(\(server):82): No route to host (EHOSTUNREACH)"),
            ]
            for (port, expected) in cases {
                let address = try SocketAddress("\(server):\(port)")
                let client = try socket(in: network.client)
                defer { try? client.close() }
                let error = #expect(throws: SocketError.self) { try client.connect(to: address, timeout: .seconds(5)) }
                #expect(error?.description == expected)

                let blocking = try socket(in: network.client)
                defer { try? blocking.close() }
                let plain = #expect(throws: SocketError.self) { try blocking.connect(to: address) }
                #expect(plain?.description == expected)

                let asyncClient = try AsyncSocket(try socket(in: network.client))
                defer { try? asyncClient.close() }
                do throws(SocketError) {
                    try await asyncClient.connect(to: address, deadline: .now + .seconds(5))
                    Issue.record("connect to \(address) succeeded")
                } catch {
                    #expect(error.description == expected)
                }
            }
            // Ports 81 and 82: at least one SYN each per attempt, three attempts each.
            let rejected = try Self.droppedPackets(network.server)
            #expect(rejected >= 6, "rejected \(rejected) packets")
        }
    }

    // MARK: Reset in the middle of a transfer

    /// From now on, both namespaces answer every packet of the connections to `port` with a
    /// TCP reset. Resets themselves pass (each side must take the other's). The client's side
    /// first: the server's next acknowledgement then brings the server a reset.
    static func resetConnections(_ network: TestNetwork, port: UInt16) throws {
        try filter(network.client, "tcp flags & rst == rst accept", "tcp sport \(port) counter reject with tcp reset")
        try filter(network.server, "tcp flags & rst == rst accept", "tcp dport \(port) counter reject with tcp reset")
    }

    /// After 1 MiB of a transfer, both namespaces start answering the connection's packets
    /// with TCP resets: the writer (sync) and the reader (async) each get a clear error, with
    /// no SIGPIPE and no descriptor left open.
    @Test func resetInTheMiddleOfATransfer() async throws {
        try await TestNetwork.with { network in
            let (listening, address) = try listener(in: network.server, on: network.serverAddress)
            defer { try? listening.close() }
            let port = address.port ?? 0
            let client = try socket(in: network.client)
            defer { try? client.close() }
            try client.connect(to: address, timeout: .seconds(5))
            try client.set(.sendTimeout, .seconds(20))
            let (accepted, _) = try listening.accept()
            let reader = try AsyncSocket(accepted)
            defer { try? reader.close() }

            let stream = PatternStream(seed: 9)
            let writer = Background { () throws -> Int in
                // Sends until the connection breaks; the error is the point.
                var sent = 0
                let block = stream.block
                while sent < 1 << 30 {
                    try block.withUnsafeBytes { try client.sendAll(UnsafeRawBufferPointer(rebasing: $0[..<65_536])) }
                    sent += 65_536
                }
                return sent
            }
            var received = 0
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
            defer { buffer.deallocate() }
            var readerError: SocketError?
            var ruleAdded = false
            while readerError == nil {
                do throws(SocketError) {
                    let count = try await reader.receive(into: buffer, deadline: .now + .seconds(10))
                    if count == 0 { break }
                    received += count
                } catch {
                    readerError = error
                }
                if received >= 1 << 20 && !ruleAdded {
                    ruleAdded = true
                    try Self.resetConnections(network, port: port)
                }
            }
            #expect(ruleAdded)
            #expect(readerError?.description == "recv: Connection reset by peer (ECONNRESET)")
            do {
                let sent = try await writer.value
                Issue.record("the writer sent \(sent) bytes without an error")
            } catch let error as SocketError {
                #expect(["send: Connection reset by peer (ECONNRESET)", "send: Broken pipe (EPIPE)"].contains(error.description),
                        "writer: \(error)")
            }
        }
    }

    /// The same with the roles of the layers swapped: an async writer and a sync reader.
    @Test func resetInTheMiddleOfATransferAsyncWriter() async throws {
        try await TestNetwork.with { network in
            let (listening, address) = try listener(in: network.server, on: network.serverAddress)
            defer { try? listening.close() }
            let port = address.port ?? 0
            let writer = try AsyncSocket(try socket(in: network.client))
            defer { try? writer.close() }
            try await writer.connect(to: address, deadline: .now + .seconds(5))
            let (reader, _) = try listening.accept()
            defer { try? reader.close() }
            try reader.set(.receiveTimeout, .seconds(10))

            let readerThread = Background { () throws -> String in
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
                defer { buffer.deallocate() }
                var received = 0
                var ruleAdded = false
                do throws(SocketError) {
                    while case let count = try reader.receive(into: buffer), count > 0 {
                        received += count
                        if received >= 1 << 20 && !ruleAdded {
                            ruleAdded = true
                            try? Self.resetConnections(network, port: port)
                        }
                    }
                    return "end-of-file after \(received) bytes"
                } catch {
                    return ruleAdded ? error.description : "before the reset: \(error)"
                }
            }
            let chunk = [UInt8](repeating: 0x33, count: 65_536)
            var writerError: SocketError?
            var sent = 0
            while writerError == nil && sent < 1 << 30 {
                do throws(SocketError) {
                    try await writer.sendAll(chunk, deadline: .now + .seconds(10))
                    sent += chunk.count
                } catch {
                    writerError = error
                }
            }
            #expect(try await readerThread.value == "recv: Connection reset by peer (ECONNRESET)")
            #expect(["send: Connection reset by peer (ECONNRESET)", "send: Broken pipe (EPIPE)"].contains(writerError?.description ?? "none"),
                    "writer: \(writerError?.description ?? "no error after \(sent) bytes")")
        }
    }
}
