@_exported import SocketsTestSupport
import SocketsAsync
import Testing

extension Trait where Self == NoDescriptorLeaks {
    /// Serialise the test and check that it leaks no descriptor (see `NoDescriptorLeaks`),
    /// after opening what lives for the whole process: the shared loop's epoll and eventfd,
    /// and the concurrency runtime's timer descriptor (made on the first `Task.sleep`).
    static var noDescriptorLeaks: Self {
        NoDescriptorLeaks(warmUp: {
            _ = EventLoop.shared.isRunning
            try? await Task.sleep(for: .milliseconds(1))
            // The `.timeLimit` trait's timer runs on the suspending clock: Dispatch gives each
            // clock a timerfd of its own the first time it is used.
            try? await Task.sleep(for: .milliseconds(1), clock: .suspending)
        })
    }
}
