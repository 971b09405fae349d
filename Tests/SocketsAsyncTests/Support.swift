@_exported import SocketsTestSupport
import Testing

extension Trait where Self == NoDescriptorLeaks {
    /// Serialise the test and check that it leaks no descriptor (see `NoDescriptorLeaks`);
    /// each test may run a minute once its turn has come.
    static var noDescriptorLeaks: Self { .withAsyncRuntime(timeLimit: .seconds(60)) }
}
