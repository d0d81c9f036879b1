import ArgumentParser
import CProcessHardening
import DigitalOcean
import DigitalOceanHTTP
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif
import DigitalOceanAdapter
import Logging
import MetricsEndpoint
import Postgres
import PostgresAdapter
import ReconcileCore
import Reconciler
import ServerStore
import ServiceLifecycle
import SystemdSupport
import Timekeeping
import UnixSignals

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: make DigitalOcean match the servers table until stopped (SIGTERM or SIGINT)."
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var digitalOcean: DigitalOceanOptions
    @OptionGroup var loop: LoopOptions
    @OptionGroup var agents: AgentOptions
    @OptionGroup var droplets: DropletFlags
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var metrics: MetricsOptions

    @Flag(help: "Apply pending schema migrations at start-up instead of refusing to run.")
    var migrate = false

    func run() async throws {
        HangupSignal.ignore()
        let environment = ProcessInfo.processInfo.environment
        let settings:
            (
                url: URL, token: DigitalOceanToken, rates: RateBudget.Configuration, loop: ReconcilerConfiguration,
                level: Logger.Level, format: LogFormat, metrics: MetricsAddress?
            )
        do {
            let rates = try digitalOcean.rateBudget(environment: environment)
            settings = (
                try digitalOcean.baseURL(environment: environment),
                try digitalOcean.token(environment: environment),
                rates,
                try { () throws(ConfigurationError) -> ReconcilerConfiguration in
                    var configuration = try loop.configuration(environment: environment)
                    configuration.enrollment = try agents.enrollment(environment: environment)
                    try droplets.apply(to: &configuration, environment: environment)
                    configuration.requestsPerMinute = rates.perMinute
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
        switch ReloadSources.startLevel(flag: levelFromFlag, variable: environment["CITRUS_LOG_LEVEL"]) {
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
        if citrus_tune_allocator() != 0 {
            logger.notice("glibc refused the allocator settings; memory freed by a pass may stay resident")
        }
        let notifier = SystemdNotifier()
        let clock = SystemClock()
        // Requests to DigitalOcean and the backoffs between them, each with its deadline: the
        // watchdog counts a loop waiting on a slow but answering API as alive (see BoundedWaits).
        let waits = BoundedWaits(clock: clock)
        let watchdog = SystemdWatchdog(notifier: notifier, clock: clock, waits: waits, logger: logger)
        let databaseURL = database.connectionString(environment: environment)

        let budget = RateBudget(configuration: settings.rates, clock: clock)
        let metricsService = settings.metrics.map {
            var service = MetricsService.bootstrap(address: $0, logger: logger) {
                ReconcilerMetrics.refresh()
                await budget.publishMetrics()
            }
            // Unhealthy once the loop has shown no life for as long as systemd's watchdog allows
            // (a minute without one): the loop reports progress at least every half of that.
            let limit = watchdog.interval ?? .seconds(60)
            service.health = {
                let quiet = watchdog.sinceLastSignOfLife()
                guard quiet >= limit else { return nil }
                return
                    "the reconcile loop has made no progress for \(DurationText.format(quiet)) (limit \(DurationText.format(limit)))"
            }
            return service
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
            waits: waits,
            logger: logger
        )
        let leadership = Leadership.postgres(connectionString: databaseURL, clock: clock, logger: logger)
        let readiness = Readiness(notifier: notifier)
        let reloader = Reloader(
            readToken: { [digitalOcean] environment throws(ConfigurationError) in
                try digitalOcean.token(environment: environment)
            },
            client: client,
            levels: levels,
            levelFromFlag: levelFromFlag,
            environment: environment,
            logger: logger
        )
        let reload = ReloadService(
            hangups: await UnixSignalsSequence(trapping: .sighup),
            readiness: readiness,
            reload: { reloader.reload() }
        )
        let daemon = Daemon.assemble(
            repository: PostgresServerRepository(leadership: leadership),
            cloud: DigitalOceanFleet(client: client, clock: clock),
            leadership: leadership,
            configuration: settings.loop,
            clock: clock,
            throttled: { await budget.isHoldingBack(at: clock.now()) },
            hooks: ReconcileHooks(
                passCompleted: { summary in
                    readiness.settled(status: "leader: \(summary.oneLine)")
                    // A pass over a large fleet frees most of what it read: give it back now, not
                    // at the allocator's leisure (the unit's MemoryMax= counts it until then).
                    citrus_release_free_memory()
                },
                passFailed: { error in notifier.status("degraded: \(error)") },
                progress: { watchdog.progress() },
                stopping: {
                    notifier.stopping()
                    notifier.status("stopping: finishing requests in flight")
                },
                standingBy: { readiness.settled(status: "standby: another replica leads") },
                tookLeadership: {
                    guard let session = leadership.leadingSession else { return }
                    await DatabaseDurability.warn(
                        on: session,
                        moment: "on taking leadership",
                        checkingCommit: true,
                        logger: logger
                    )
                }
            ),
            heartbeat: (watchdog.interval ?? .seconds(10)) / 4,
            logger: logger
        )
        let databaseChecks = DatabaseChecks(connectionString: databaseURL, logger: logger)
        let startup = DatabaseStartup(
            connectionString: databaseURL,
            applyMigrations: migrate,
            hooks: DatabaseStartup.Hooks(
                waiting: { error, retryIn in
                    notifier.extendTimeout(retryIn + .seconds(30))
                    notifier.status("starting: waiting for the database (\(error))")
                },
                migrating: { count in
                    notifier.extendTimeout(.seconds(120))
                    notifier.status("starting: applying \(count) schema migrations")
                },
                progress: { watchdog.progress() }
            ),
            clock: clock,
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
        if agents.usesPlaceholderTemplate(environment: environment) {
            logger.warning("\(AgentOptions.placeholderTemplateWarning)")
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(
                        service: SequentialService(startup, SequentialService(databaseChecks, daemon.service)),
                        successTerminationBehavior: .gracefullyShutdownGroup
                    ),
                    .init(
                        service: NotificationService(
                            connectionString: databaseURL,
                            wake: daemon.wake,
                            clock: clock,
                            logger: logger
                        )
                    ),
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
        } catch let error as StartupError {
            try? await client.shutdown()
            throw ConfigurationError(error.description).report(command: "run")
        } catch let error as MetricsEndpointError {
            try? await client.shutdown()
            throw ConfigurationError(error.description).report(command: "run")
        } catch {
            logger.critical("citrus-reconciler stopped on an error: \(error)")
            try? await client.shutdown()
            throw ExitCode.failure
        }
        try? await client.shutdown()
        logger.notice("citrus-reconciler stopped")
    }
}
