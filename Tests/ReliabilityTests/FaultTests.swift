import Foundation
import Glibc
import Sockets
import SocketsAsync
import Testing

/// Faults made in network namespaces the tests create and remove: random loss, delay, a rate
/// limit, black holes, refusals, unreachable hosts and resets (nftables and `tc tbf`; `netem`
/// does not exist on this kernel).
@Suite(.noDescriptorLeaks, .enabled(if: geteuid() == 0, "network namespaces need root"))
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
}
