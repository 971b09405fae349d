import ArgumentParser
import SocketsAsync

/// `sock bench`: a server and clients on loopback, measuring throughput or latency.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput or latency over loopback (server and clients in this process).",
        usage: """
            sock bench [tcp|udp|unix] [--mode throughput|latency] [--size BYTES]
                       [--connections N] [--duration SECS] [--loops N | --sync] [--json]
            """,
        discussion: """
            throughput: each connection sends messages of --size bytes as fast as it can; \
            the server counts what arrives. latency: each connection sends --size bytes and \
            waits for the server to echo them (one in flight), timing each round trip. Prints \
            bytes/s, messages/s and latency percentiles (p50, p99; per send in throughput \
            mode); --json prints one JSON object. A live progress line appears when standard \
            error is a terminal.

            The server and the clients are tasks on SocketsAsync event loops (--loops, one per \
            processor by default; client i runs on loop i mod N and the server's side of the \
            i-th connection on the next loop). --sync runs them instead on threads over the \
            blocking core, a thread per socket, for comparison. Threads run where the \
            scheduler puts them: pin with taskset for repeatable numbers.

            Examples:
              sock bench
              sock bench unix --mode latency --duration 5
              sock bench udp --size 1400 --connections 4 --json
              sock bench tcp --mode latency --loops 1     (client and server on one thread)
              sock bench tcp --mode latency --sync        (the same on blocking threads)
            """
    )

    enum Transport: String, ExpressibleByArgument, CaseIterable, Sendable {
        case tcp, udp, unix
    }

    enum Mode: String, ExpressibleByArgument, CaseIterable, Sendable {
        case throughput, latency
    }

    @Argument(help: "tcp, udp or unix.")
    var transport: Transport = .tcp

    @Option(help: "throughput or latency.")
    var mode: Mode = .throughput

    @Option(help: ArgumentHelp("Bytes per message (default: 131072 for throughput over streams, 1400 over UDP, 64 for latency).", valueName: "BYTES"))
    var size: Int?

    @Option(help: "Concurrent connections (1...1000).")
    var connections = 1

    @Option(help: ArgumentHelp("Seconds to run (0.1...3600).", valueName: "SECS"))
    var duration = 3.0

    @Option(help: ArgumentHelp("Event loops to run on (1...64; default: one per processor).", valueName: "N"))
    var loops: Int?

    @Flag(help: "Use threads over the blocking core instead of the event loop, for comparison.")
    var sync = false

    @Flag(help: "Print JSON.")
    var json = false

    var messageSize: Int {
        if let size { return size }
        if mode == .latency { return 64 }
        return transport == .udp ? 1400 : 128 * 1024
    }

    func validate() throws {
        guard (1...1000).contains(connections) else { throw ValidationError("--connections \(connections) is outside 1...1000") }
        let largest = transport == .udp ? 65_507 : 16 * 1024 * 1024
        guard (1...largest).contains(messageSize) else { throw ValidationError("--size \(messageSize) is outside 1...\(largest) for \(transport.rawValue)") }
        if let loops {
            guard (1...64).contains(loops) else { throw ValidationError("--loops \(loops) is outside 1...64") }
            if sync { throw ValidationError("--loops and --sync cannot be used together") }
        }
    }

    func run() async throws {
        let runTime = try seconds(duration, option: "--duration", minimum: 0.1, maximum: 3600)
        let showProgress = Console.errorIsTerminal && !json
        let run = BenchRun(transport: transport, mode: mode, size: messageSize, connections: connections, duration: runTime)
        let result: BenchResult
        if sync {
            result = try SyncBenchmark(run).measure(showProgress: showProgress)
        } else {
            let loopCount = loops ?? max(1, min(EventLoopGroup.processorCount, 64))
            result = try await AsyncBenchmark(run, loopCount: loopCount).measure(showProgress: showProgress)
        }
        try Console.out(json ? result.json : result.table)
    }
}
