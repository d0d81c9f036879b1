import Logging
import Postgres
import ServerStore
import ServiceLifecycle
import Timekeeping

/// Start-up: wait for the database, and make sure the schema is current before the loop may
/// touch a row.
///
/// A database that is down, starting or unreachable is waited for, with backoff, for as long as
/// it takes (``Hooks/waiting`` lets systemd extend its start timeout meanwhile). A failure no wait
/// can cure ends start-up at once with a ``StartupError``: a refused role, a missing privilege, a
/// schema that is behind without leave to migrate it. The service returns when the schema is
/// current, or early on graceful shutdown or cancellation.
public struct DatabaseStartup: Service {
    /// What start-up tells the outside world (systemd's notify socket, in the daemon).
    public struct Hooks: Sendable {
        /// The database cannot be used yet (`error`); the next try is in `retryIn`.
        public var waiting: @Sendable (_ error: any Error, _ retryIn: Duration) -> Void
        /// `count` migrations are about to be applied.
        public var migrating: @Sendable (_ count: Int) -> Void
        /// Start-up is alive (before every attempt), for the watchdog.
        public var progress: @Sendable () -> Void

        public init(
            waiting: @escaping @Sendable (_ error: any Error, _ retryIn: Duration) -> Void = { _, _ in },
            migrating: @escaping @Sendable (_ count: Int) -> Void = { _ in },
            progress: @escaping @Sendable () -> Void = {}
        ) {
            self.waiting = waiting
            self.migrating = migrating
            self.progress = progress
        }
    }

    /// How attempts are spaced while the database is not there.
    public static let backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(15))

    private let attempt: @Sendable (Hooks) async throws -> Void
    private let hooks: Hooks
    private let clock: any DaemonClock
    private let jitter: @Sendable () -> Double
    private let logger: Logger

    /// Start-up against the database at `connectionString` (nil: libpq's environment).
    /// - Parameter applyMigrations: apply pending migrations (`--migrate`) instead of refusing to run.
    public init(
        connectionString: String?,
        applyMigrations: Bool,
        hooks: Hooks = Hooks(),
        clock: any DaemonClock = SystemClock(),
        jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        logger: Logger
    ) {
        self.init(
            hooks: hooks,
            clock: clock,
            jitter: jitter,
            logger: logger,
            attempt: { hooks in
                let connection = try await PostgresConnection.connect(connectionString, logger: logger)
                do {
                    try await Self.bringSchemaUpToDate(
                        on: connection,
                        applyMigrations: applyMigrations,
                        hooks: hooks,
                        logger: logger
                    )
                    await connection.close()
                } catch {
                    await connection.close()
                    throw error
                }
            }
        )
    }

    /// Start-up whose one attempt is `attempt` (tests: a database that answers as they say).
    init(
        hooks: Hooks,
        clock: any DaemonClock,
        jitter: @escaping @Sendable () -> Double,
        logger: Logger,
        attempt: @escaping @Sendable (Hooks) async throws -> Void
    ) {
        self.attempt = attempt
        self.hooks = hooks
        self.clock = clock
        self.jitter = jitter
        self.logger = logger
    }

    public func run() async throws {
        var failures = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            hooks.progress()
            do {
                try await attempt(hooks)
                return
            } catch let error as StartupError {
                throw error
            } catch {
                if let error = error as? PostgresError, let problem = Self.configurationProblem(error) { throw problem }
                failures += 1
                let delay = Self.backoff.delay(failures: failures, jitter: jitter())
                hooks.waiting(error, delay)
                logger.warning("database not ready; retrying in \(DurationText.format(delay)): \(error)")
                // Shutdown or cancellation: the loop must not start.
                guard await clock.sleepUnlessStopping(for: delay) else { return }
            }
        }
    }

    /// Failures no wait can cure: the server refused the role, or the role lacks a privilege.
    /// Each is a configuration error (exit 78, which the unit does not restart), not "database not
    /// ready" forever. Nil for everything worth retrying.
    public static func configurationProblem(_ error: PostgresError) -> StartupError? {
        if error.isAuthenticationFailure {
            return StartupError(
                .authenticationFailed,
                "the database refused to let this role in (\(error.message)\(error.sqlState.map { ", SQLSTATE \($0)" } ?? "")); check the role in --database-url, its password (.pgpass, PGPASSFILE) and pg_hba.conf"
            )
        }
        if error.isInsufficientPrivilege {
            return StartupError(
                .insufficientPrivilege,
                "the database role lacks a privilege it needs (\(error.message), SQLSTATE 42501); grant it as in deploy/database-role.sql"
            )
        }
        return nil
    }

    private static func bringSchemaUpToDate(
        on connection: PostgresConnection,
        applyMigrations: Bool,
        hooks: Hooks,
        logger: Logger
    ) async throws {
        let migrator = Migrator()
        let pending = try await migrator.pendingMigrations(on: connection)
        guard !pending.isEmpty else { return }
        guard applyMigrations else {
            throw StartupError(
                .schemaBehind,
                "the database schema is behind (\(pending.count) migration\(pending.count == 1 ? "" : "s") pending); run `citrus-reconciler migrate` or start with --migrate"
            )
        }
        hooks.migrating(pending.count)
        let applied: [AppliedMigration]
        do {
            applied = try await migrator.migrate(on: connection)
        } catch let error as PostgresError where error.isInsufficientPrivilege {
            throw StartupError(
                .migrationNeedsOwner,
                "run --migrate needs the tables' owner, and this role may not change the schema (\(error.message), SQLSTATE 42501); run `citrus-reconciler migrate` as the owner of the servers table (see deploy/database-role.sql), then start without --migrate"
            )
        }
        for migration in applied {
            logger.notice("applied migration \(migration)")
        }
    }
}

/// Start-up met a problem no wait can cure; its description says what to fix (and holds no
/// secret: the database's own words and the SQLSTATE, never the connection string).
public struct StartupError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The server refused the role (wrong password, no pg_hba.conf entry, no such role).
        public static let authenticationFailed = Code("authenticationFailed")
        /// The role lacks a privilege the daemon needs (SQLSTATE 42501).
        public static let insufficientPrivilege = Code("insufficientPrivilege")
        /// Migrations are pending and start-up was not allowed to apply them.
        public static let schemaBehind = Code("schemaBehind")
        /// `--migrate` was given to a role that may not change the schema.
        public static let migrationNeedsOwner = Code("migrationNeedsOwner")

        public let description: String
        private init(_ description: String) { self.description = description }
    }

    public var code: Code
    public var description: String

    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
