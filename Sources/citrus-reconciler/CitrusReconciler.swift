import ArgumentParser

/// The daemon's command line. Each subcommand lives in a file of its own.
@main
struct CitrusReconciler: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "citrus-reconciler",
        abstract: "Makes DigitalOcean droplets match the rows of the Postgres table `servers`.",
        subcommands: [MigrateCommand.self]
    )
}

extension ExitCode {
    /// EX_CONFIG from sysexits.h: the configuration is wrong; systemd does not restart on it.
    static let configurationError = ExitCode(78)
}
