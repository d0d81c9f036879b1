import ArgumentParser
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Bad configuration ends a program with one line on stderr saying what to fix and exit 78
/// (EX_CONFIG), which the units' `RestartPreventExitStatus=78` keeps systemd from restarting in a
/// loop.
public enum ConfigurationExit {
    /// 78, EX_CONFIG.
    public static let code = ExitCode(78)

    /// Writes `<program>: configuration error: <message>` as one line on stderr (whatever the
    /// message quoted, a server's words or a path, its line breaks become spaces) and returns the
    /// exit code to throw.
    public static func report(_ message: String, program: String) -> ExitCode {
        StandardStreams.writeError(line(message, program: program) + "\n")
        return code
    }

    /// The line ``report(_:program:)`` writes, without its newline.
    public static func line(_ message: String, program: String) -> String {
        "\(program): configuration error: " + message.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

extension ParsableCommand {
    /// Like `main()`, except that a command line that does not parse is bad configuration too:
    /// exit 78 with one line (``ConfigurationExit``), not the parser's usual 64. Call it from
    /// `@main`'s `main()` on the root command.
    public static func mainExitingOnBadConfiguration() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            guard exitCode(for: error) == .validationFailure else {
                exit(withError: error)
            }
            let message = message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid command line"
            let program = configuration.commandName ?? String(describing: Self.self)
            exit(withError: ConfigurationExit.report("\(message) (see --help)", program: program))
        }
    }
}
