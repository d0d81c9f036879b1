import ArgumentParser

@main
struct CitrusReconciler: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "citrus-reconciler",
        abstract: "Makes DigitalOcean droplets match the rows of the Postgres table `servers`.",
        discussion: """
            Exit status: 0 after a clean stop; 78 for bad configuration (one line says what to fix); \
            1 otherwise.
            """,
        version: "0.1.0",
        subcommands: [Run.self, Migrate.self, Plan.self, Status.self]
    )
}
