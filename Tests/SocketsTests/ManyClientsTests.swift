import Glibc
import Sockets
import SocketSyscalls
import SystemPackage
import Testing

@Suite(.noDescriptorLeaks())
struct ManyClientsTests {
    struct ServerTimedOut: Error {}

    /// An echo server in one thread: a non-blocking listener and connections driven by a
    /// `poll(2)` loop. It echoes each connection's bytes back and closes it once the client
    /// has shut down its side and everything was echoed. Returns how many it served.
    static func pollEchoServer(_ listener: Socket, clients: Int) throws -> Int {
        struct Connection {
            let socket: Socket
            var pending: [UInt8] = []
            var sawEndOfFile = false
        }
        var connections: [Connection] = []
        var served = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = ContinuousClock.now.advanced(by: .seconds(15))
        while served < clients {
            guard ContinuousClock.now < deadline else { throw ServerTimedOut() }
            var entries = [pollfd(fd: listener.descriptor, events: Int16(POLLIN), revents: 0)]
            for connection in connections {
                let events = (connection.sawEndOfFile ? 0 : POLLIN) | (connection.pending.isEmpty ? 0 : POLLOUT)
                entries.append(pollfd(fd: connection.socket.descriptor, events: Int16(events), revents: 0))
            }
            _ = try entries.withUnsafeMutableBufferPointer { try Syscall.poll($0.baseAddress, $0.count, timeoutMilliseconds: 1000) }

            var remaining: [Connection] = []
            for (index, var connection) in connections.enumerated() {
                let events = entries[index + 1].revents
                if events & Int16(POLLIN | POLLHUP | POLLERR) != 0 && !connection.sawEndOfFile {
                    while let count = try buffer.withUnsafeMutableBytes({ try connection.socket.tryReceive(into: $0) }) {
                        if count == 0 {
                            connection.sawEndOfFile = true
                            break
                        }
                        connection.pending += buffer[..<count]
                    }
                }
                while !connection.pending.isEmpty,
                      let sent = try connection.pending.withUnsafeBytes({ try connection.socket.trySend($0) }) {
                    connection.pending.removeFirst(sent)
                }
                if connection.sawEndOfFile && connection.pending.isEmpty {
                    try connection.socket.close()
                    served += 1
                } else {
                    remaining.append(connection)
                }
            }
            connections = remaining
            if entries[0].revents & Int16(POLLIN) != 0 {
                while let (socket, _) = try listener.tryAccept(nonBlocking: true) {
                    connections.append(Connection(socket: socket))
                }
            }
        }
        return served
    }

    @Test func fiftyClientsExchangeDataWithAPollLoopServer() throws {
        let clientCount = 50
        let listener = try Socket(.inet, .stream, nonBlocking: true)
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen(backlog: clientCount)
        let address = try listener.localAddress()
        let server = BackgroundThread { () throws -> Int in try Self.pollEchoServer(listener, clients: clientCount) }

        let clients = (0..<clientCount).map { index in
            BackgroundThread { () throws -> Bool in
                let socket = try Socket(.inet, .stream)
                try CoreTest.setTimeouts(socket, milliseconds: 10_000)
                try socket.connect(to: address)
                let payload = CoreTest.pattern(65_536 + index * 997, seed: UInt64(index + 100))
                try socket.sendAll(payload)
                try socket.shutdown(.write)
                let echoed = try socket.receive(exactly: payload.count + 1)
                return CoreTest.same(echoed, payload)
            }
        }
        var results: [Bool] = []
        for client in clients {
            do {
                results.append(try client.join(milliseconds: 20_000))
            } catch {
                Issue.record("client failed: \(error)")
            }
        }
        #expect(results.count == clientCount)
        #expect(results.allSatisfy { $0 }, "every client got its own bytes back, exactly")
        #expect(try server.join(milliseconds: 20_000) == clientCount)
    }

    @Test func acceptLoopWithAThreadPerConnection() throws {
        // The blocking style: one accept loop, one thread per connection.
        let clientCount = 20
        let (listener, address) = try CoreTest.tcpListener(backlog: clientCount)
        let acceptor = BackgroundThread { () throws -> [String] in
            var handlers: [BackgroundThread<String>] = []
            for _ in 0..<clientCount {
                let (connection, peer) = try listener.accept()
                try CoreTest.setTimeouts(connection)
                handlers.append(BackgroundThread { () throws -> String in
                    let request = try connection.receive(exactly: 8)
                    try connection.sendAll(Array("\(peer.port ?? 0):".utf8) + request)
                    try connection.close()
                    return String(decoding: request, as: UTF8.self)
                })
            }
            return try handlers.map { try $0.join() }
        }
        var expected: [String] = []
        for index in 0..<clientCount {
            let client = try Socket(.inet, .stream)
            try CoreTest.setTimeouts(client)
            try client.connect(to: address)
            let digits = String(index)
            let request = "req" + String(repeating: "0", count: 5 - digits.count) + digits
            expected.append(request)
            try client.sendAll(request)
            var reply: [UInt8] = []
            while true {
                let chunk = try client.receive(maxLength: 100)
                if chunk.isEmpty { break }
                reply += chunk
            }
            #expect(String(decoding: reply, as: UTF8.self) == "\(try client.localAddress().port ?? 0):\(request)")
        }
        #expect(try acceptor.join().sorted() == expected.sorted())
    }
}
