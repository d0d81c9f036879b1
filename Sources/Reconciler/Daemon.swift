#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import Timekeeping

/// The daemon's loop, wired from its parts: the reconciler, the service that runs it and the
/// signal that wakes it, on one clock, one configuration and one lease. `citrus-reconciler run`,
/// the simulation and the tests all get theirs from `assemble`, so what they run is wired alike.
public struct Daemon: Sendable {
    /// Observe, decide, act: one pass at a time.
    public let reconciler: FleetReconciler
    /// The loop as a `Service`: run it in a `ServiceGroup`.
    public let service: ReconcileService
    /// Row changes and resync requests for the loop (NOTIFYs, in the daemon).
    public let wake: WakeSignal

    /// - Parameters:
    ///   - repository: where the rows live (the leader's Postgres session, in the daemon).
    ///   - cloud: DigitalOcean as the loop needs it.
    ///   - leadership: the right to act; nil when this replica acts alone (tests, tools).
    ///   - throttled: whether the cloud holds requests back on purpose now (the rate budget): a
    ///     pass waiting on it still counts as progress for the watchdog. Nil: nothing throttles.
    ///   - hooks: what the loop tells the outside world; `hooks.progress` is told of the
    ///     reconciler's progress too.
    ///   - heartbeat: the longest the loop stays silent towards `hooks.progress`.
    public static func assemble(
        repository: any ServerRepository,
        cloud: any DropletCloud,
        leadership: (any LeadershipLease)? = nil,
        configuration: ReconcilerConfiguration = ReconcilerConfiguration(),
        clock: any DaemonClock = SystemClock(),
        jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        throttled: (@Sendable () async -> Bool)? = nil,
        hooks: ReconcileHooks = ReconcileHooks(),
        heartbeat: Duration = .seconds(5),
        logger: Logger
    ) -> Daemon {
        let reconciler = FleetReconciler(
            repository: repository,
            cloud: cloud,
            configuration: configuration,
            logger: logger,
            clock: clock,
            jitter: jitter,
            mayAct: { leadership?.mayAct ?? true },
            leads: { leadership?.isLeading ?? true },
            progress: hooks.progress,
            isThrottled: throttled
        )
        let wake = WakeSignal(clock: clock)
        let service = ReconcileService(
            reconciler: reconciler,
            leadership: leadership,
            wake: wake,
            configuration: configuration,
            hooks: hooks,
            heartbeat: heartbeat,
            clock: clock,
            jitter: jitter,
            logger: logger
        )
        return Daemon(reconciler: reconciler, service: service, wake: wake)
    }
}
