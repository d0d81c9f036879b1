import ArgumentParser
import Foundation
import Postgres
import ServerStore

/// `citrus-reconciler migrate`: apply pending schema migrations, then exit.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending schema migrations, then exit."
    )

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(database.resolvedDatabaseURL)
        } catch {
            Self.fail(error)
            throw error.code == .invalidConnectionString ? ExitCode.configurationError : ExitCode.failure
        }
        let applied: [AppliedMigration]
        do {
            applied = try await Migrator().migrate(on: connection)
        } catch {
            Self.fail(error)
            throw ExitCode.failure
        }
        if applied.isEmpty {
            print("schema is current; nothing to apply")
        } else {
            for migration in applied {
                print("applied migration \(migration.version): \(migration.name)")
            }
        }
    }

    /// One line on stderr; PostgresError descriptions carry no passwords.
    private static func fail(_ error: any Error) {
        FileHandle.standardError.write(Data("citrus-reconciler migrate: \(error)\n".utf8))
    }
}
