import Glibc

/// The events `poll(2)` waits for and reports (`POLL*`).
public struct PollEvents: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// `POLLIN`: data to read, a connection to accept, or end-of-file.
    public static let readable = PollEvents(rawValue: Int16(POLLIN))
    /// `POLLPRI`: urgent (out-of-band) data.
    public static let priority = PollEvents(rawValue: Int16(POLLPRI))
    /// `POLLOUT`: room to write, or a non-blocking connect finished.
    public static let writable = PollEvents(rawValue: Int16(POLLOUT))
    /// `POLLRDHUP` (Linux): the peer shut down its writing side.
    public static let readHangUp = PollEvents(rawValue: 0x2000)
    /// `POLLERR` (reported only): an error is pending (read it with `SO_ERROR`).
    public static let error = PollEvents(rawValue: Int16(POLLERR))
    /// `POLLHUP` (reported only): both directions are shut down, or the peer is gone.
    public static let hangUp = PollEvents(rawValue: Int16(POLLHUP))
    /// `POLLNVAL` (reported only): the descriptor is not open.
    public static let invalid = PollEvents(rawValue: Int16(POLLNVAL))

    public var description: String {
        let names: [(PollEvents, String)] = [
            (.readable, "POLLIN"), (.priority, "POLLPRI"), (.writable, "POLLOUT"), (.readHangUp, "POLLRDHUP"),
            (.error, "POLLERR"), (.hangUp, "POLLHUP"), (.invalid, "POLLNVAL"),
        ]
        let parts = names.filter { contains($0.0) }.map(\.1)
        return parts.isEmpty ? "[]" : parts.joined(separator: "|")
    }
}
