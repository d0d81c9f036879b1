import ArgumentParser
import CProcessHardening
import DigitalOcean
import Foundation
import Logging
import Postgres
import ReconcileCore
import Reconciler
import ServerStore
import ServiceLifecycle
import Synchronization
import SystemdSupport
import Timekeeping

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: make DigitalOcean match the servers table until stopped (SIGTERM or SIGINT)."
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var digitalOcean: DigitalOceanOptions
    @OptionGroup var loop: LoopOptions
    @OptionGroup var agents: AgentOptions
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var metrics: MetricsOptions

    @Flag(help: "Apply pending schema migrations at start-up instead of refusing to run.")
    var migrate = false

    func run() async throws {
        ReloadService.ignoreHangupUntilListening()
        let environment = ProcessInfo.processInfo.environment
        let settings:
            (
                url: URL, token: DigitalOceanToken, rates: RateBudget.Configuration, loop: ReconcilerConfiguration,
                level: Logger.Level, format: LogFormat, metrics: MetricsAddress?
            )
        do {
            settings = (
                try digitalOcean.baseURL(environment: environment),
                try digitalOcean.token(environment: environment),
                try digitalOcean.rateBudget(environment: environment),
                try { () throws(ConfigurationError) -> ReconcilerConfiguration in
                    var configuration = try loop.configuration(environment: environment)
                    configuration.enrollment = try agents.enrollment(environment: environment)
                    return configuration
                }(),
                try logging.level(),
                try logging.format(),
                try metrics.address(environment: environment)
            )
        } catch {
            throw error.report(command: "run")
        }

        // The level can change on reload: --log-level if given (then fixed), else CITRUS_LOG_LEVEL.
        let levelFromFlag = Reloader.logLevelFlagGiven() ? settings.level : nil
        let levels: LogLevelSwitch
        switch Reloader.startLevel(flag: levelFromFlag, variable: environment["CITRUS_LOG_LEVEL"]) {
        case .fixed(let level), .level(let level, _): levels = LogLevelSwitch(level)
        case .invalid(let text, _):
            throw ConfigurationError(
                "CITRUS_LOG_LEVEL \"\(text)\" is not one of trace, debug, info, notice, warning, error, critical"
            )
            .report(command: "run")
        }
        bootstrapLogging(format: settings.format, identifier: "citrus-reconciler", level: levels)
        let logger = Logger(label: "citrus-reconciler")
        // The token and agents' keys pass through this process's memory: no core dump carries them.
        if citrus_disable_core_dumps() != 0 {
            logger.warning("could not disable core dumps (errno \(errno)); a crash could write secrets to disk")
        }
        let notifier = SystemdNotifier()
        let clock = SystemClock()
        let watchdog = SystemdWatchdog(notifier: notifier, clock: clock, logger: logger)
        let databaseURL = database.connectionString(environment: environment)

        let budget = RateBudget(configuration: settings.rates, clock: clock)
        let metricsService = settings.metrics.map {
            MetricsService.bootstrap(address: $0, budget: budget, logger: logger)
        }
        var clientConfiguration = DigitalOceanClient.Configuration(
            token: settings.token,
            baseURL: settings.url.absoluteString
        )
        // The create's deadline is part of its settle bound: one number for both.
        clientConfiguration.requestTimeout = settings.loop.decision.createRequestTimeout
        let client = DigitalOceanClient(
            configuration: clientConfiguration,
            rateBudget: budget,
            clock: clock,
            logger: logger
        )
        let leadership = Leadership.postgres(connectionString: databaseURL, clock: clock, logger: logger)
        let wake = WakeSignal(clock: clock)
        let reconciler = FleetReconciler(
            repository: PostgresServerRepository(leadership: leadership),
            cloud: DigitalOceanFleet(client: client, clock: clock),
            configuration: settings.loop,
            logger: logger,
            clock: clock,
            mayAct: { leadership.mayAct },
            leads: { leadership.isLeading },
            progress: { watchdog.progress() },
            isThrottled: {
                let snapshot = await budget.snapshot
                return snapshot.waitingMutations + snapshot.waitingReads > 0
                    || snapshot.pausedUntil.map { $0 > clock.now() } ?? false
            }
        )
        let readiness = Readiness(notifier: notifier)
        let reload = ReloadService(
            reloader: Reloader(
                readToken: { [digitalOcean] environment throws(ConfigurationError) in
                    try digitalOcean.token(environment: environment)
                },
                client: client,
                levels: levels,
                levelFromFlag: levelFromFlag,
                environment: environment,
                logger: logger
            ),
            notifier: notifier,
            isReady: { readiness.isReady }
        )
        let reconcile = ReconcileService(
            reconciler: reconciler,
            leadership: leadership,
            wake: wake,
            configuration: settings.loop,
            hooks: ReconcileHooks(
                passCompleted: { summary in readiness.settled(status: "leader: \(summary.oneLine)") },
                passFailed: { error in notifier.status("degraded: \(error)") },
                progress: { watchdog.progress() },
                stopping: {
                    notifier.stopping()
                    notifier.status("stopping: finishing requests in flight")
                },
                standingBy: { readiness.settled(status: "standby: another replica leads") }
            ),
            heartbeat: (watchdog.interval ?? .seconds(10)) / 4,
            renewEvery: leadership.configuration.renewEvery,
            clock: clock,
            logger: logger
        )
        let transportCheck = DatabaseTransportCheck(connectionString: databaseURL, logger: logger)
        let startup = Startup(
            connectionString: databaseURL,
            applyMigrations: migrate,
            notifier: notifier,
            clock: clock,
            progress: { watchdog.progress() },
            logger: logger
        )

        logger.notice(
            "citrus-reconciler starting",
            metadata: [
                "digitalocean_url": "\(settings.url.absoluteString)",
                "resync_interval": "\(DurationText.format(settings.loop.resyncInterval))",
                "settle_period": "\(DurationText.format(settings.loop.decision.settlePeriod))",
                "agent_bootstrap":
                    "\(settings.loop.enrollment.map { "on, hub \($0.engineURL), timeout \(DurationText.format($0.policy.timeout)), stale after \(DurationText.format($0.policy.staleAfter))" } ?? "off")",
            ]
        )
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(
                        service: SequentialService(startup, SequentialService(transportCheck, reconcile)),
                        successTerminationBehavior: .gracefullyShutdownGroup
                    ),
                    .init(service: NotificationService(connectionString: databaseURL, wake: wake, logger: logger)),
                    .init(service: watchdog),
                    .init(service: reload),
                ] + (metricsService.map { [.init(service: $0)] } ?? []),
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch let error as ConfigurationError {
            try? await client.shutdown()
            throw error.report(command: "run")
        } catch {
            logger.critical("citrus-reconciler stopped on an error: \(error)")
            try? await client.shutdown()
            throw ExitCode.failure
        }
        try? await client.shutdown()
        logger.notice("citrus-reconciler stopped")
    }
}

/// READY=1 once, the first time the replica is settled (leader after its first full pass, or
/// standby); STATUS= every time.
final class Readiness: Sendable {
    private let notifier: SystemdNotifier
    private let sent = Mutex(false)

    init(notifier: SystemdNotifier) {
        self.notifier = notifier
    }

    /// Whether READY=1 has been sent.
    var isReady: Bool { sent.withLock { $0 } }

    func settled(status: String) {
        let first = sent.withLock { sent in
            defer { sent = true }
            return !sent
        }
        if first { notifier.ready(status: status) } else { notifier.status(status) }
    }
}

/// Runs one service after another (start-up, then the loop) as a single service.
struct SequentialService: Service {
    let first: any Service
    let second: any Service

    init(_ first: any Service, _ second: any Service) {
        self.first = first
        self.second = second
    }

    func run() async throws {
        try await first.run()
        guard !Task.isShuttingDownGracefully else { return }
        try await second.run()
    }
}

/// Start-up: wait for the database (telling systemd to extend the start timeout meanwhile), and
/// make sure the schema is current before the loop may touch a row.
struct Startup: Service {
    let connectionString: String?
    let applyMigrations: Bool
    let notifier: SystemdNotifier
    let clock: any DaemonClock
    let progress: @Sendable () -> Void
    let logger: Logger

    func run() async throws {
        var attempt = 0
        while !Task.isShuttingDownGracefully {
            progress()
            do {
                let connection = try await PostgresConnection.connect(connectionString, logger: logger)
                do {
                    try await checkSchema(on: connection)
                    await connection.close()
                } catch {
                    await connection.close()
                    throw error
                }
                return
            } catch let error as ConfigurationError {
                throw error
            } catch {
                if let error = error as? PostgresError, let problem = Self.configurationProblem(error) { throw problem }
                attempt += 1
                let delay = Backoff(initial: .milliseconds(500), maximum: .seconds(15)).delay(failures: attempt)
                notifier.extendTimeout(delay + .seconds(30))
                notifier.status("starting: waiting for the database (\(error))")
                logger.warning("database not ready; retrying in \(DurationText.format(delay)): \(error)")
                try? await clock.sleep(for: delay)
            }
        }
    }

    private func checkSchema(on connection: PostgresConnection) async throws {
        let migrator = Migrator()
        let pending = try await migrator.pendingMigrations(on: connection)
        guard !pending.isEmpty else { return }
        guard applyMigrations else {
            throw ConfigurationError(
                "the database schema is behind (\(pending.count) migration\(pending.count == 1 ? "" : "s") pending); run `citrus-reconciler migrate` or start with --migrate"
            )
        }
        notifier.extendTimeout(.seconds(120))
        notifier.status("starting: applying \(pending.count) schema migrations")
        let applied: [AppliedMigration]
        do {
            applied = try await migrator.migrate(on: connection)
        } catch let error as PostgresError where error.isInsufficientPrivilege {
            throw ConfigurationError(
                "run --migrate needs the tables' owner, and this role may not change the schema (\(error.message), SQLSTATE 42501); run `citrus-reconciler migrate` as the owner of the servers table (see deploy/database-role.sql), then start without --migrate"
            )
        }
        for migration in applied {
            logger.notice("applied migration \(migration)")
        }
    }

    /// Failures no wait can cure: the server refused the role, or the role lacks a privilege.
    /// Each is a configuration error (exit 78, which the unit does not restart), not "database not
    /// ready" forever. Nil for everything worth retrying.
    static func configurationProblem(_ error: PostgresError) -> ConfigurationError? {
        if error.isAuthenticationFailure {
            return ConfigurationError(
                "the database refused to let this role in (\(error.message)\(error.sqlState.map { ", SQLSTATE \($0)" } ?? "")); check the role in --database-url, its password (.pgpass, PGPASSFILE) and pg_hba.conf"
            )
        }
        if error.isInsufficientPrivilege {
            return ConfigurationError(
                "the database role lacks a privilege it needs (\(error.message), SQLSTATE 42501); grant it as in deploy/database-role.sql"
            )
        }
        return nil
    }
}
