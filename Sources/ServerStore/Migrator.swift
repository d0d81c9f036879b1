#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import Postgres

/// A migration this run applied.
public struct AppliedMigration: Sendable, Hashable, CustomStringConvertible {
    public var version: Int
    public var name: String

    public var description: String { "\(version) \(name)" }
}

/// Applies `Migration.all` in order, recording each in `schema_migrations`.
///
/// Everything happens in one transaction that first takes a transaction-level advisory lock, so
/// concurrent runs (several replicas starting at once) queue up: the first applies, the others
/// then find nothing to do. A failing migration rolls the whole run back.
public struct Migrator: Sendable {
    /// The advisory lock key that serializes migrations (ASCII "citrusmg").
    public static let lockKey: Int64 = 0x6369_7472_7573_6D67

    public var migrations: [Migration]
    public var logger: Logger

    public init(
        migrations: [Migration] = Migration.all,
        logger: Logger = Logger(label: "citrus.migrate", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.logger = logger
    }

    /// Applies every migration not yet recorded; returns those it applied (empty when current).
    public func migrate(on connection: PostgresConnection) async throws -> [AppliedMigration] {
        let migrations = self.migrations
        let logger = self.logger
        return try await connection.transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))")
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INT PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                )
                """
            )
            // Read after the lock: under READ COMMITTED this sees what a run before us committed.
            let applied = try await Self.appliedVersions(on: connection)
            var done: [AppliedMigration] = []
            for migration in migrations where !applied.contains(migration.version) {
                logger.info(
                    "applying migration",
                    metadata: ["version": "\(migration.version)", "name": "\(migration.name)"]
                )
                try await connection.runScript(PostgresQuery(unsafeSQL: migration.sql))
                try await connection.query(
                    "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))"
                )
                done.append(AppliedMigration(version: migration.version, name: migration.name))
            }
            return done
        }
    }

    /// The migrations `migrate` would apply; empty when the schema is current.
    public func pendingMigrations(on connection: PostgresConnection) async throws -> [Migration] {
        let exists = try await connection.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
            .single().decode(Bool.self, "present")
        let applied = exists ? try await Self.appliedVersions(on: connection) : []
        return migrations.filter { !applied.contains($0.version) }
    }

    private static func appliedVersions(on connection: PostgresConnection) async throws -> Set<Int> {
        let rows = try await connection.query("SELECT version FROM schema_migrations")
        return Set(try rows.map { try $0.decode(Int.self, "version") })
    }
}
