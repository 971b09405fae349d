import ArgumentParser
import Foundation
import Sockets
import SystemPackage
import Synchronization

/// `sock`: a netcat-style multi-tool built on the Sockets library.
///
/// `listen`, `scan` and `bench` are `AsyncParsableCommand`s (`listen -k`, `scan` and `bench`
/// run on the SocketsAsync event loop); the others are plain `ParsableCommand`s.
@main
struct Sock: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sock",
        abstract: "A sockets multi-tool: netcat, ping, port scan, name lookup, interfaces and benchmarks.",
        discussion: """
            Every subcommand runs on the Sockets library. Errors are printed as `sock: ` and the \
            library's message; the exit status is 0 on success, 1 for a runtime failure and 64 \
            for a usage error. Start with `sock tour`.
            """,
        subcommands: [
            Connect.self, Listen.self, Resolve.self, Ping.self, Scan.self, Ifaces.self, Bench.self, Tour.self,
        ]
    )

    /// A synchronous entry point on purpose: the signal mask set first thing here must stay on
    /// the main thread (an async `main` hands the main thread to the runtime, which unblocks
    /// every signal on it, so SIGTERM would kill the process before the clean-up ran).
    static func main() {
        // Sockets send with MSG_NOSIGNAL, but standard output may be a pipe whose reader left:
        // that must be an EPIPE error, not death by SIGPIPE.
        ProcessSupport.ignoreBrokenPipeSignal()
        // `listen -k`, `scan` and `bench` hold a descriptor per connection: use the whole hard
        // limit, not the 1,024 many systems start with. If that fails, the old limit still works.
        _ = try? ProcessSupport.raiseDescriptorLimit()
        Console.ensureStandardDescriptors()
        Interrupts.install()
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exitAfterParsing(error)
        }
        do {
            if let asyncCommand = command as? any AsyncParsableCommand {
                try runAndWait(asyncCommand)
            } else {
                try command.run()
            }
        } catch {
            fail(error)
        }
    }

    /// Runs an async command in a task and blocks the main thread until it ends.
    private static func runAndWait(_ command: any AsyncParsableCommand) throws {
        let parsed = ParsedCommand(command)
        let outcome = LockedValue<Result<Void, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            var command = parsed.command
            do {
                try await command.run()
                outcome.withLock { $0 = .success(()) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        try outcome.withLock { $0 }?.get()
    }

    /// Moves a parsed command into the task that runs it: the value is only command-line
    /// arguments, and the main thread does not touch it again.
    private struct ParsedCommand: @unchecked Sendable {
        let command: any AsyncParsableCommand
        init(_ command: any AsyncParsableCommand) { self.command = command }
    }

    /// Prints help (status 0) or a usage error (`sock: ...`, status 64) and exits.
    static func exitAfterParsing(_ error: any Error) -> Never {
        let code = exitCode(for: error)
        var message = fullMessage(for: error)
        if code == .success {
            try? Console.out(message.hasSuffix("\n") || message.isEmpty ? message : message + "\n")
            Self.exit(withError: ExitCode.success)
        }
        if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
        Console.error("sock: " + message)
        Self.exit(withError: ExitCode(code.rawValue))
    }

    /// Prints a runtime or usage failure as `sock: MESSAGE` and exits with its status.
    static func fail(_ error: any Error) -> Never {
        // ArgumentParser's own errors (help requests, validation) keep their handling.
        guard error is ToolError || error is SocketError || error is Errno else { exitAfterParsing(error) }
        let failure = ToolError(error)
        Console.error("sock: " + failure.message)
        Self.exit(withError: ExitCode(failure.status))
    }
}
