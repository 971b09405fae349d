import Foundation
import Sockets
import SystemPackage

/// `sock listen -U PATH --receive-fd`: takes descriptors passed over a Unix socket
/// (`SCM_RIGHTS`), reports what each refers to, and copies what it reads to standard output.
struct DescriptorReceiver {
    let listener: Socket
    let keepListening: Bool
    let verbose: Bool

    /// Descriptors taken per message; more are closed by the core, never leaked.
    static let maxPerMessage = 16

    func run() throws(ToolError) {
        repeat {
            let connection: Socket
            do {
                let (accepted, peer) = try listener.accept()
                connection = accepted
                if verbose { Console.error("sock: connection from \(peer)") }
            } catch {
                throw ToolError(error)
            }
            // One client only: stop accepting (later clients are refused, not queued).
            if !keepListening { try? listener.close() }
            defer { try? connection.close() }
            try serve(connection)
        } while keepListening
    }

    /// Takes messages until the peer closes: descriptors are used, other bytes ignored.
    private func serve(_ connection: Socket) throws(ToolError) {
        while true {
            let received: ReceivedDescriptors
            do {
                received = try connection.receiveDescriptors(maxCount: Self.maxPerMessage)
            } catch {
                throw ToolError(error)
            }
            if received.descriptors.isEmpty {
                if received.bytes.isEmpty { return }  // end of the stream (or an empty record)
                continue
            }
            if received.wereTruncated {
                Console.error("sock: more than \(Self.maxPerMessage) descriptors came in one message; the others were closed")
            }
            let label = Self.label(received.bytes)
            for descriptor in received.descriptors {
                defer { try? descriptor.close() }
                try use(descriptor, label: label)
            }
        }
    }

    /// The bytes that carried the descriptors, as printable text.
    static func label(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(200), as: UTF8.self)
        return String(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.map(Character.init))
    }

    /// Reports a descriptor and copies what it reads to standard output.
    private func use(_ descriptor: ReceivedDescriptor, label: String) throws(ToolError) {
        let result: Result<Int, ToolError>
        do {
            result = try descriptor.withDescriptor { fd in
                let details = DescriptorDetails(fd)
                Console.error("sock: received descriptor \"\(label)\": \(details)")
                if details.type == .directory {
                    Console.error("sock: not reading \"\(label)\": it is a directory")
                    return .success(0)
                }
                if details.access == .writeOnly {
                    Console.error("sock: not reading \"\(label)\": it was opened write-only")
                    return .success(0)
                }
                return Result { () throws(ToolError) in try Self.copyToStandardOutput(fd, label: label) }
            }
        } catch {
            throw ToolError(error)
        }
        let count = try result.get()
        if verbose { Console.error("sock: read \(count) bytes from \"\(label)\"") }
    }

    private static func copyToStandardOutput(_ fd: CInt, label: String) throws(ToolError) -> Int {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        var total = 0
        while true {
            let count = try Console.read(FileDescriptor(rawValue: fd), name: "received descriptor \"\(label)\"", into: buffer)
            if count == 0 { return total }
            try Console.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            total += count
        }
    }
}

/// What an open descriptor refers to, from `fstat(2)` and `/proc/self/fd` and `fdinfo`.
struct DescriptorDetails: CustomStringConvertible {
    enum Access: String {
        case readOnly = "read-only", writeOnly = "write-only", readWrite = "read-write"
    }

    let type: FileType?
    /// Where `/proc/self/fd/N` points: a path, or `pipe:[INODE]`, `socket:[INODE]`, ...
    let target: String?
    let size: Int64?
    let access: Access?

    init(_ fd: CInt) {
        let status = try? FileDescriptor(rawValue: fd).stat()
        type = status?.type
        size = status?.type == .regular ? status?.size : nil
        target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")
        // fdinfo's "flags:" line is the open flags in octal; the low two bits are the access mode.
        let info = (try? String(contentsOfFile: "/proc/self/fdinfo/\(fd)", encoding: .utf8)) ?? ""
        let flags = info.split(separator: "\n").first { $0.hasPrefix("flags:") }
            .flatMap { Int($0.dropFirst("flags:".count).trimmingCharacters(in: .whitespaces), radix: 8) }
        switch flags.map({ $0 & 3 }) {
        case 0?: access = .readOnly
        case 1?: access = .writeOnly
        case 2?: access = .readWrite
        default: access = nil
        }
    }

    var typeName: String {
        switch type {
        case .regular?: return "regular file"
        case .directory?: return "directory"
        case .characterSpecial?: return "character device"
        case .blockSpecial?: return "block device"
        case .fifo?: return "pipe"
        case .socket?: return "socket"
        case .symbolicLink?: return "symbolic link"
        default: return "descriptor"
        }
    }

    var description: String {
        var parts = [typeName + (target.map { " " + $0 } ?? "")]
        if let size { parts.append("\(size) bytes") }
        if let access { parts.append("opened \(access.rawValue)") }
        return parts.joined(separator: ", ")
    }
}
