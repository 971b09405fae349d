import ArgumentParser
import Sockets
import SystemPackage

/// A failure to report: its message (printed after `sock: `) and the exit status.
struct ToolError: Error, CustomStringConvertible {
    /// 1: something failed at run time.
    static let runtimeStatus: Int32 = 1
    /// 64 (`EX_USAGE`): the command line was wrong.
    static let usageStatus: Int32 = 64

    let message: String
    let status: Int32

    static func usage(_ message: String) -> ToolError { ToolError(message: message, status: usageStatus) }
    static func runtime(_ message: String) -> ToolError { ToolError(message: message, status: runtimeStatus) }

    init(message: String, status: Int32) {
        self.message = message
        self.status = status
    }

    /// Classifies any error: the library's input checks (a malformed address, a port out of
    /// range, an over-long Unix path) are usage errors; everything else is a runtime failure.
    init(_ error: any Error) {
        switch error {
        case let error as ToolError:
            self = error
        case let error as SocketError:
            if case .invalidArgument = error.reason {
                self = .usage(error.description)
            } else {
                self = .runtime(error.description)
            }
        case let error as ValidationError:
            self = .usage(error.message)
        case let error as Errno:
            self = .runtime(Console.describe(error))
        default:
            self = .runtime(String(describing: error))
        }
    }

    var description: String { message }
}
