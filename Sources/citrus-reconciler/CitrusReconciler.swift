import ArgumentParser
import BuildVersion
import CommandLineSupport
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

struct CitrusReconciler: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "citrus-reconciler",
        abstract: "Makes DigitalOcean droplets match the rows of the Postgres table `servers`.",
        discussion: """
            Exit status: 0 after a clean stop; 78 for bad configuration, including unknown flags \
            (one line says what to fix); 1 otherwise.
            """,
        version: BuildVersion.current,
        subcommands: [Run.self, Migrate.self, Plan.self, Status.self, Events.self, Retry.self, Destroys.self]
    )
}

@main
enum Main {
    static func main() async { await CitrusReconciler.mainExitingOnBadConfiguration() }
}
