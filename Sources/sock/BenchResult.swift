import Foundation

/// What a benchmark measured.
struct BenchResult {
    /// What ran it: "event loop" (with the number of loops) or "threads".
    var engine: Engine
    var transport: Bench.Transport
    var mode: Bench.Mode
    var connections: Int
    var size: Int
    var elapsed: Duration
    var bytes: Int
    var messages: Int
    /// Datagrams sent that never arrived (UDP).
    var lost: Int
    /// Microseconds: round trips (latency mode) or sends (throughput mode).
    var samples: [Double]

    enum Engine {
        case eventLoops(Int)
        case threads

        var name: String {
            switch self {
            case .eventLoops: return "async"
            case .threads: return "threads"
            }
        }

        var label: String {
            switch self {
            case .eventLoops(let count): return "event loop\(count == 1 ? "" : "s") (\(count)), async/await"
            case .threads: return "a thread per socket, blocking calls (--sync)"
            }
        }
    }

    var bytesPerSecond: Double { Double(bytes) / max(elapsed.seconds, 1e-9) }
    var messagesPerSecond: Double { Double(messages) / max(elapsed.seconds, 1e-9) }
    var sampleKind: String { mode == .latency ? "round trip" : "send" }

    func percentile(_ fraction: Double) -> Double? {
        guard !samples.isEmpty else { return nil }
        let index = min(samples.count - 1, max(0, Int((Double(samples.count) * fraction).rounded(.up)) - 1))
        return samples[index]
    }

    private func microseconds(_ value: Double?) -> String {
        guard let value else { return "n/a" }
        return value >= 1000 ? String(format: "%.2f ms", value / 1000) : String(format: "%.1f µs", value)
    }

    var table: String {
        let plural = connections == 1 ? "" : "s"
        var rows: [[String]] = [
            ["throughput", "\(Format.rate(bytesPerSecond)) (\(String(format: "%.2f", bytesPerSecond * 8 / 1e9)) Gbit/s)"],
            ["messages", "\(Format.count(messagesPerSecond)) /s (\(Format.count(Double(messages))) in \(Format.duration(elapsed)))"],
            ["\(sampleKind) p50", microseconds(percentile(0.5))],
            ["\(sampleKind) p99", microseconds(percentile(0.99))],
            ["\(sampleKind) min / max", "\(microseconds(samples.first)) / \(microseconds(samples.last))"],
        ]
        if transport == .udp { rows.append(["lost datagrams", Format.count(Double(lost))]) }
        rows.append(["engine", engine.label])
        return "sock bench: \(transport.rawValue) \(mode.rawValue), \(connections) connection\(plural), \(size)-byte messages\n\n"
            + Format.table(["metric", "value"], rows)
    }

    private var loopCountJSON: String {
        if case .eventLoops(let count) = engine { return String(count) }
        return "null"
    }

    var json: String {
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "null" }
            return String(format: "%.3f", value)
        }
        return """
            {"engine": "\(engine.name)", "event_loops": \(loopCountJSON), "transport": "\(transport.rawValue)", "mode": "\(mode.rawValue)", "connections": \(connections), \
            "message_size": \(size), "duration_seconds": \(number(elapsed.seconds)), "bytes": \(bytes), \
            "messages": \(messages), "lost": \(lost), "bytes_per_second": \(number(bytesPerSecond)), \
            "messages_per_second": \(number(messagesPerSecond)), "latency_us": {"kind": "\(sampleKind)", \
            "samples": \(samples.count), "p50": \(number(percentile(0.5))), "p99": \(number(percentile(0.99))), \
            "min": \(number(samples.first)), "max": \(number(samples.last))}}

            """
    }
}
