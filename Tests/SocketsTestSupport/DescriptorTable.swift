// Shared by every test target: they all run in one process, so the test that checks the
// descriptor table must not overlap a test of another target.
import Glibc

/// Lets one descriptor-checked test run at a time, since the descriptor table (and the
/// descriptor limit) is per process, and every test target of the package runs in one process:
/// all of them must share this one serializer.
public actor TestSerializer {
    public static let shared = TestSerializer()
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    public func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}

/// The descriptors open in this process, from /proc/self/fd.
public func openDescriptors() -> Set<Int32> {
    guard let directory = opendir("/proc/self/fd") else { return [] }
    let own = dirfd(directory)
    var result: Set<Int32> = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if let fd = Int32(name), fd != own { result.insert(fd) }
    }
    closedir(directory)
    return result
}

/// What a descriptor refers to, for leak reports.
public func descriptorTarget(_ fd: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    let count = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
    guard count > 0 else { return "?" }
    return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
