// The standard library's `withUnsafe...` methods on Array are `rethrows`, which erases a typed
// error to `any Error`; these keep the closure's error type.

extension Array {
    func withBufferTyped<R, E: Error>(_ body: (UnsafeBufferPointer<Element>) throws(E) -> R) throws(E) -> R {
        try withUnsafeBufferPointer { buffer in Result { () throws(E) -> R in try body(buffer) } }.get()
    }

    mutating func withMutableBufferTyped<R, E: Error>(_ body: (inout UnsafeMutableBufferPointer<Element>) throws(E) -> R) throws(E) -> R {
        try withUnsafeMutableBufferPointer { buffer in Result { () throws(E) -> R in try body(&buffer) } }.get()
    }

    func withBytesTyped<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes { buffer in Result { () throws(E) -> R in try body(buffer) } }.get()
    }

    mutating func withMutableBytesTyped<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeMutableBytes { buffer in Result { () throws(E) -> R in try body(buffer) } }.get()
    }
}
