import Foundation
import Postgres

/// One step of the schema. Steps only add (CREATE … IF NOT EXISTS, ADD COLUMN IF NOT EXISTS,
/// SET DEFAULT): the platform's original `servers` table and its rows survive every step.
public struct Migration: Sendable, Hashable, CustomStringConvertible {
    public var version: Int
    public var name: String
    /// One statement each: libpq's extended protocol runs a single statement per call.
    let statements: [String]

    init(version: Int, name: String, _ statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }

    public var description: String { "\(version) \(name)" }
}

/// Applies the schema's migrations in order, each recorded in `schema_migrations`.
///
/// Everything happens in one transaction behind a transaction-level advisory lock, so concurrent
/// `migrate` runs are safe: the second waits for the first, then finds nothing to apply.
public struct Migrator: Sendable {
    /// Serialises migrations across sessions ("citrusmg").
    static let lockKey: Int64 = 0x6369_7472_7573_6D67

    public let migrations: [Migration]

    public init(migrations: [Migration] = Migrator.all) {
        self.migrations = migrations
    }

    /// Applies what is missing; returns what it applied, in order (empty when the schema is current).
    @discardableResult
    public func migrate(on connection: PostgresConnection) async throws -> [Migration] {
        try await connection.transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))")
            try await connection.query(PostgresQuery(unsafeSQL: """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """))
            let applied = try await Self.appliedVersions(on: connection)
            var done: [Migration] = []
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement))
                }
                try await connection.query("INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))")
                done.append(migration)
            }
            return done
        }
    }

    /// The migrations not yet applied (all of them on an empty database).
    public func pendingMigrations(on connection: PostgresConnection) async throws -> [Migration] {
        let exists = try await connection.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present").single().decode(Bool.self, "present")
        guard exists else { return migrations }
        let applied = try await Self.appliedVersions(on: connection)
        return migrations.filter { !applied.contains($0.version) }
    }

    static func appliedVersions(on connection: PostgresConnection) async throws -> Set<Int> {
        Set(try await connection.query("SELECT version FROM schema_migrations").map { try $0.decode(Int.self, "version") })
    }
}

extension Migrator {
    /// The schema, in order. Append only: an applied migration never changes.
    public static let all: [Migration] = [
        Migration(version: 1, name: "platform tables: agents and servers", [
            """
            CREATE TABLE IF NOT EXISTS agents (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS servers (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                name varchar(255) NOT NULL,
                digital_ocean_id varchar(255),
                region varchar(50) NOT NULL,
                size varchar(50) NOT NULL,
                ip_address varchar(45),
                status varchar(50) NOT NULL DEFAULT 'creating',
                agent_id uuid REFERENCES agents(id),
                created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
                updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
            )
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_servers_status ON servers(status)
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_servers_digital_ocean_id ON servers(digital_ocean_id)
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_servers_agent_id ON servers(agent_id)
            """,
        ]),
        Migration(version: 2, name: "servers: the daemon's columns and the standard droplet's defaults", [
            """
            ALTER TABLE servers
                ADD COLUMN IF NOT EXISTS image varchar(100) NOT NULL DEFAULT 'ubuntu-22-04-x64',
                ADD COLUMN IF NOT EXISTS delete_requested_at timestamptz,
                ADD COLUMN IF NOT EXISTS ipv6_address varchar(64),
                ADD COLUMN IF NOT EXISTS last_error text,
                ADD COLUMN IF NOT EXISTS create_attempted_at timestamptz,
                ADD COLUMN IF NOT EXISTS create_attempts integer NOT NULL DEFAULT 0,
                ADD COLUMN IF NOT EXISTS transient_failures integer NOT NULL DEFAULT 0,
                ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz,
                ADD COLUMN IF NOT EXISTS revision bigint NOT NULL DEFAULT 0
            """,
            """
            ALTER TABLE servers ALTER COLUMN region SET DEFAULT 'sfo3'
            """,
            """
            ALTER TABLE servers ALTER COLUMN size SET DEFAULT 's-1vcpu-512mb-10gb'
            """,
        ]),
        Migration(version: 3, name: "servers: revision bumped by every update (compare-and-set)", [
            """
            CREATE OR REPLACE FUNCTION citrus_servers_bump_revision() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                NEW.revision := OLD.revision + 1;
                RETURN NEW;
            END
            $$
            """,
            """
            CREATE OR REPLACE TRIGGER citrus_servers_revision
                BEFORE UPDATE ON servers
                FOR EACH ROW EXECUTE FUNCTION citrus_servers_bump_revision()
            """,
        ]),
        Migration(version: 4, name: "servers: NOTIFY citrus_servers on inserts, deletes and changes of user columns", [
            """
            CREATE OR REPLACE FUNCTION citrus_servers_notify() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    PERFORM pg_notify('citrus_servers', OLD.id::text);
                    RETURN OLD;
                END IF;
                PERFORM pg_notify('citrus_servers', NEW.id::text);
                RETURN NEW;
            END
            $$
            """,
            """
            CREATE OR REPLACE TRIGGER citrus_servers_notify_insert_delete
                AFTER INSERT OR DELETE ON servers
                FOR EACH ROW EXECUTE FUNCTION citrus_servers_notify()
            """,
            """
            -- Only the user's columns: the daemon's own writes must not wake the daemon.
            CREATE OR REPLACE TRIGGER citrus_servers_notify_update
                AFTER UPDATE OF name, region, size, image, delete_requested_at ON servers
                FOR EACH ROW
                WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.region IS DISTINCT FROM NEW.region
                      OR OLD.size IS DISTINCT FROM NEW.size OR OLD.image IS DISTINCT FROM NEW.image
                      OR OLD.delete_requested_at IS DISTINCT FROM NEW.delete_requested_at)
                EXECUTE FUNCTION citrus_servers_notify()
            """,
        ]),
        Migration(version: 5, name: "server_events: the durable audit trail", [
            """
            CREATE TABLE IF NOT EXISTS server_events (
                id bigserial PRIMARY KEY,
                server_id uuid,
                kind text NOT NULL,
                message text NOT NULL,
                droplet_id bigint,
                from_status varchar(50),
                to_status varchar(50),
                do_request_id text,
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE INDEX IF NOT EXISTS idx_server_events_server ON server_events(server_id, id)
            """,
        ]),
    ]
}
