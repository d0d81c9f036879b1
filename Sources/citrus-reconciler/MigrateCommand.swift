import ArgumentParser
import CommandLineSupport
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Postgres
import ServerStore

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the schema migrations the database lacks, print them, and exit.",
        discussion:
            "Safe to run twice (the second run applies nothing) and concurrently (runs are serialised in the database)."
    )

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let connection = try await database.connect(
            command: "migrate",
            environment: ProcessInfo.processInfo.environment
        )
        do {
            let applied = try await Migrator().migrate(on: connection)
            if applied.isEmpty {
                print("schema is current; nothing to apply")
            } else {
                for migration in applied { print("applied \(migration)") }
            }
        } catch {
            await connection.close()
            StandardStreams.writeError("citrus-reconciler migrate: \(error)\n")
            throw ExitCode.failure
        }
        await connection.close()
    }
}
