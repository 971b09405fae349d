import Foundation
import Glibc
import SocketSyscalls
import Sockets
import Synchronization
import Testing

// MARK: - Helpers

/// A TCP connection over 127.0.0.1: the listener, the client end and the accepted end.
private struct TCPConnection {
    let listener: Socket
    let client: Socket
    let server: Socket

    init() throws {
        listener = try Socket(.inet, .stream)
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen()
        client = try Socket(.inet, .stream)
        try client.connect(to: try listener.localAddress())
        server = try listener.accept().socket
    }

    func close() {
        try? client.close()
        try? server.close()
        try? listener.close()
    }
}

/// Sends on a non-blocking socket until the kernel takes no more; returns the bytes sent.
private func fillSendBuffer(_ socket: Socket) throws -> Int {
    let chunk = [UInt8](repeating: 0x61, count: 65_536)
    var total = 0
    for _ in 0..<10_000 {
        guard let sent = try chunk.withUnsafeBytes({ try socket.trySend($0) }) else { return total }
        total += sent
    }
    Issue.record("the send buffer never filled")
    return total
}

/// Receives on a non-blocking socket until nothing is left; returns the bytes received.
private func drain(_ socket: Socket) throws -> Int {
    var buffer = [UInt8](repeating: 0, count: 65_536)
    var total = 0
    for _ in 0..<100_000 {
        guard let count = try buffer.withUnsafeMutableBytes({ try socket.tryReceive(into: $0, flags: .dontWait) }), count > 0 else {
            return total
        }
        total += count
    }
    Issue.record("the socket never ran dry")
    return total
}

/// A value shared with another thread under a lock (a class, so closures can capture it).
private final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

private func isInvalidArgument(_ error: SocketError?) -> Bool {
    if case .invalidArgument = error?.reason { return true }
    return false
}

private func isClosed(_ error: SocketError?) -> Bool {
    error?.reason == .closed
}

// MARK: Interrupting a wait with a signal

/// Counts SIGUSR1 deliveries, to show that signals did land while a wait was blocked.
private let interruptsHandled = Atomic<Int>(0)

/// Installs a SIGUSR1 handler without `SA_RESTART`, so blocked calls fail with `EINTR`.
private func installInterruptHandler() {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in interruptsHandled.add(1, ordering: .relaxed) }
    action.sa_flags = 0
    sigemptyset(&action.sa_mask)
    sigaction(SIGUSR1, &action, nil)
}

private struct InterruptedWaitState<T: Sendable>: Sendable {
    var thread: pthread_t?
    var result: Result<T, any Error>?
}

/// Runs `wait` on a thread of its own, sends that thread SIGUSR1 30 times over about 300 ms
/// (each one landing in the blocked call makes it fail with `EINTR`), then runs `finish`
/// (which should make the wait return) and gives back what `wait` returned.
private func interruptedWait<T: Sendable>(
    _ wait: @escaping @Sendable () throws -> T, then finish: () throws -> Void
) throws -> (result: T, interrupts: Int) {
    installInterruptHandler()
    let state = Locked(InterruptedWaitState<T>())
    let finished = DispatchSemaphore(value: 0)
    let mayExit = DispatchSemaphore(value: 0)
    let thread = Thread {
        // Threads inherit the mask of the one that made them; Dispatch's workers block signals.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGUSR1)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        state.withLock { $0.thread = pthread_self() }
        let result = Result { try wait() }
        state.withLock { $0.result = result }
        finished.signal()
        // Stay alive while the test may still signal this thread.
        mayExit.wait()
    }
    thread.start()
    defer { mayExit.signal() }
    var target: pthread_t?
    for _ in 0..<1000 where target == nil {
        target = state.withLock { $0.thread }
        if target == nil { usleep(1000) }
    }
    guard let target else { throw SocketError("start waiting thread", reason: .timedOut) }
    let before = interruptsHandled.load(ordering: .relaxed)
    for _ in 0..<30 {
        pthread_kill(target, SIGUSR1)
        usleep(10_000)
    }
    let interrupts = interruptsHandled.load(ordering: .relaxed) - before
    try finish()
    guard finished.wait(timeout: .now() + 30) == .success else {
        throw SocketError("interrupted wait", reason: .timedOut)
    }
    guard let result = state.withLock({ $0.result }) else { throw SocketError("interrupted wait", reason: .timedOut) }
    return (try result.get(), interrupts)
}

// MARK: - poll

@Suite(.noDescriptorLeaks())
struct PollTests {
    @Test func readableWhenDataArrives() throws {
        let connection = try TCPConnection()
        defer { connection.close() }
        #expect(try connection.server.poll(.readable, timeout: .zero) == [])
        try connection.client.sendAll("ping")
        let events = try connection.server.poll(.readable, timeout: .seconds(10))
        #expect(events == .readable)
        #expect(try connection.server.receive(maxLength: 10) == Array("ping".utf8))
        #expect(try connection.server.poll(.readable, timeout: .zero) == [])
    }

    @Test func manyEntriesReportOnlyTheReadyOnes() throws {
        let (a, b) = try Socket.pair()
        let (c, d) = try Socket.pair()
        let notifier = try EventNotifier()
        defer { try? a.close(); try? b.close(); try? c.close(); try? d.close(); try? notifier.close() }
        try a.sendAll("x")
        try notifier.signal()
        var entries = [
            PollEntry(b, events: .readable),
            PollEntry(d, events: .readable),
            PollEntry(descriptor: notifier.descriptor, events: .readable),
            PollEntry(descriptor: -1, events: .readable),
        ]
        let count = try Socket.poll(&entries, timeout: .seconds(10))
        #expect(count == 2)
        #expect(entries.map(\.returnedEvents) == [.readable, [], .readable, []])
        #expect(entries[0].socket === b)
        #expect(entries[2].descriptor == notifier.descriptor)
        #expect(try notifier.drain() == 1)
    }

    @Test func writableUntilTheSendBufferIsFull() throws {
        let (a, b) = try Socket.pair(nonBlocking: true)
        defer { try? a.close(); try? b.close() }
        #expect(try a.poll(.writable, timeout: .zero) == .writable)
        let sent = try fillSendBuffer(a)
        #expect(sent > 0)
        #expect(try a.poll(.writable, timeout: .zero) == [])
        #expect(try a.poll(.writable, timeout: .milliseconds(20)) == [])
        #expect(try drain(b) == sent)
        #expect(try a.poll(.writable, timeout: .seconds(10)) == .writable)
    }

    @Test func peerCloseIsReadableWithEndOfFile() throws {
        let connection = try TCPConnection()
        defer { connection.close() }
        try connection.client.close()
        let events = try connection.server.poll([.readable, .readHangUp], timeout: .seconds(10))
        #expect(events.contains(.readable))
        #expect(events.contains(.readHangUp))
        #expect(try connection.server.receive(maxLength: 10) == [])
    }

    @Test func hangUpOnceBothDirectionsAreShut() throws {
        let connection = try TCPConnection()
        defer { connection.close() }
        try connection.client.shutdown(.write)
        let halfClosed = try connection.server.poll([.readable, .readHangUp], timeout: .seconds(10))
        #expect(halfClosed.contains(.readHangUp))
        #expect(!halfClosed.contains(.hangUp))
        try connection.server.shutdown(.write)
        let closed = try connection.server.poll(.readable, timeout: .seconds(10))
        #expect(closed.contains(.hangUp))
    }

    @Test func timeoutReportsNothingAfterTheFullTime() throws {
        let (a, b) = try Socket.pair()
        defer { try? a.close(); try? b.close() }
        let start = ContinuousClock.now
        #expect(try a.poll(.readable, timeout: .milliseconds(50)) == [])
        #expect(ContinuousClock.now - start >= .milliseconds(50))
        var entries = [PollEntry(a, events: .readable)]
        #expect(try Socket.poll(&entries, timeout: .milliseconds(30)) == 0)
        #expect(entries[0].returnedEvents == [])
        #expect(!entries[0].isReady)
    }

    @Test func negativeAndHugeTimeouts() throws {
        let (a, b) = try Socket.pair()
        let epoll = try Epoll()
        defer { try? a.close(); try? b.close(); try? epoll.close() }
        // Negative: only check.
        #expect(try a.poll(.readable, timeout: .seconds(-5)) == [])
        #expect(try Socket.select(forReading: [a], timeout: .seconds(-5)).isEmpty)
        try epoll.add(a, events: .writable)
        #expect(try epoll.wait(timeout: .seconds(-5)).count == 1)
        // Huge: no overflow, and a ready socket still returns at once.
        let huge = Duration.seconds(Int64.max) * 10
        #expect(try a.poll(.writable, timeout: huge) == .writable)
        #expect(try Socket.select(forReading: [], forWriting: [a], timeout: huge).writable.count == 1)
        #expect(try epoll.wait(timeout: huge).count == 1)
    }

    @Test func listenerReadableWhenAClientConnects() throws {
        let listener = try Socket(.inet6, .stream)
        defer { try? listener.close() }
        try listener.bind(to: .ipv6(.loopback, port: 0))
        try listener.listen()
        #expect(try listener.poll(.readable, timeout: .zero) == [])
        let client = try Socket(.inet6, .stream)
        defer { try? client.close() }
        try client.connect(to: try listener.localAddress())
        #expect(try listener.poll(.readable, timeout: .seconds(10)) == .readable)
        let (accepted, peer) = try listener.accept()
        defer { try? accepted.close() }
        #expect(peer == (try client.localAddress()))
    }

    @Test func urgentDataIsPriority() throws {
        let connection = try TCPConnection()
        defer { connection.close() }
        _ = try connection.client.send(Array("!".utf8), flags: .outOfBand)
        let events = try connection.server.poll(.priority, timeout: .seconds(10))
        #expect(events.contains(.priority))
    }

    @Test func closedSocketReportsInvalidAtOnce() throws {
        let (a, b) = try Socket.pair()
        let (c, d) = try Socket.pair()
        defer { try? b.close(); try? c.close(); try? d.close() }
        try a.close()
        var entries = [PollEntry(a, events: .readable), PollEntry(c, events: .readable)]
        // No timeout: without the closed entry this would wait for ever.
        #expect(try Socket.poll(&entries, timeout: nil) == 1)
        #expect(entries[0].returnedEvents == .invalid)
        #expect(entries[0].descriptor == -1)
        #expect(entries[1].returnedEvents == [])
        let error = #expect(throws: SocketError.self) { try a.poll(.readable, timeout: .zero) }
        #expect(isClosed(error))
    }

    @Test func descriptorThatIsNotOpenReportsInvalid() throws {
        let socket = try Socket(.unix, .stream)
        let stale = socket.descriptor
        try socket.close()
        var entries = [PollEntry(descriptor: stale, events: .readable)]
        // The number may have been reused by another test's thread only if tests ran in
        // parallel; the suite is serialised.
        #expect(try Socket.poll(&entries, timeout: .zero) == 1)
        #expect(entries[0].returnedEvents == .invalid)
    }

    @Test func emptySetWithoutTimeoutIsRejected() throws {
        var entries: [PollEntry] = []
        let error = #expect(throws: SocketError.self) { try Socket.poll(&entries, timeout: nil) }
        #expect(isInvalidArgument(error))
        #expect(try Socket.poll(&entries, timeout: .milliseconds(1)) == 0)
    }

    @Test func signalsDoNotEndTheWait() throws {
        let connection = try TCPConnection()
        defer { connection.close() }
        let server = connection.server
        let (events, interrupts) = try interruptedWait({ try server.poll(.readable, timeout: .seconds(30)) }) {
            try connection.client.sendAll("after signals")
        }
        #expect(interrupts > 0)
        #expect(events == .readable)
    }

    @Test func signalsDoNotShortenTheTimeout() throws {
        let (a, b) = try Socket.pair()
        defer { try? a.close(); try? b.close() }
        let start = ContinuousClock.now
        // The signals come during the first ~300 ms of a 500 ms wait.
        let (events, interrupts) = try interruptedWait({ try a.poll(.readable, timeout: .milliseconds(500)) }) {}
        #expect(interrupts > 0)
        #expect(events == [])
        #expect(ContinuousClock.now - start >= .milliseconds(500))
    }
}

// MARK: - select

@Suite(.noDescriptorLeaks())
struct SelectTests {
    @Test func readableWhenDataArrives() throws {
        let first = try TCPConnection()
        let second = try TCPConnection()
        defer { first.close(); second.close() }
        let nothing = try Socket.select(forReading: [first.server, second.server], timeout: .zero)
        #expect(nothing.isEmpty)
        try second.client.sendAll("data")
        let ready = try Socket.select(forReading: [first.server, second.server], timeout: .seconds(10))
        #expect(ready.readable.count == 1)
        #expect(ready.readable.first === second.server)
        #expect(ready.writable.isEmpty && ready.exceptional.isEmpty)
        // The descriptor form gives the numbers.
        let byNumber = try Socket.select(forReading: [first.server.descriptor, second.server.descriptor], timeout: .zero)
        #expect(byNumber.readable == [second.server.descriptor])
    }

    @Test func writableUntilTheSendBufferIsFull() throws {
        let (a, b) = try Socket.pair(nonBlocking: true)
        defer { try? a.close(); try? b.close() }
        #expect(try Socket.select(forReading: [], forWriting: [a], timeout: .zero).writable.first === a)
        let sent = try fillSendBuffer(a)
        #expect(try Socket.select(forReading: [], forWriting: [a], timeout: .milliseconds(20)).isEmpty)
        #expect(try drain(b) == sent)
        #expect(try Socket.select(forReading: [], forWriting: [a], timeout: .seconds(10)).writable.first === a)
    }

    @Test func peerCloseIsReadableWithEndOfFile() throws {
        let connection = try TCPConnection()
        defer { connection.close() }
        try connection.client.close()
        let ready = try Socket.select(forReading: [connection.server], timeout: .seconds(10))
        #expect(ready.readable.first === connection.server)
        #expect(try connection.server.receive(maxLength: 10) == [])
    }

    @Test func timeoutReportsNothing() throws {
        let (a, b) = try Socket.pair()
        defer { try? a.close(); try? b.close() }
        let start = ContinuousClock.now
        let ready = try Socket.select(forReading: [a, b], forExceptions: [a], timeout: .milliseconds(50))
        #expect(ready.isEmpty)
        #expect(ContinuousClock.now - start >= .milliseconds(50))
    }

    @Test func listenerReadableWhenAClientConnects() throws {
        let listener = try Socket(.inet, .stream)
        defer { try? listener.close() }
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen()
        #expect(try Socket.select(forReading: [listener], timeout: .zero).isEmpty)
        let client = try Socket(.inet, .stream)
        defer { try? client.close() }
        try client.connect(to: try listener.localAddress())
        #expect(try Socket.select(forReading: [listener], timeout: .seconds(10)).readable.first === listener)
        let (accepted, _) = try listener.accept()
        try accepted.close()
    }

    @Test func urgentDataIsExceptional() throws {
        let connection = try TCPConnection()
        defer { connection.close() }
        #expect(try Socket.select(forReading: [], forExceptions: [connection.server], timeout: .zero).isEmpty)
        _ = try connection.client.send(Array("!".utf8), flags: .outOfBand)
        let ready = try Socket.select(forReading: [], forExceptions: [connection.server], timeout: .seconds(10))
        #expect(ready.exceptional.first === connection.server)
    }

    @Test(.requiresDescriptors(1_501)) func descriptorAtOrAboveFDSetSizeIsRejected() throws {
        #expect(Socket.selectDescriptorLimit == 1024)
        let (socket, peer) = try Socket.pair()
        defer { try? socket.close(); try? peer.close() }
        let high = try Syscall.duplicate(socket.descriptor, atLeast: 1500)
        let highSocket = Socket(adopting: high)
        defer { try? highSocket.close() }
        #expect(high >= 1500)

        let error = #expect(throws: SocketError.self) { try Socket.select(forReading: [high], timeout: .zero) }
        #expect(isInvalidArgument(error))
        #expect(error?.description.contains("FD_SETSIZE") == true)
        #expect(error?.description.contains("\(high)") == true)
        for sets in [([], [highSocket], []), ([], [], [highSocket]), ([socket], [], [highSocket])] as [([Socket], [Socket], [Socket])] {
            let error = #expect(throws: SocketError.self) {
                try Socket.select(forReading: sets.0, forWriting: sets.1, forExceptions: sets.2, timeout: .zero)
            }
            #expect(isInvalidArgument(error))
        }
        // The limit is select's alone: poll takes the same descriptor.
        #expect(try highSocket.poll(.writable, timeout: .zero) == .writable)
    }

    @Test func negativeDescriptorAndEmptyWaitAreRejected() throws {
        let negative = #expect(throws: SocketError.self) { try Socket.select(forReading: [-1], timeout: .zero) }
        #expect(isInvalidArgument(negative))
        let empty = #expect(throws: SocketError.self) { try Socket.select(forReading: [CInt](), timeout: nil) }
        #expect(isInvalidArgument(empty))
        // With a timeout, an empty select is a sleep.
        #expect(try Socket.select(forReading: [CInt](), timeout: .milliseconds(1)).isEmpty)
    }

    @Test func closedSocketIsRejected() throws {
        let (a, b) = try Socket.pair()
        defer { try? b.close() }
        try a.close()
        let error = #expect(throws: SocketError.self) { try Socket.select(forReading: [b, a], timeout: .zero) }
        #expect(isClosed(error))
        // b was held and let go again: it is still usable.
        try a.close()
        #expect(try b.poll(.readable, timeout: .zero).contains(.hangUp))
    }

    @Test func descriptorThatIsNotOpenFailsWithEBADF() throws {
        let socket = try Socket(.unix, .stream)
        let stale = socket.descriptor
        try socket.close()
        let error = #expect(throws: SocketError.self) { try Socket.select(forReading: [stale], timeout: .zero) }
        #expect(error?.errno == .badFileDescriptor)
    }

    @Test func signalsDoNotEndTheWait() throws {
        let connection = try TCPConnection()
        defer { connection.close() }
        let server = connection.server
        let (ready, interrupts) = try interruptedWait({ try Socket.select(forReading: [server], timeout: .seconds(30)).readable.count }) {
            try connection.client.sendAll("after signals")
        }
        #expect(interrupts > 0)
        #expect(ready == 1)
    }
}

// MARK: - epoll

@Suite(.noDescriptorLeaks())
struct EpollTests {
    @Test func readableWhenDataArrives() throws {
        let connection = try TCPConnection()
        let epoll = try Epoll()
        defer { connection.close(); try? epoll.close() }
        try epoll.add(connection.server, events: .readable, data: 42)
        #expect(try epoll.wait(timeout: .zero).isEmpty)
        try connection.client.sendAll("ping")
        let events = try epoll.wait(timeout: .seconds(10))
        #expect(events == [EpollEvent(events: .readable, data: 42)])
    }

    @Test func defaultDataIsTheDescriptor() throws {
        let (a, b) = try Socket.pair()
        let epoll = try Epoll()
        defer { try? a.close(); try? b.close(); try? epoll.close() }
        try epoll.add(a, events: .writable)
        let events = try epoll.wait(timeout: .seconds(10))
        #expect(events == [EpollEvent(events: .writable, data: UInt64(a.descriptor))])
    }

    @Test func writableUntilTheSendBufferIsFull() throws {
        let (a, b) = try Socket.pair(nonBlocking: true)
        let epoll = try Epoll()
        defer { try? a.close(); try? b.close(); try? epoll.close() }
        try epoll.add(a, events: .writable, data: 1)
        #expect(try epoll.wait(timeout: .zero).map(\.events) == [.writable])
        let sent = try fillSendBuffer(a)
        #expect(try epoll.wait(timeout: .milliseconds(20)).isEmpty)
        #expect(try drain(b) == sent)
        #expect(try epoll.wait(timeout: .seconds(10)).map(\.events) == [.writable])
    }

    @Test func peerShutdownGivesReadHangUpAndEndOfFile() throws {
        let connection = try TCPConnection()
        let epoll = try Epoll()
        defer { connection.close(); try? epoll.close() }
        try epoll.add(connection.server, events: [.readable, .readHangUp], data: 7)
        try connection.client.shutdown(.write)
        let events = try epoll.wait(timeout: .seconds(10))
        #expect(events.count == 1)
        #expect(events.first?.events == [.readable, .readHangUp])
        #expect(try connection.server.receive(maxLength: 10) == [])
        // Both directions shut: hang-up.
        try connection.server.shutdown(.write)
        let closed = try epoll.wait(timeout: .seconds(10))
        #expect(closed.first?.events.contains(.hangUp) == true)
    }

    @Test func timeoutReportsNothing() throws {
        let (a, b) = try Socket.pair()
        let epoll = try Epoll()
        defer { try? a.close(); try? b.close(); try? epoll.close() }
        try epoll.add(a, events: .readable)
        let start = ContinuousClock.now
        var buffer = EpollEventBuffer(capacity: 8)
        #expect(try epoll.wait(into: &buffer, timeout: .milliseconds(50)) == 0)
        #expect(buffer.count == 0)
        #expect(ContinuousClock.now - start >= .milliseconds(50))
    }

    @Test func listenerReadableWhenAClientConnects() throws {
        let listener = try Socket(.inet, .stream)
        let epoll = try Epoll()
        defer { try? listener.close(); try? epoll.close() }
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen()
        try epoll.add(listener, events: .readable, data: 5)
        #expect(try epoll.wait(timeout: .zero).isEmpty)
        let client = try Socket(.inet, .stream)
        defer { try? client.close() }
        try client.connect(to: try listener.localAddress())
        #expect(try epoll.wait(timeout: .seconds(10)) == [EpollEvent(events: .readable, data: 5)])
        let (accepted, _) = try listener.accept()
        try accepted.close()
    }

    @Test func levelTriggeredReportsAgainUntilRead() throws {
        let (a, b) = try Socket.pair(nonBlocking: true)
        let epoll = try Epoll()
        defer { try? a.close(); try? b.close(); try? epoll.close() }
        try epoll.add(b, events: .readable, data: 1)
        try a.sendAll("0123456789")
        #expect(try epoll.wait(timeout: .seconds(10)).count == 1)
        #expect(try epoll.wait(timeout: .zero).count == 1)
        _ = try b.receive(maxLength: 4)
        #expect(try epoll.wait(timeout: .zero).count == 1)
        #expect(try drain(b) == 6)
        #expect(try epoll.wait(timeout: .zero).isEmpty)
    }

    @Test func edgeTriggeredReportsOnlyNewData() throws {
        let (a, b) = try Socket.pair(nonBlocking: true)
        let epoll = try Epoll()
        defer { try? a.close(); try? b.close(); try? epoll.close() }
        try epoll.add(b, events: [.readable, .edgeTriggered], data: 1)
        try a.sendAll("0123456789")
        #expect(try epoll.wait(timeout: .seconds(10)).count == 1)
        // Not drained, yet no new report: nothing changed.
        #expect(try epoll.wait(timeout: .zero).isEmpty)
        _ = try b.receive(maxLength: 4)
        #expect(try epoll.wait(timeout: .zero).isEmpty)
        // New data is a new edge.
        try a.sendAll("more")
        #expect(try epoll.wait(timeout: .seconds(10)).count == 1)
        #expect(try epoll.wait(timeout: .zero).isEmpty)
        #expect(try drain(b) == 10)
        #expect(try epoll.wait(timeout: .zero).isEmpty)
    }

    @Test func oneShotNeedsRearming() throws {
        let (a, b) = try Socket.pair(nonBlocking: true)
        let epoll = try Epoll()
        defer { try? a.close(); try? b.close(); try? epoll.close() }
        try epoll.add(b, events: [.readable, .oneShot], data: 9)
        try a.sendAll("one")
        #expect(try epoll.wait(timeout: .seconds(10)) == [EpollEvent(events: .readable, data: 9)])
        try a.sendAll("two")
        #expect(try epoll.wait(timeout: .milliseconds(20)).isEmpty)
        try epoll.modify(b, events: [.readable, .oneShot], data: 10)
        #expect(try epoll.wait(timeout: .seconds(10)) == [EpollEvent(events: .readable, data: 10)])
        #expect(try epoll.wait(timeout: .zero).isEmpty)
        #expect(try drain(b) == 6)
    }

    @Test func removeStopsReports() throws {
        let (a, b) = try Socket.pair()
        let epoll = try Epoll()
        defer { try? a.close(); try? b.close(); try? epoll.close() }
        try epoll.add(b, events: .readable)
        try epoll.remove(b)
        try a.sendAll("x")
        #expect(try epoll.wait(timeout: .milliseconds(20)).isEmpty)
        let notRegistered = #expect(throws: SocketError.self) { try epoll.remove(b) }
        #expect(notRegistered?.errno == .noSuchFileOrDirectory)
        try epoll.add(b, events: .readable)
        let twice = #expect(throws: SocketError.self) { try epoll.add(b, events: .readable) }
        #expect(twice?.errno == .fileExists)
        #expect(try epoll.wait(timeout: .seconds(10)).count == 1)
    }

    @Test func closedSocketOrInstanceIsRejected() throws {
        let (a, b) = try Socket.pair()
        let epoll = try Epoll()
        defer { try? b.close(); try? epoll.close() }
        try a.close()
        #expect(isClosed(#expect(throws: SocketError.self) { try epoll.add(a, events: .readable) }))
        #expect(isClosed(#expect(throws: SocketError.self) { try epoll.modify(a, events: .readable) }))
        #expect(isClosed(#expect(throws: SocketError.self) { try epoll.remove(a) }))
        try epoll.close()
        try epoll.close()
        #expect(epoll.descriptor == -1)
        #expect(isClosed(#expect(throws: SocketError.self) { try epoll.add(b, events: .readable) }))
        #expect(isClosed(#expect(throws: SocketError.self) { try epoll.wait(timeout: .zero) }))
    }

    @Test func notifierWakesAWaitFromAnotherThread() throws {
        let epoll = try Epoll()
        let notifier = try EventNotifier()
        defer { try? epoll.close(); try? notifier.close() }
        try epoll.add(notifier.descriptor, events: .readable, data: 77)
        let started = DispatchSemaphore(value: 0)
        let result = Locked<Result<[EpollEvent], SocketError>?>(nil)
        let finished = DispatchSemaphore(value: 0)
        Thread {
            started.signal()
            let events = Result { () throws(SocketError) in try epoll.wait(timeout: .seconds(30)) }
            result.withLock { $0 = events }
            finished.signal()
        }.start()
        started.wait()
        usleep(20_000)
        #expect(result.withLock { $0 } == nil)
        try notifier.signal()
        #expect(finished.wait(timeout: .now() + 30) == .success)
        #expect(try result.withLock { $0 }?.get() == [EpollEvent(events: .readable, data: 77)])
        #expect(try notifier.drain() == 1)
        #expect(try notifier.drain() == 0)
    }

    @Test func closeWakesABlockedWait() throws {
        let epoll = try Epoll()
        let (a, b) = try Socket.pair()
        defer { try? a.close(); try? b.close() }
        try epoll.add(b, events: .readable)
        let started = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let result = Locked<Result<[EpollEvent], SocketError>?>(nil)
        Thread {
            started.signal()
            // Far longer than the test waits below: only the close can end this wait in time.
            let events = Result { () throws(SocketError) in try epoll.wait(timeout: .seconds(120)) }
            result.withLock { $0 = events }
            finished.signal()
        }.start()
        started.wait()
        usleep(20_000)
        let descriptor = epoll.descriptor
        try epoll.close()
        try #require(finished.wait(timeout: .now() + 20) == .success)
        let outcome = result.withLock { $0 }
        if case .failure(let error) = outcome {
            #expect(isClosed(error))
        } else {
            Issue.record("the wait returned \(String(describing: outcome)) instead of failing as closed")
        }
        // The last waiter out closed the epoll descriptor.
        #expect(fcntl(descriptor, F_GETFD) == -1)
    }

    @Test func signalsDoNotEndTheWait() throws {
        let connection = try TCPConnection()
        let epoll = try Epoll()
        defer { connection.close(); try? epoll.close() }
        try epoll.add(connection.server, events: .readable, data: 3)
        let (events, interrupts) = try interruptedWait({ try epoll.wait(timeout: .seconds(30)) }) {
            try connection.client.sendAll("after signals")
        }
        #expect(interrupts > 0)
        #expect(events == [EpollEvent(events: .readable, data: 3)])
    }

    @Test func eventDescriptions() {
        #expect(EpollEvents([.readable, .edgeTriggered]).description == "EPOLLIN|EPOLLET")
        #expect(PollEvents([.readable, .hangUp]).description == "POLLIN|POLLHUP")
        #expect(EpollEvents().description == "[]")
    }
}
