// swift-nio's side of the benchmarks: the same servers and clients as ../../c/cbench.c, as
// NIO channel handlers on one event loop (MultiThreadedEventLoopGroup with one thread), the
// way NIO's own echo example is written: `write` each read, `flush` at read-complete.
//
//   bench-nio server echo | discard | udp-sink [--mmsg]
//   bench-nio pingpong|bulk|udp-send --port P --size S --duration SECS [--warmup SECS] [--mmsg]
//
// Servers print "port N" once listening and serve until killed; clients print one JSON object,
// in the same form as cbench's. With --mmsg the sink reads with recvmmsg
// (`datagramVectorReadMessageCount` 64) and the sender writes 64 datagrams per flush, which
// NIO sends with sendmmsg.
import BenchSupport
import Glibc
import NIOCore
import NIOPosix

typealias Options = BenchOptions

// MARK: Servers

final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Drops what it reads; NIO closes the channel at end-of-file.
final class DiscardHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Counts datagrams from the first to the last before the sender's end marker (1 byte).
final class SinkHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    var sink = SinkCount()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        sink.record(unwrapInboundIn(data).data.readableBytes, at: .now)
    }
}

func server(_ kind: String, _ options: Options, group: MultiThreadedEventLoopGroup) async throws {
    let channel: any Channel
    switch kind {
    case "echo", "discard":
        let echo = kind == "echo"
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if echo {
                        try channel.pipeline.syncOperations.addHandler(EchoHandler())
                    } else {
                        try channel.pipeline.syncOperations.addHandler(DiscardHandler())
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    case "udp-sink":
        var bootstrap = DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 * 1024 * 1024)
        if options.mmsg { bootstrap = bootstrap.channelOption(.datagramVectorReadMessageCount, value: 64) }
        channel = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(SinkHandler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    default:
        fail("unknown server \(kind)")
    }
    emit("port \(channel.localAddress?.port ?? 0)")
    try await channel.closeFuture.get()
}

// MARK: Clients

final class PingPongHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let options: Options
    let done: EventLoopPromise<String>
    let message: ByteBuffer
    var received = 0
    var before = ContinuousClock.now
    var start = ContinuousClock.now
    var warm = ContinuousClock.now
    var end: ContinuousClock.Instant?
    var samples: [UInt32] = []

    init(_ options: Options, done: EventLoopPromise<String>) {
        self.options = options
        self.done = done
        message = ByteBuffer(repeating: 0x61, count: options.size)
        samples.reserveCapacity(1 << 22)
    }

    func channelActive(context: ChannelHandlerContext) {
        warm = after(options.warmup)
        send(context)
    }

    private func send(_ context: ChannelHandlerContext) {
        before = .now
        context.writeAndFlush(wrapOutboundOut(message), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        guard received >= options.size else { return }
        received -= options.size
        let now = ContinuousClock.now
        if let end {
            let (whole, atto) = before.duration(to: now).components
            samples.append(UInt32(clamping: whole * 1_000_000_000 + atto / 1_000_000_000))
            if now >= end {
                finish(context)
                return
            }
        } else if now >= warm {
            start = now
            end = now.advanced(by: .nanoseconds(Int64(options.duration * 1e9)))
        }
        send(context)
    }

    private func finish(_ context: ChannelHandlerContext) {
        let secs = seconds(start.duration(to: .now))
        samples.sort()
        let count = samples.count
        let p50 = count > 0 ? Double(samples[count / 2]) / 1e3 : 0
        let p99 = count > 0 ? Double(samples[count * 99 / 100]) / 1e3 : 0
        done.succeed("{\"round_trips\":\(count),\"seconds\":\(secs),\"rate\":\(Double(count) / secs),\"p50_us\":\(p50),\"p99_us\":\(p99)}")
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.close(promise: nil)
    }
}

/// Writes 256 KiB buffers while the channel is writable, for the duration; then half-closes
/// and waits for the server to close.
final class BulkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let options: Options
    let done: EventLoopPromise<String>
    let buffer: ByteBuffer
    var bytes = 0
    var start = ContinuousClock.now
    var end = ContinuousClock.now
    var finished = false

    init(_ options: Options, done: EventLoopPromise<String>) {
        self.options = options
        self.done = done
        buffer = ByteBuffer(repeating: 0x61, count: options.size)
    }

    func channelActive(context: ChannelHandlerContext) {
        start = .now
        end = after(options.duration)
        pump(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && !finished { pump(context) }
    }

    private func pump(_ context: ChannelHandlerContext) {
        while context.channel.isWritable && ContinuousClock.now < end {
            context.write(wrapOutboundOut(buffer), promise: nil)
            bytes += options.size
            context.flush()
        }
        if ContinuousClock.now >= end && !finished {
            finished = true
            context.close(mode: .output, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let secs = seconds(start.duration(to: .now))
        done.succeed("{\"bytes\":\(bytes),\"seconds\":\(secs),\"rate\":\(Double(bytes) / secs)}")
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.close(promise: nil)
    }
}

/// Sends datagrams for the duration: one `writeAndFlush` each, or 64 writes per flush
/// (sendmmsg); then ten end markers.
final class UDPSendHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    let options: Options
    let done: EventLoopPromise<String>
    let envelope: AddressedEnvelope<ByteBuffer>
    let marker: AddressedEnvelope<ByteBuffer>
    var sent = 0
    var start = ContinuousClock.now
    var end = ContinuousClock.now

    init(_ options: Options, done: EventLoopPromise<String>) throws {
        self.options = options
        self.done = done
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: options.port)
        envelope = AddressedEnvelope(remoteAddress: address, data: ByteBuffer(repeating: 0x61, count: options.size))
        marker = AddressedEnvelope(remoteAddress: address, data: ByteBuffer(repeating: 0x65, count: 1))
    }

    func channelActive(context: ChannelHandlerContext) {
        start = .now
        end = after(options.duration)
        pump(context)
    }

    private func pump(_ context: ChannelHandlerContext) {
        // A slice of work, then the loop gets a turn (its queue, its writability events).
        for _ in 0..<16 where context.channel.isWritable {
            if options.mmsg {
                for _ in 0..<64 { context.write(wrapOutboundOut(envelope), promise: nil) }
                context.flush()
                sent += 64
            } else {
                context.writeAndFlush(wrapOutboundOut(envelope), promise: nil)
                sent += 1
            }
        }
        if ContinuousClock.now < end {
            context.eventLoop.assumeIsolated().execute { self.pump(context) }
            return
        }
        let secs = seconds(start.duration(to: .now))
        let result = "{\"sent\":\(sent),\"seconds\":\(secs),\"rate\":\(Double(sent) / secs)}"
        // End markers, spaced so that the receiver has drained its queue (a full queue drops them).
        for index in 1...10 {
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(50 * index))) {
                context.writeAndFlush(self.wrapOutboundOut(self.marker), promise: nil)
                if index == 10 { self.done.succeed(result) }
            }
        }
    }
}

func client(_ kind: String, _ options: Options, group: MultiThreadedEventLoopGroup) async throws -> String {
    let done = group.next().makePromise(of: String.self)
    let channel: any Channel
    switch kind {
    case "pingpong", "bulk":
        let pingpong = kind == "pingpong"
        channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if pingpong {
                        try channel.pipeline.syncOperations.addHandler(PingPongHandler(options, done: done))
                    } else {
                        try channel.pipeline.syncOperations.addHandler(BulkHandler(options, done: done))
                    }
                }
            }
            .connect(host: "127.0.0.1", port: options.port).get()
    case "udp-send":
        channel = try await DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPSendHandler(options, done: done))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    default:
        fail("unknown command \(kind)")
    }
    let result = try await done.futureResult.get()
    try? await channel.close()
    return result
}

@main
struct BenchNIO {
    static func main() async {
        signal(SIGPIPE, SIG_IGN)
        let arguments = CommandLine.arguments
        guard arguments.count >= 2 else { fail("usage: see the comment at the top of BenchNIO.swift") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            if arguments[1] == "server" {
                guard arguments.count >= 3 else { fail("server needs a kind") }
                try await server(arguments[2], Options(arguments.dropFirst(3)), group: group)
            } else {
                emit(try await client(arguments[1], Options(arguments.dropFirst(2)), group: group))
            }
            try await group.shutdownGracefully()
        } catch {
            fail("\(error)")
        }
    }
}
