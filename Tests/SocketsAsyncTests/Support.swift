@_exported import SocketsTestSupport
import Testing

extension Trait where Self == NoDescriptorLeaks {
    /// Serialise the test and check that it leaks no descriptor (see `NoDescriptorLeaks`).
    static var noDescriptorLeaks: Self { .withAsyncRuntime }
}
