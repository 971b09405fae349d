// Fuzzes the control-message decoder with any recvmsg control buffer: records shorter or
// longer than the bytes left, payloads of the wrong size for their type, SCM_RIGHTS with
// any numbers. The decoder under test is the one that does not own descriptors
// (`ControlMessage.decode`): it returns SCM_RIGHTS as plain numbers and never closes or
// adopts anything, so garbage numbers cannot touch this process's descriptors (checked
// below: every descriptor open when fuzzing began is still open after every input). The owning path that
// `receiveMessage` uses walks the same records with the same bounds checks.
import Glibc
import Sockets

func fail(_ message: String) -> Never {
    let line = "FuzzControlMessage: property violated: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    abort()
}

/// The descriptors open in this process now (/proc/self/fd).
func openDescriptors() -> Set<Int32> {
    var result = Set<Int32>()
    guard let directory = opendir("/proc/self/fd") else { return result }
    let own = dirfd(directory)
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        if let fd = Int32(name), fd != own { result.insert(fd) }
    }
    closedir(directory)
    return result
}

nonisolated(unsafe) var descriptorsAtStart: [Int32]?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzControlMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if descriptorsAtStart == nil { descriptorsAtStart = openDescriptors().sorted() }
    // A copy of exactly the input's size: one byte read past it is an ASan report.
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 1)
    defer { copy.deallocate() }
    copy.copyMemory(from: UnsafeRawBufferPointer(start: data, count: size))
    guard let messages = try? ControlMessage.decode(UnsafeRawBufferPointer(copy)) else { return 0 }
    for message in messages { _ = message.description }

    // Decoding normalises; what was decoded encodes, and decodes back to itself.
    if let encoded = try? ControlMessage.encode(messages) {
        guard encoded.count == ControlMessage.encodedSpace(of: messages) else {
            fail("encoded \(encoded.count) bytes, expected \(ControlMessage.encodedSpace(of: messages))")
        }
        guard let again = try? ControlMessage.decode(encoded) else { fail("encoded \(messages) does not decode") }
        guard again.count == messages.count else { fail("\(messages) came back as \(again)") }
        if let twice = try? ControlMessage.encode(again) {
            guard twice == encoded || (try? ControlMessage.decode(twice)) == again else {
                fail("\(again) is not stable under encode and decode")
            }
        } else {
            fail("\(again) (decoded from encoded \(messages)) does not encode")
        }
    }
    // Nothing was closed: SCM_RIGHTS numbers are only numbers here. (libFuzzer opens files
    // of its own as it goes, so only the descriptors of the start are checked.)
    for fd in descriptorsAtStart ?? [] where fcntl(fd, F_GETFD) == -1 {
        fail("descriptor \(fd), open at the start, was closed")
    }
    return 0
}
