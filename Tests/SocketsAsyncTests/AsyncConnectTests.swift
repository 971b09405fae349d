import Glibc
import Sockets
import SocketsAsync
import Testing

/// Connecting: refused, timed out, to a name, Happy Eyeballs.
@Suite(.noDescriptorLeaks(usesAsyncRuntime: true))
struct AsyncConnectTests {
    /// A port on `host` with nothing listening (bound, then closed).
    func closedPort(_ address: SocketAddress) throws -> SocketAddress {
        let socket = try Socket(address.domain, .stream)
        defer { try? socket.close() }
        try socket.bind(to: address)
        return try socket.localAddress()
    }

    /// A listener whose accept queue is full, so that the kernel drops new SYNs: a connect to
    /// it hangs, like one to a black hole, without leaving loopback.
    func blackHole(_ address: SocketAddress, loop: EventLoop) async throws -> (listener: Socket, filler: AsyncSocket) {
        let listener = try Socket(address.domain, .stream)
        try listener.bind(to: address)
        try listener.listen(backlog: 0)
        let filler = try await AsyncSocket.connect(to: try listener.localAddress(), timeout: .seconds(5), loop: loop)
        return (listener, filler)
    }

    @Test func refusedConnectNamesTheAddress() async throws {
        try await withLoop { loop in
            let address = try closedPort(.ipv4(.loopback, port: 0))
            do throws(SocketError) {
                _ = try await AsyncSocket.connect(to: address, loop: loop)
                Issue.record("connected to a closed port")
            } catch {
                #expect(error.errno == .connectionRefused)
                #expect(error.description.contains(address.description))
                #expect(error.description.contains("ECONNREFUSED"))
            }
        }
    }

    @Test func connectTimesOut() async throws {
        try await withLoop { loop in
            let hole = try await blackHole(.ipv4(.loopback, port: 0), loop: loop)
            defer {
                try? hole.filler.close()
                try? hole.listener.close()
            }
            let start = ContinuousClock.now
            do throws(SocketError) {
                _ = try await AsyncSocket.connect(to: try hole.listener.localAddress(), timeout: .milliseconds(200), loop: loop)
                Issue.record("connected to a full listener")
            } catch {
                #expect(error.reason == .timedOut, "\(error)")
                #expect(error.operation == "connect")
            }
            #expect(milliseconds(since: start) >= 190)
        }
    }

    @Test func cancelledConnectStopsPromptly() async throws {
        try await withLoop { loop in
            let hole = try await blackHole(.ipv4(.loopback, port: 0), loop: loop)
            defer {
                try? hole.filler.close()
                try? hole.listener.close()
            }
            let target = try hole.listener.localAddress()
            let attempt = Task(executorPreference: loop) { try await AsyncSocket.connect(to: target, loop: loop) }
            try await Task.sleep(for: .milliseconds(50))
            attempt.cancel()
            let error = failure(await attempt.result)
            #expect(error?.isCancellation == true, "\(String(describing: error))")
        }
    }

    @Test func unixConnectToAMissingPathFails() async throws {
        let path = uniqueSocketPath("missing")
        await #expect(throws: SocketError("connect", address: path, errno: .noSuchFileOrDirectory)) {
            _ = try await AsyncSocket.connect(to: try .unix(path: path))
        }
    }

    @Test func happyEyeballsFallsBackToTheFamilyThatListens() async throws {
        try await withLoop { loop in
            // A listener on 127.0.0.1 only; ::1 on the same port refuses.
            let listener = try AsyncSocket.listen(on: .ipv4(.loopback, port: 0), loop: loop)
            let port = try listener.localAddress().port ?? 0
            let v6 = SocketAddress.ipv6(.loopback, port: port)
            let v4 = SocketAddress.ipv4(.loopback, port: port)
            let connection = try await AsyncSocket.connect(toAny: [v6, v4], deadline: .now + .seconds(5), loop: loop)
            #expect(try connection.peerAddress() == v4)
            let (accepted, _) = try await listener.accept()
            try accepted.close()
            try connection.close()
            try listener.close()

            // And the other way round: only ::1 listens.
            let listener6 = try AsyncSocket.listen(on: .ipv6(.loopback, port: 0), loop: loop)
            let port6 = try listener6.localAddress().port ?? 0
            let connection6 = try await AsyncSocket.connect(
                toAny: [.ipv4(.loopback, port: port6), .ipv6(.loopback, port: port6)], loop: loop)
            #expect(try connection6.peerAddress() == .ipv6(.loopback, port: port6))
            let (accepted6, _) = try await listener6.accept()
            try accepted6.close()
            try connection6.close()
            try listener6.close()
        }
    }

    @Test func happyEyeballsStartsTheNextAttemptAfterTheDelay() async throws {
        try await withLoop { loop in
            // The first address hangs (full backlog); the second answers. The second attempt
            // starts after the attempt delay, and wins; the hanging one is cancelled.
            let hole = try await blackHole(.ipv6(.loopback, port: 0), loop: loop)
            defer {
                try? hole.filler.close()
                try? hole.listener.close()
            }
            let listener = try AsyncSocket.listen(on: .ipv4(.loopback, port: 0), loop: loop)
            let good = try listener.localAddress()
            let start = ContinuousClock.now
            let connection = try await AsyncSocket.connect(
                toAny: [try hole.listener.localAddress(), good], deadline: .now + .seconds(10),
                attemptDelay: .milliseconds(150), loop: loop)
            let elapsed = milliseconds(since: start)
            #expect(try connection.peerAddress() == good)
            #expect(elapsed >= 140, "the second attempt started after \(elapsed) ms")
            let (accepted, _) = try await listener.accept()
            try accepted.close()
            try connection.close()
            try listener.close()
        }
    }

    @Test func happyEyeballsReportsTheFirstErrorWhenAllFail() async throws {
        try await withLoop { loop in
            let first = try closedPort(.ipv6(.loopback, port: 0))
            let second = try closedPort(.ipv4(.loopback, port: 0))
            do throws(SocketError) {
                _ = try await AsyncSocket.connect(toAny: [first, second], loop: loop)
                Issue.record("connected to closed ports")
            } catch {
                #expect(error.errno == .connectionRefused)
                #expect(error.address == first.description)
            }
            await #expect(throws: SocketError.self) { _ = try await AsyncSocket.connect(toAny: [], loop: loop) }
        }
    }

    @Test func familiesAreInterleaved() async throws {
        let a6 = SocketAddress.ipv6(.loopback, port: 1)
        let b6 = SocketAddress.ipv6(.loopback, port: 2)
        let a4 = SocketAddress.ipv4(.loopback, port: 3)
        let b4 = SocketAddress.ipv4(.loopback, port: 4)
        let c4 = SocketAddress.ipv4(.loopback, port: 5)
        #expect(AsyncSocket.interleavingFamilies([a6, b6, a4, b4, c4]) == [a6, a4, b6, b4, c4])
        #expect(AsyncSocket.interleavingFamilies([a4, b4, a6]) == [a4, a6, b4])
    }

    @Test func connectToLocalhostByName() async throws {
        try await withLoop { loop in
            // `localhost` resolves (off the loop) to whatever /etc/hosts says: 127.0.0.1 here,
            // sometimes ::1 too. Listen on only one of them; the connect must find it.
            let resolved = try await AsyncSocket.resolve(host: "localhost", port: 9)
            #expect(!resolved.isEmpty)
            #expect(resolved.allSatisfy { $0.ipAddress?.isLoopback == true })
            let listenOn: SocketAddress = resolved.contains { $0.domain == .inet } ? .ipv4(.loopback, port: 0) : .ipv6(.loopback, port: 0)
            let listener = try AsyncSocket.listen(on: listenOn, loop: loop)
            let port = try listener.localAddress().port ?? 0
            let connection = try await AsyncSocket.connect(host: "localhost", port: port, deadline: .now + .seconds(5), loop: loop)
            #expect(try connection.peerAddress() == listener.localAddress())
            let (accepted, _) = try await listener.accept()
            try await accepted.sendAll("hi")
            #expect(try await connection.receive(exactly: 2) == Array("hi".utf8))
            try accepted.close()
            try connection.close()
            try listener.close()
        }
    }

    @Test func numericHostsNeedNoLookup() async throws {
        #expect(try await AsyncSocket.resolve(host: "::1", port: 80) == [.ipv6(.loopback, port: 80)])
        #expect(try await AsyncSocket.resolve(host: "127.0.0.1", port: 80) == [.ipv4(.loopback, port: 80)])
    }

    @Test func unknownHostFailsWithTheResolverError() async throws {
        // The one lookup in this suite that may reach the machine's resolver.
        do throws(SocketError) {
            _ = try await AsyncSocket.connect(host: "no-such-host.invalid", port: 80)
            Issue.record("resolved a name under .invalid")
        } catch {
            #expect(error.addressInfoCode != nil, "\(error)")
            #expect(error.description.contains("no-such-host.invalid"))
        }
    }
}
