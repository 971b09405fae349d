public import Sockets
import Synchronization

/// Several event loops, one per core by default: the way to use every core. Give each loop
/// its own listening socket on the same port (`SO_REUSEPORT`, as ``SocketServer`` does) and
/// the kernel spreads the connections among them.
public final class EventLoopGroup: Sendable {
    /// The loops.
    public let loops: [EventLoop]
    private let cursor = Atomic<Int>(0)

    /// The number of processors online.
    public static var processorCount: Int { SystemThread.processorCount }

    /// Starts `count` loops (one per online processor by default).
    /// - Throws: if a loop cannot start; the loops already started are shut down.
    public init(loopCount count: Int = EventLoopGroup.processorCount, name: String = "EventLoopGroup") throws(SocketError) {
        guard count >= 1, count <= 1024 else {
            throw SocketError.invalid("EventLoopGroup", String(count), "the loop count must be in 1...1024")
        }
        var loops: [EventLoop] = []
        for index in 0..<count {
            do {
                loops.append(try EventLoop(name: "\(name)-\(index)"))
            } catch {
                for loop in loops { loop.shutdown() }
                throw error
            }
        }
        self.loops = loops
    }

    /// The next loop, round-robin: for spreading client connections.
    public func next() -> EventLoop {
        let index = cursor.wrappingAdd(1, ordering: .relaxed).oldValue
        return loops[(index % loops.count + loops.count) % loops.count]
    }

    /// Shuts every loop down; see ``EventLoop/shutdown()``.
    public func shutdown() {
        for loop in loops { loop.shutdown() }
    }
}
