import Foundation
import Glibc
import Testing

/// What `sock listen` exposes: loopback only unless told otherwise, and Unix socket files it
/// never removes unless they are its own sockets.
@Suite(.noDescriptorLeaks())
struct ExposureTests {
    /// The local addresses of listening (TCP) or bound (UDP) sockets on `port`, read from the
    /// kernel's own tables, independent of what the tool prints.
    func kernelAddresses(_ table: String, port: Int) throws -> [String] {
        let text = try String(contentsOfFile: "/proc/net/\(table)", encoding: .utf8)
        let wanted = String(format: ":%04X", port)
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let local = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.map(String.init)
            return local.flatMap { $0.hasSuffix(wanted) ? String($0.dropLast(wanted.count)) : nil }
        }
    }

    @Test func listenBindsLoopbackUnlessToldOtherwise() throws {
        let cases: [(arguments: [String], table: String, address: String)] = [
            (["listen", "0"], "tcp", "0100007F"),
            (["listen", "-u", "0"], "udp", "0100007F"),
            (["listen", "-6", "0"], "tcp6", "00000000000000000000000001000000"),
            (["listen", "-k", "--echo", "0"], "tcp", "0100007F"),
            (["listen", "0.0.0.0", "0"], "tcp", "00000000"),
        ]
        for (arguments, table, address) in cases {
            let server = try sock(arguments: arguments, input: .pipe)
            let port = try listeningPort(server)
            #expect(try kernelAddresses(table, port: port) == [address], "sock \(arguments.joined(separator: " "))")
            _ = server.stop()
        }
    }

    @Test func unixListenerNeverRemovesASymbolicLinkOrWhatItPointsTo() throws {
        let target = temporaryPath("target")
        let link = temporaryPath("link.sock")
        defer { [target, link].forEach(removeFile) }
        try writeFile(target, Array("precious".utf8))
        #expect(symlink(target, link) == 0)
        let refused = try sock("listen", "-U", link)
        #expect(refused.wait() == 1)
        #expect(refused.errors.text.hasPrefix("sock: bind(\(link)): the path exists and is not a socket"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
        #expect(try readFile(target) == Array("precious".utf8))

        // A link to a stale socket is not the listener's to remove either.
        removeFile(target)
        let stale = try python("""
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()
            """, [target])
        #expect(stale.wait() == 0)
        let refusedAgain = try sock("listen", "-U", link)
        #expect(refusedAgain.wait() == 1)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
        #expect(try FileManager.default.attributesOfItem(atPath: target)[.type] as? FileAttributeType == .typeSocket)
    }
}
