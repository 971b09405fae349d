import Foundation
import SocketsTestSupport
import Testing

/// `sock resolve`, `ping`, `scan`, `ifaces`, `bench` and `tour`.
@Suite(.noDescriptorLeaks())
struct CommandTests {
    private func json(_ child: Child) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(child.output.data))
    }

    @Test func resolveLocalhost() throws {
        let plain = try sock("resolve", "-4", "localhost")
        #expect(plain.wait() == 0, "stderr: \(plain.errors.text)")
        #expect(plain.output.text == "127.0.0.1\n")

        let withService = try sock("resolve", "--json", "-4", "localhost", "80")
        #expect(withService.wait() == 0)
        let object = try #require(try json(withService) as? [String: Any])
        #expect(object["name"] as? String == "localhost")
        let addresses = try #require(object["addresses"] as? [[String: Any]])
        #expect(addresses.count == 1)
        #expect(addresses.first?["address"] as? String == "127.0.0.1")
        #expect(addresses.first?["port"] as? Int == 80)
        #expect((addresses.first?["types"] as? [String])?.contains("stream") == true)

        let numeric = try sock("resolve", "::1", "443")
        #expect(numeric.wait() == 0)
        #expect(numeric.output.text == "[::1]:443\n")
    }

    /// `sock` raises its soft descriptor limit to the hard one at start (a server holds one
    /// per connection): started under a soft limit of 64, it runs with the hard limit.
    @Test func raisesItsDescriptorLimitAtStart() throws {
        let binary = try SockBinary.require()
        let child = try Child("/bin/sh", ["-c", "ulimit -Sn 64 && exec \"$0\" listen 0", binary])
        defer { child.stop() }
        _ = try listeningPort(child)
        let limits = try String(contentsOfFile: "/proc/\(child.pid)/limits", encoding: .utf8)
        // "Max open files            SOFT                 HARD                 files"
        let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let numbers = line.split(separator: " ").compactMap { Int($0) }
        try #require(numbers.count == 2, "\(line)")
        #expect(numbers[1] > 64, "the hard limit leaves nothing to raise: \(line)")
        #expect(numbers[0] == numbers[1], "\(line)")
    }

    @Test func resolveReverse() throws {
        let reverse = try sock("resolve", "--reverse", "127.0.0.1")
        #expect(reverse.wait() == 0, "stderr: \(reverse.errors.text)")
        let name = reverse.output.text.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!name.isEmpty && name != "127.0.0.1", "got \(name)")

        let json = try sock("resolve", "--reverse", "--json", "127.0.0.1")
        #expect(json.wait() == 0)
        let object = try #require(try self.json(json) as? [String: Any])
        #expect(object["address"] as? String == "127.0.0.1")
        #expect(object["host"] as? String == name)
    }

    @Test func resolveUnknownHostFails() throws {
        // The suite's one lookup that goes to the machine's resolver.
        let child = try sock("resolve", "no-such-host.invalid")
        #expect(child.wait() == 1)
        #expect(child.errors.text.hasPrefix("sock: getaddrinfo(no-such-host.invalid): "), "stderr: \(child.errors.text)")
        #expect(child.errors.text.contains("EAI_"))
    }

    @Test(.requires(.rawSockets))
    func pingLoopbackIPv4AndIPv6() throws {
        for host in ["127.0.0.1", "::1"] {
            let child = try sock("ping", "-c", "3", "-i", "0.05", "-s", "100", host)
            #expect(child.wait() == 0, "stderr: \(child.errors.text)")
            let text = child.output.text
            #expect(text.hasPrefix("PING \(host) (\(host)): 100 data bytes\n"))
            for sequence in 1...3 { #expect(text.contains("108 bytes from \(host): icmp_seq=\(sequence) ")) }
            #expect(text.contains("3 packets transmitted, 3 received, 0% packet loss"))
            #expect(text.contains("rtt min/avg/max = "))
            #expect(!text.contains("wrong data"))
        }
        // Interrupted, it prints the summary so far and exits 128 + SIGINT.
        let long = try sock("ping", "-c", "1000", "-i", "0.05", "127.0.0.1")
        #expect(long.output.wait(timeout: 20) { $0.contains("icmp_seq=2 ") })
        #expect(long.stop(SIGINT) == 128 + SIGINT)
        #expect(long.output.text.contains("packets transmitted"))
        #expect(long.output.text.contains("rtt min/avg/max"))
    }

    /// Without CAP_NET_RAW, ping falls back to an ICMP datagram socket, which
    /// net.ipv4.ping_group_range must allow; where it does not, the error says what would do.
    @Test(.disabled(if: Privilege.rawSockets.isHeld, "shows what happens without CAP_NET_RAW, which this process has"))
    func pingWithoutRawSockets() throws {
        let child = try sock("ping", "-c", "2", "-i", "0.05", "127.0.0.1")
        let status = child.wait()
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ping_group_range", encoding: .utf8))?
            .split(whereSeparator: \.isWhitespace).compactMap { UInt32($0) } ?? []
        var groups = [gid_t](repeating: 0, count: Int(NGROUPS_MAX))
        let groupCount = Int(max(0, getgroups(Int32(groups.count), &groups)))
        let allowed = range.count == 2 && ([getgid()] + groups.prefix(groupCount)).contains { range[0] <= $0 && $0 <= range[1] }
        if allowed {
            #expect(status == 0, "stderr: \(child.errors.text)")
            #expect(child.output.text.contains("2 packets transmitted, 2 received"))
        } else {
            #expect(status == 1)
            #expect(child.errors.text == """
                sock: socket(AF_INET, SOCK_RAW, IPPROTO_ICMP): Operation not permitted (EPERM) (ping needs root or \
                CAP_NET_RAW, or net.ipv4.ping_group_range covering your group)

                """)
        }
    }

    @Test func scanFindsExactlyTheListeningPortsInARange() throws {
        // Five consecutive ports held by python: listeners on the 1st and 3rd, the others bound
        // without listening (so certainly closed, and nobody else can take them).
        let holder = try python("""
            import random, socket, sys
            for attempt in range(200):
                start = random.randint(20000, 30000)
                socks = []
                try:
                    for offset in range(5):
                        s = socket.socket(); s.bind(('127.0.0.1', start + offset)); socks.append(s)
                    break
                except OSError:
                    for s in socks: s.close()
            socks[0].listen(8); socks[2].listen(8)
            print(start)
            sys.stdin.readline()
            """, input: .pipe)
        let start = try firstLineNumber(holder)
        for driver in ["epoll", "poll"] {
            let child = try sock("scan", "--using", driver, "-w", "2", "127.0.0.1", "\(start)-\(start + 4)")
            #expect(child.wait() == 0, "stderr: \(child.errors.text)")
            #expect(child.output.text == "\(start)/tcp open\n\(start + 2)/tcp open\n", "\(driver): \(child.output.text)")
            #expect(child.errors.text.contains("scanned 5 ports on 127.0.0.1"), "stderr: \(child.errors.text)")
            #expect(child.errors.text.contains("with \(driver): 2 open, 3 closed, 0 filtered"), "stderr: \(child.errors.text)")
        }
        // A list in any order, with -v showing the closed ports too.
        let verbose = try sock("scan", "-v", "127.0.0.1", "\(start + 4),\(start + 2),\(start + 1)")
        #expect(verbose.wait() == 0)
        #expect(verbose.output.text == "\(start + 1)/tcp closed\n\(start + 2)/tcp open\n\(start + 4)/tcp closed\n")
        try holder.write("done\n")
        holder.wait()
    }

    @Test func ifacesListsLoopback() throws {
        let plain = try sock("ifaces")
        #expect(plain.wait() == 0, "stderr: \(plain.errors.text)")
        #expect(plain.output.text.contains(": lo <UP,LOOPBACK,RUNNING"))
        #expect(plain.output.text.contains("    inet 127.0.0.1/8\n"))

        let json = try sock("ifaces", "--json")
        #expect(json.wait() == 0)
        let interfaces = try #require(try self.json(json) as? [[String: Any]])
        let loopback = try #require(interfaces.first { $0["name"] as? String == "lo" })
        #expect((loopback["index"] as? Int ?? 0) > 0)
        let flags = loopback["flags"] as? [String] ?? []
        #expect(flags.contains("UP") && flags.contains("LOOPBACK"))
        let addresses = loopback["addresses"] as? [[String: Any]] ?? []
        #expect(addresses.contains { $0["address"] as? String == "127.0.0.1" && $0["prefix"] as? Int == 8 })
    }

    @Test(arguments: [
        ["bench", "tcp", "--duration", "1", "--json"],
        ["bench", "unix", "--mode", "latency", "--duration", "0.5", "--json"],
        ["bench", "udp", "--connections", "2", "--duration", "0.5", "--json"],
        ["bench", "tcp", "--mode", "latency", "--connections", "3", "--size", "100", "--duration", "0.5", "--json"],
        ["bench", "unix", "--mode", "latency", "--loops", "1", "--duration", "0.3", "--json"],
        ["bench", "tcp", "--sync", "--duration", "0.3", "--json"],
        ["bench", "udp", "--mode", "latency", "--sync", "--duration", "0.3", "--json"],
    ])
    func benchPrintsJSON(arguments: [String]) throws {
        let child = try sock(arguments: arguments)
        #expect(child.wait(timeout: 60) == 0, "stderr: \(child.errors.text)")
        let object = try #require(try json(child) as? [String: Any], "not JSON: \(child.output.text)")
        #expect(object["transport"] as? String == arguments[1])
        // The event loop unless --sync asked for threads.
        let sync = arguments.contains("--sync")
        #expect(object["engine"] as? String == (sync ? "threads" : "async"))
        if arguments.contains("--loops") { #expect(object["event_loops"] as? Int == 1) }
        if sync { #expect(object["event_loops"] is NSNull) }
        #expect((object["bytes"] as? Int ?? 0) > 0)
        #expect((object["messages"] as? Int ?? 0) > 0)
        #expect((object["bytes_per_second"] as? Double ?? 0) > 0)
        let latency = try #require(object["latency_us"] as? [String: Any])
        let p50 = latency["p50"] as? Double ?? 0
        let p99 = latency["p99"] as? Double ?? 0
        #expect(p50 > 0 && p99 >= p50)
        // Not a terminal: no progress line.
        #expect(child.errors.text.isEmpty)
    }

    @Test func benchPrintsATable() throws {
        let child = try sock("bench", "unix", "--duration", "0.3")
        #expect(child.wait(timeout: 60) == 0)
        #expect(child.output.text.hasPrefix("sock bench: unix throughput, 1 connection, 131072-byte messages"))
        #expect(child.output.text.contains("throughput"))
        #expect(child.output.text.contains("send p99"))
    }

    @Test func tourPasses() throws {
        let child = try sock("tour", "-v")
        #expect(child.wait(timeout: 60) == 0, "output: \(child.output.text) stderr: \(child.errors.text)")
        let text = child.output.text
        #expect(text.contains(" 0 failed"))
        let rows = [
            "TCP over IPv4", "TCP over IPv6", "UDP over IPv4", "Unix stream (path)", "Unix stream (abstract)", "Unix datagram",
            "Unix seqpacket", "socketpair", "descriptor passing", "datagram batches", "sendfile + splice", "AF_NETLINK",
            "AF_PACKET on lo", "raw ICMP (IPv4)", "raw ICMPv6", "select", "poll", "epoll", "name resolution", "socket options",
        ]
        for row in rows {
            #expect(text.contains(row), "no row \(row)")
        }
        // The AF_PACKET and raw ICMP rows run with CAP_NET_RAW, else say what they need.
        if Privilege.rawSockets.isHeld {
            #expect(!text.contains("needs root"))
        } else {
            #expect(text.contains("needs root (CAP_NET_RAW)"))
        }
    }

    @Test func helpListsEverySubcommand() throws {
        let child = try sock("--help")
        #expect(child.wait() == 0)
        for name in ["connect", "listen", "resolve", "ping", "scan", "ifaces", "bench", "tour"] {
            #expect(child.output.text.contains("  \(name) "), "no \(name) in help")
        }
    }
}
