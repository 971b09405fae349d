// The standard library's `withUnsafe...` methods on Array are `rethrows`, which erases a typed
// error to `any Error`; these keep the closure's error type. `package`: the async layer uses
// them too; `@inlinable`: so that its per-message calls are still specialized and inlined.

extension Array {
    @inlinable package func withBufferTyped<R, E: Error>(_ body: (UnsafeBufferPointer<Element>) throws(E) -> R) throws(E) -> R {
        try withUnsafeBufferPointer { buffer in Result { () throws(E) -> R in try body(buffer) } }.get()
    }

    @inlinable package mutating func withMutableBufferTyped<R, E: Error>(_ body: (inout UnsafeMutableBufferPointer<Element>) throws(E) -> R) throws(E) -> R {
        try withUnsafeMutableBufferPointer { buffer in Result { () throws(E) -> R in try body(&buffer) } }.get()
    }

    @inlinable package func withBytesTyped<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes { buffer in Result { () throws(E) -> R in try body(buffer) } }.get()
    }

    @inlinable package mutating func withMutableBytesTyped<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeMutableBytes { buffer in Result { () throws(E) -> R in try body(buffer) } }.get()
    }
}
