// This library's side of the benchmarks: the same servers and clients as ../../c/cbench.c,
// written with the blocking core (`Sockets`: blocking sockets, `Epoll`, `DatagramBatch`) and
// with the async layer (`SocketsAsync`: EventLoop, AsyncSocket, SocketServer).
//
//   bench-sockets server sync-echo-blocking | sync-discard-blocking | sync-echo-epoll
//   bench-sockets server sync-udp-sink [--mmsg] | async-udp-sink [--mmsg]
//   bench-sockets server async-echo | async-discard
//   bench-sockets pingpong|bulk|udp-send --api sync|async --port P --size S --duration SECS [--warmup SECS] [--mmsg]
//
// Servers print "port N" once listening and serve until killed; clients print one JSON object,
// in the same form as cbench's. Every async task runs on the loop's own thread (the loop is a
// TaskExecutor and each task is started with it as its executor preference).
import BenchSupport
import Glibc
import Sockets
import SocketsAsync

typealias Options = BenchOptions

extension BenchOptions {
    var server: SocketAddress { .ipv4(.loopback, port: UInt16(clamping: port)) }
}

func pattern(_ count: Int) -> UnsafeMutableRawBufferPointer {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
    buffer.initializeMemory(as: UInt8.self, repeating: 0x61)
    return buffer
}

/// Round-trip times of one ping-pong run, and its JSON line.
struct Samples {
    var nanoseconds: [UInt32] = []
    var start = ContinuousClock.now

    init() { nanoseconds.reserveCapacity(1 << 22) }

    mutating func add(_ duration: Duration) {
        nanoseconds.append(UInt32(clamping: duration.components.attoseconds / 1_000_000_000 + duration.components.seconds * 1_000_000_000))
    }

    mutating func json() -> String {
        let secs = seconds(start.duration(to: .now))
        nanoseconds.sort()
        let count = nanoseconds.count
        let p50 = count > 0 ? Double(nanoseconds[count / 2]) / 1e3 : 0
        let p99 = count > 0 ? Double(nanoseconds[count * 99 / 100]) / 1e3 : 0
        return "{\"round_trips\":\(count),\"seconds\":\(secs),\"rate\":\(Double(count) / secs),\"p50_us\":\(p50),\"p99_us\":\(p99)}"
    }
}

// MARK: Servers on the blocking core

func listenTCP(nonBlocking: Bool) throws(SocketError) -> Socket {
    let listener = try Socket(.inet, .stream, nonBlocking: nonBlocking)
    try listener.set(.reuseAddress, true)
    try listener.bind(to: .ipv4(.loopback, port: 0))
    try listener.listen(backlog: 4096)
    emit("port \(try listener.localAddress().port ?? 0)")
    return listener
}

/// One connection at a time: blocking `recv`, and `send` back what came (or drop it).
func syncBlockingServer(echo: Bool) throws(SocketError) -> Never {
    let listener = try listenTCP(nonBlocking: false)
    // 64 KiB reads, as the C server and swift-nio's largest read (256 KiB reads: half the rate).
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    while true {
        let (connection, _) = try listener.accept()
        do throws(SocketError) {
            try connection.set(.tcpNoDelay, true)
            while case let count = try connection.receive(into: buffer), count > 0 {
                if echo { try connection.sendAll(UnsafeRawBufferPointer(rebasing: buffer[..<count])) }
            }
        } catch {}
        try? connection.close()
    }
}

/// Any number of connections on one thread: the core's `Epoll`, level-triggered, one
/// `recv` per readiness and `send` of what came.
func syncEpollServer() throws(SocketError) -> Never {
    let listener = try listenTCP(nonBlocking: true)
    let epoll = try Epoll()
    try epoll.add(listener, events: .readable)
    let listenerData = UInt64(listener.descriptor)
    var connections = [Socket?](repeating: nil, count: 65_536)
    var events = EpollEventBuffer(capacity: 256)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    while true {
        let ready = try epoll.wait(into: &events)
        for index in 0..<ready {
            let data = events[index].data
            if data == listenerData {
                while let (connection, _) = try listener.tryAccept(nonBlocking: true) {
                    try? connection.set(.tcpNoDelay, true)
                    try epoll.add(connection, events: .readable)
                    connections[Int(connection.descriptor)] = connection
                }
                continue
            }
            guard let connection = connections[Int(data)] else { continue }
            do throws(SocketError) {
                guard let count = try connection.tryReceive(into: buffer) else { continue }
                if count > 0 {
                    try connection.sendAll(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                    continue
                }
            } catch {}
            connections[Int(data)] = nil
            try? connection.close()
        }
    }
}

func bindUDP() throws(SocketError) -> Socket {
    let socket = try Socket(.inet, .datagram)
    try socket.set(.receiveBufferSize, 4 * 1024 * 1024)
    try socket.bind(to: .ipv4(.loopback, port: 0))
    return socket
}

/// Counts datagrams: `recvfrom`, or `recvmmsg` 64 at a time (`DatagramBatch`).
func syncUDPSink(_ options: Options) throws(SocketError) -> Never {
    let socket = try bindUDP()
    emit("port \(try socket.localAddress().port ?? 0)")
    var sink = SinkCount()
    if options.mmsg {
        let batch = try DatagramBatch(capacity: 64)
        while true {
            let received = try socket.receiveBatch(into: batch)
            let now = ContinuousClock.now
            for index in 0..<received { sink.record(try batch.byteCount(at: index), at: now) }
        }
    }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
    while true {
        let (count, _) = try socket.receiveFrom(into: buffer)
        sink.record(count, at: .now)
    }
}

// MARK: Servers on the async layer

/// `SocketServer` on one event loop: a task per connection, on the loop's thread.
func asyncServer(echo: Bool) async throws(SocketError) {
    let loop = try EventLoop(name: "server")
    let server = try SocketServer(on: .ipv4(.loopback, port: 0), loops: [loop], backlog: 4096)
    emit("port \(server.localAddress.port ?? 0)")
    await server.run { connection, _ in
        try connection.socket.set(.tcpNoDelay, true)
        // Each connection's task has its own buffer: 4 KiB for echo, as in the README's
        // example (it counts in the idle-connection memory), 64 KiB for the bulk sink (as the
        // C server and swift-nio's largest read).
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: echo ? 4096 : 64 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        while case let count = try await connection.receive(into: buffer), count > 0 {
            if echo { try await connection.sendAll(UnsafeRawBufferPointer(rebasing: buffer[..<count])) }
        }
    }
}

/// The UDP sink as a task on the loop: `receiveFrom`, or `receiveBatch` (`recvmmsg`).
func asyncUDPSink(_ options: Options) async throws {
    let loop = try EventLoop(name: "server")
    let socket = try AsyncSocket.bind(datagram: .ipv4(.loopback, port: 0), loop: loop)
    try socket.socket.set(.receiveBufferSize, 4 * 1024 * 1024)
    emit("port \(try socket.localAddress().port ?? 0)")
    let mmsg = options.mmsg
    let task = Task(executorPreference: loop) { () async throws in
        var sink = SinkCount()
        if mmsg {
            let batch = try DatagramBatch(capacity: 64)
            while true {
                let received = try await socket.receiveBatch(into: batch)
                let now = ContinuousClock.now
                for index in 0..<received { sink.record(try batch.byteCount(at: index), at: now) }
            }
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        while true {
            let (count, _) = try await socket.receiveFrom(into: buffer)
            sink.record(count, at: .now)
        }
    }
    try await task.value
}

// MARK: Clients

func syncPingPong(_ options: Options) throws(SocketError) -> String {
    let socket = try Socket(.inet, .stream)
    try socket.connect(to: options.server)
    try socket.set(.tcpNoDelay, true)
    let buffer = pattern(options.size)
    let message = UnsafeRawBufferPointer(buffer)
    var samples = Samples()
    let warm = after(options.warmup)
    while ContinuousClock.now < warm {
        try socket.sendAll(message)
        guard try socket.receive(exactly: buffer) == options.size else { fail("the server closed early") }
    }
    samples.start = .now
    let end = after(options.duration)
    while true {
        let before = ContinuousClock.now
        if before >= end { break }
        try socket.sendAll(message)
        guard try socket.receive(exactly: buffer) == options.size else { fail("the server closed early") }
        samples.add(before.duration(to: .now))
    }
    let result = samples.json()
    try socket.shutdown(.write)
    while try socket.receive(into: buffer) > 0 {}
    try socket.close()
    return result
}

func asyncPingPong(_ options: Options, loop: EventLoop) async throws(SocketError) -> String {
    let socket = try await AsyncSocket.connect(to: options.server, loop: loop)
    try socket.socket.set(.tcpNoDelay, true)
    let buffer = pattern(options.size)
    let message = UnsafeRawBufferPointer(buffer)
    var samples = Samples()
    let warm = after(options.warmup)
    while ContinuousClock.now < warm {
        try await socket.sendAll(message)
        guard try await socket.receive(exactly: buffer) == options.size else { fail("the server closed early") }
    }
    samples.start = .now
    let end = after(options.duration)
    while true {
        let before = ContinuousClock.now
        if before >= end { break }
        try await socket.sendAll(message)
        guard try await socket.receive(exactly: buffer) == options.size else { fail("the server closed early") }
        samples.add(before.duration(to: .now))
    }
    let result = samples.json()
    try socket.shutdown(.write)
    while try await socket.receive(into: buffer) > 0 {}
    try socket.close()
    return result
}

func bulkJSON(bytes: Int, start: ContinuousClock.Instant) -> String {
    let secs = seconds(start.duration(to: .now))
    return "{\"bytes\":\(bytes),\"seconds\":\(secs),\"rate\":\(Double(bytes) / secs)}"
}

func syncBulk(_ options: Options) throws(SocketError) -> String {
    let socket = try Socket(.inet, .stream)
    try socket.connect(to: options.server)
    try socket.set(.tcpNoDelay, true)  // as the C and NIO clients do
    let buffer = pattern(options.size)
    let start = ContinuousClock.now
    let end = after(options.duration)
    var bytes = 0
    while ContinuousClock.now < end {
        try socket.sendAll(UnsafeRawBufferPointer(buffer))
        bytes += options.size
    }
    try socket.shutdown(.write)
    while try socket.receive(into: buffer) > 0 {}  // the server closes once it has read everything
    let result = bulkJSON(bytes: bytes, start: start)
    try socket.close()
    return result
}

func asyncBulk(_ options: Options, loop: EventLoop) async throws(SocketError) -> String {
    let socket = try await AsyncSocket.connect(to: options.server, loop: loop)
    try socket.socket.set(.tcpNoDelay, true)  // as the C and NIO clients do
    let buffer = pattern(options.size)
    let start = ContinuousClock.now
    let end = after(options.duration)
    var bytes = 0
    while ContinuousClock.now < end {
        try await socket.sendAll(UnsafeRawBufferPointer(buffer))
        bytes += options.size
    }
    try socket.shutdown(.write)
    while try await socket.receive(into: buffer) > 0 {}
    let result = bulkJSON(bytes: bytes, start: start)
    try socket.close()
    return result
}

func sendJSON(sent: Int, start: ContinuousClock.Instant) -> String {
    let secs = seconds(start.duration(to: .now))
    return "{\"sent\":\(sent),\"seconds\":\(secs),\"rate\":\(Double(sent) / secs)}"
}

/// Sends datagrams for the duration (`sendto`, or `sendmmsg` 64 at a time), then the end marker.
func syncUDPSend(_ options: Options) throws(SocketError) -> String {
    let socket = try Socket(.inet, .datagram)
    let buffer = pattern(options.size)
    let batch = try DatagramBatch(capacity: 64)
    for _ in 0..<64 { try batch.append(UnsafeRawBufferPointer(buffer), to: options.server) }
    let start = ContinuousClock.now
    let end = after(options.duration)
    var sent = 0
    while ContinuousClock.now < end {
        if options.mmsg {
            sent += try socket.sendBatch(batch)
        } else {
            sent += try socket.send(UnsafeRawBufferPointer(buffer), to: options.server) > 0 ? 1 : 0
        }
    }
    let result = sendJSON(sent: sent, start: start)
    // End markers, spaced so that the receiver has drained its queue (a full queue drops them).
    for _ in 0..<10 {
        usleep(50_000)
        _ = try socket.send(UnsafeRawBufferPointer(rebasing: buffer[..<1]), to: options.server)
    }
    try socket.close()
    return result
}

func asyncUDPSend(_ options: Options, loop: EventLoop) async throws(SocketError) -> String {
    let socket = try AsyncSocket.bind(datagram: .ipv4(.loopback, port: 0), loop: loop)
    let buffer = pattern(options.size)
    let batch = try DatagramBatch(capacity: 64)
    for _ in 0..<64 { try batch.append(UnsafeRawBufferPointer(buffer), to: options.server) }
    let start = ContinuousClock.now
    let end = after(options.duration)
    var sent = 0
    while ContinuousClock.now < end {
        if options.mmsg {
            sent += try await socket.sendBatch(batch)
        } else {
            sent += try await socket.send(UnsafeRawBufferPointer(buffer), to: options.server) > 0 ? 1 : 0
        }
    }
    let result = sendJSON(sent: sent, start: start)
    for _ in 0..<10 {
        try? await Task.sleep(for: .milliseconds(50))
        _ = try await socket.send(UnsafeRawBufferPointer(rebasing: buffer[..<1]), to: options.server)
    }
    try socket.close()
    return result
}

/// Runs an async client as a task on a loop of its own, so it too runs on the loop's thread.
func onLoop(_ body: @escaping @Sendable (EventLoop) async throws -> String) async throws -> String {
    let loop = try EventLoop(name: "client")
    defer { loop.shutdown() }
    return try await Task(executorPreference: loop) { () async throws -> String in try await body(loop) }.value
}

@main
struct BenchSockets {
    static func main() async {
        signal(SIGPIPE, SIG_IGN)
        let arguments = CommandLine.arguments
        guard arguments.count >= 2 else { fail("usage: see the comment at the top of main.swift") }
        do {
            if arguments[1] == "server" {
                guard arguments.count >= 3 else { fail("server needs a kind") }
                let options = Options(arguments.dropFirst(3))
                switch arguments[2] {
                case "sync-echo-blocking": try syncBlockingServer(echo: true)
                case "sync-discard-blocking": try syncBlockingServer(echo: false)
                case "sync-echo-epoll": try syncEpollServer()
                case "sync-udp-sink": try syncUDPSink(options)
                case "async-echo": try await asyncServer(echo: true)
                case "async-discard": try await asyncServer(echo: false)
                case "async-udp-sink": try await asyncUDPSink(options)
                default: fail("unknown server \(arguments[2])")
                }
                return
            }
            let options = Options(arguments.dropFirst(2))
            let async = options.api == "async"
            let result: String
            switch arguments[1] {
            case "pingpong":
                result = async ? try await onLoop { loop in try await asyncPingPong(options, loop: loop) } : try syncPingPong(options)
            case "bulk":
                result = async ? try await onLoop { loop in try await asyncBulk(options, loop: loop) } : try syncBulk(options)
            case "udp-send":
                result = async ? try await onLoop { loop in try await asyncUDPSend(options, loop: loop) } : try syncUDPSend(options)
            default:
                fail("unknown command \(arguments[1])")
            }
            emit(result)
        } catch {
            fail("\(error)")
        }
    }
}
