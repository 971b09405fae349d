// A stand-in for the library's control-message decoding (being built on another branch):
// reads the one control message `sock ping` needs from the raw bytes of `recvmsg`.
import Glibc

enum ControlBytes {
    /// The hop limit carried by an `IPV6_HOPLIMIT` control message, if there is one.
    static func hopLimit(in control: [UInt8]) -> Int? {
        // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then the data,
        // each record padded to a multiple of sizeof(size_t).
        let word = MemoryLayout<Int>.size
        let header = word + 8
        var offset = 0
        while offset + header <= control.count {
            let (length, level, type) = control.withUnsafeBytes { bytes in
                (Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt.self)),
                 bytes.loadUnaligned(fromByteOffset: offset + word, as: CInt.self),
                 bytes.loadUnaligned(fromByteOffset: offset + word + 4, as: CInt.self))
            }
            guard length >= header, offset + length <= control.count else { return nil }
            if level == CInt(IPPROTO_IPV6), type == IPV6_HOPLIMIT, length >= header + 4 {
                return Int(control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + header, as: CInt.self) })
            }
            offset += (length + word - 1) & ~(word - 1)
        }
        return nil
    }
}
