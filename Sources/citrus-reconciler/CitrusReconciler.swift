import ArgumentParser
import BuildVersion
import Foundation

struct CitrusReconciler: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "citrus-reconciler",
        abstract: "Makes DigitalOcean droplets match the rows of the Postgres table `servers`.",
        discussion: """
            Exit status: 0 after a clean stop; 78 for bad configuration, including unknown flags \
            (one line says what to fix); 1 otherwise.
            """,
        version: BuildVersion.current,
        subcommands: [Run.self, Migrate.self, Plan.self, Status.self, Events.self]
    )
}

@main
enum Main {
    /// Like `CitrusReconciler.main()`, except that a command line that does not parse is bad
    /// configuration too: exit 78 (which the unit does not restart), not the parser's usual 64.
    static func main() async {
        do {
            var command = try CitrusReconciler.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            guard CitrusReconciler.exitCode(for: error) == .validationFailure else {
                CitrusReconciler.exit(withError: error)
            }
            let message =
                CitrusReconciler.message(for: error).split(separator: "\n").first.map(String.init)
                ?? "invalid command line"
            FileHandle.standardError.write(
                Data("citrus-reconciler: configuration error: \(message) (see --help)\n".utf8)
            )
            CitrusReconciler.exit(withError: ConfigurationError.exitCode)
        }
    }
}
