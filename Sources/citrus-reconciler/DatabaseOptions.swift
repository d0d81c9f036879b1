import ArgumentParser
import Foundation

/// Where the database is. Shared by every subcommand that talks to Postgres.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .customLong("database-url"),
        help: ArgumentHelp(
            "A libpq connection string or postgres:// URI (env: CITRUS_DATABASE_URL). When unset, libpq's defaults and PG* variables apply.",
            valueName: "url"
        )
    )
    var databaseURL: String?

    /// The flag, else `CITRUS_DATABASE_URL`, else nil (libpq's own defaults).
    var resolvedDatabaseURL: String? {
        if let databaseURL { return databaseURL }
        if let fromEnvironment = ProcessInfo.processInfo.environment["CITRUS_DATABASE_URL"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return nil
    }
}
