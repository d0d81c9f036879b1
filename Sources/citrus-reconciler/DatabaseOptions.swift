import ArgumentParser
import CommandLineSupport
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Postgres

struct DatabaseOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Postgres connection: a libpq conninfo string or URI (env CITRUS_DATABASE_URL). Unset: libpq's defaults and PG* variables, .pgpass and service files apply.",
            valueName: "conninfo"
        )
    )
    var databaseURL: String?

    func connectionString(environment: [String: String]) -> String? {
        databaseURL ?? environment["CITRUS_DATABASE_URL"]
    }

    /// One connection for a one-shot command. A malformed connection string is bad configuration
    /// (exit 78); an unreachable database is an ordinary failure (exit 1).
    func connect(command: String, environment: [String: String]) async throws -> PostgresConnection {
        do {
            return try await PostgresConnection.connect(connectionString(environment: environment))
        } catch  where error.code == .invalidConnectionString {
            throw ConfigurationError("--database-url: \(error.message)").report(command: command)
        } catch {
            StandardStreams.writeError("citrus-reconciler \(command): cannot reach the database: \(error)\n")
            throw ExitCode.failure
        }
    }
}
