import Foundation
import Glibc
import Sockets
import SocketSyscalls
import Synchronization
import Testing

@Suite(.noDescriptorLeaks())
struct ProcessSupportTests {
    @Test func isTerminalIsFalseForSocketsAndPipes() throws {
        let (left, right) = try Socket.pair()
        defer { try? left.close(); try? right.close() }
        #expect(!ProcessSupport.isTerminal(left.descriptor))
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        #expect(!ProcessSupport.isTerminal(fds[0]))
        #expect(!ProcessSupport.isTerminal(-1))
    }

    @Test func brokenPipeIsAnErrorOnceIgnored() throws {
        ProcessSupport.ignoreBrokenPipeSignal()
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        close(fds[0])
        defer { close(fds[1]) }
        var byte: UInt8 = 1
        #expect(write(fds[1], &byte, 1) == -1)
        #expect(errno == EPIPE)
    }

    @Test func aBlockedSignalIsTakenBySigwait() throws {
        // On a thread of its own, so that no other test's thread has its signal mask changed.
        let result = Mutex<Result<Int32, SocketError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            do throws(SocketError) {
                try ProcessSupport.blockSignals([SIGUSR1])
                pthread_kill(pthread_self(), SIGUSR1)
                let signal = try ProcessSupport.waitForSignal([SIGUSR1])
                result.withLock { $0 = .success(signal) }
            } catch {
                result.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        thread.start()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(try result.withLock { $0 }?.get() == SIGUSR1)
    }

    @Test func raisingTheDescriptorLimitReachesTheHardLimit() throws {
        let original = try Syscall.descriptorLimits()
        // Lowered first, so that the call has something to raise whatever ran before (the
        // test support raises it too); put back as found afterwards.
        let lowered: UInt64 = 256
        try #require(original.hard > lowered, "the hard limit (\(original.hard)) leaves nothing to raise")
        try Syscall.setDescriptorLimits(soft: lowered, hard: original.hard)
        defer { try? Syscall.setDescriptorLimits(soft: original.soft, hard: original.hard) }
        #expect(try Syscall.descriptorLimits().soft == lowered)

        #expect(try ProcessSupport.raiseDescriptorLimit() == Int(clamping: original.hard))
        let raised = try Syscall.descriptorLimits()
        #expect(raised.soft == original.hard)
        #expect(raised.hard == original.hard, "the hard limit is left alone")
        // Again: nothing left to raise, same answer.
        #expect(try ProcessSupport.raiseDescriptorLimit() == Int(clamping: original.hard))
    }

    @Test func invalidSignalsFailInsteadOfWaitingForEver() {
        for signals: [Int32] in [[9999], [], [0], [-1]] {
            #expect(throws: SocketError.self) { _ = try ProcessSupport.waitForSignal(signals) }
            #expect(throws: SocketError.self) { try ProcessSupport.blockSignals(signals) }
        }
    }
}
