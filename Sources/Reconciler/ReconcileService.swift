#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import ReconcileCore
import ServiceLifecycle
import Timekeeping

/// What the loop tells the outside world (systemd's notify socket, in the daemon).
public struct ReconcileHooks: Sendable {
    /// After every full pass.
    public var passCompleted: @Sendable (PassSummary) -> Void
    /// After a full pass that failed (database or DigitalOcean unreachable).
    public var passFailed: @Sendable (any Error) -> Void
    /// The loop is alive and not stuck; called at least every `heartbeat` (for the watchdog).
    public var progress: @Sendable () -> Void
    /// Graceful shutdown began; in-flight work is finishing.
    public var stopping: @Sendable () -> Void
    /// Another replica leads; this one waits (called after every unsuccessful campaign).
    public var standingBy: @Sendable () -> Void
    /// This replica has just taken leadership, before its first pass (the daemon checks the
    /// leading session's durability settings here).
    public var tookLeadership: @Sendable () async -> Void

    public init(
        passCompleted: @escaping @Sendable (PassSummary) -> Void = { _ in },
        passFailed: @escaping @Sendable (any Error) -> Void = { _ in },
        progress: @escaping @Sendable () -> Void = {},
        stopping: @escaping @Sendable () -> Void = {},
        standingBy: @escaping @Sendable () -> Void = {},
        tookLeadership: @escaping @Sendable () async -> Void = {}
    ) {
        self.passCompleted = passCompleted
        self.passFailed = passFailed
        self.progress = progress
        self.stopping = stopping
        self.standingBy = standingBy
        self.tookLeadership = tookLeadership
    }
}

/// The daemon's loop as a `Service`: a full pass, then wait for a NOTIFY, a backoff or settle
/// deadline, or the (fast or resync) interval; repeat until graceful shutdown or cancellation.
/// Graceful shutdown never interrupts a pass: requests in flight finish and their results are
/// written first. Cancellation ends every wait at once (and the pass's requests with it); either
/// way leadership is given up before `run` returns.
public struct ReconcileService: Service {
    let reconciler: FleetReconciler
    /// Nil: this replica acts alone (tests, tools). Otherwise it acts only while it leads.
    let leadership: (any LeadershipLease)?
    let wake: WakeSignal
    let configuration: ReconcilerConfiguration
    let hooks: ReconcileHooks
    let logger: Logger
    /// The longest the loop stays silent towards `hooks.progress`.
    let heartbeat: Duration
    let clock: any DaemonClock
    let jitter: @Sendable () -> Double

    /// Made by `Daemon.assemble`, so that the loop and its reconciler share their parts.
    init(
        reconciler: FleetReconciler,
        leadership: (any LeadershipLease)?,
        wake: WakeSignal,
        configuration: ReconcilerConfiguration,
        hooks: ReconcileHooks,
        heartbeat: Duration,
        clock: any DaemonClock,
        jitter: @escaping @Sendable () -> Double,
        logger: Logger
    ) {
        self.clock = clock
        self.jitter = jitter
        self.reconciler = reconciler
        self.leadership = leadership
        self.wake = wake
        self.configuration = configuration
        self.hooks = hooks
        self.heartbeat = heartbeat
        self.logger = logger
    }

    public func run() async throws {
        let wake = self.wake
        let hooks = self.hooks
        do {
            try await withGracefulShutdownHandler {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await loop() }
                    if leadership != nil { group.addTask { await keepLease() } }
                    // The loop ends on shutdown or cancellation; the lease keeper goes with it.
                    try await group.next()
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                hooks.stopping()
                wake.shutdown()
            }
        } catch is CancellationError {
            logger.info("reconcile loop cancelled")
        }
        await leadership?.resign()
        ReconcilerMetrics.leading(false)
        logger.notice("reconcile loop stopped")
    }

    /// Confirms the lease every `renewEvery` while this replica leads, so that a leader stuck in a
    /// long pass (a rate-budget wait) keeps it, and one that is frozen loses it.
    private func keepLease() async {
        guard let leadership else { return }
        var wasLeading = false
        var seenTerm = leadership.term
        // Until cancelled, not until shutdown: the loop finishes the requests in flight first, and
        // their results are written while this keeps the lease.
        while !Task.isCancelled {
            if leadership.isLeading, !(await leadership.renew()), !leadership.isLeading {
                await reconciler.announceLeadership(false)
            }
            // However the loss was noticed (here, or by a write of a pass), wake the loop from its
            // wait between passes: it stands by and campaigns at once, not a resync interval later.
            // A term taken and lost between two ticks counts too: the loop may be waiting out a
            // resync interval as a leader that no longer is.
            let leading = leadership.isLeading
            let term = leadership.term
            if !leading && (wasLeading || term != seenTerm) { wake.signal(row: nil) }
            ReconcilerMetrics.leading(leading)
            wasLeading = leading
            seenTerm = term
            do {
                try await clock.sleep(for: leadership.renewEvery)
            } catch {
                return
            }
        }
    }

    private func loop() async throws {
        var consecutiveFailures = 0
        while !wake.isShuttingDown && !Task.isCancelled {
            hooks.progress()
            if let leadership, !leadership.isLeading {
                do {
                    if try await leadership.campaign() {
                        consecutiveFailures = 0
                        ReconcilerMetrics.leading(true)
                        await reconciler.announceLeadership(true)
                        await hooks.tookLeadership()
                    } else {
                        ReconcilerMetrics.leading(false)
                        hooks.standingBy()
                        // Short enough for a quick takeover and a prompt shutdown; NOTIFYs are
                        // the leader's business, so they do not wake a standby.
                        try await clock.sleep(for: configuration.standbyPollInterval)
                        _ = wake.take()
                        continue
                    }
                } catch {
                    consecutiveFailures += 1
                    // Capped low: one cheap statement every few seconds spares a struggling
                    // database, and keeps a standby within the design's 30 s of a takeover.
                    let delay = Backoff(initial: .milliseconds(500), maximum: .seconds(5))
                        .delay(failures: consecutiveFailures, jitter: jitter())
                    logger.error("database unreachable; campaigning again in \(DurationText.format(delay)): \(error)")
                    hooks.passFailed(error)
                    try await backOff(delay)
                    continue
                }
            }
            if leadership == nil { ReconcilerMetrics.leading(true) }
            _ = wake.take()  // a full pass covers whatever was pending
            var delay: Duration
            do {
                let summary = try await measured(.full) { [reconciler] in
                    try await whileLeading { try await reconciler.fullPass() }
                }
                consecutiveFailures = 0
                ReconcilerMetrics.fullView(summary, clock: clock)
                hooks.passCompleted(summary)
                delay = summary.waitingOnCloud ? configuration.fastInterval : configuration.resyncInterval
                if let wakeUp = summary.nextWakeUp {
                    let untilWakeUp = Duration.interval(wakeUp.timeIntervalSince(clock.now())) + .milliseconds(10)
                    delay = min(delay, untilWakeUp)
                }
            } catch {
                // The repository has already ended leadership if the error ended its session.
                if let leadership, !leadership.isLeading { await reconciler.announceLeadership(false) }
                consecutiveFailures += 1
                delay = Backoff(initial: .seconds(1), maximum: configuration.fastInterval * 6)
                    .delay(failures: consecutiveFailures, jitter: jitter())
                logger.error(
                    "reconcile pass failed; next try in \(DurationText.format(delay)): \(error)"
                )
                hooks.passFailed(error)
            }
            try await waitBetweenPasses(delay, quickPasses: leadership?.isLeading ?? true)
        }
    }

    /// `body` (a pass), counted and timed.
    private func measured<T: Sendable>(
        _ kind: ReconcilerMetrics.PassKind,
        _ body: () async throws -> T
    ) async throws -> T {
        let started = clock.uptime()
        do {
            let result = try await body()
            ReconcilerMetrics.pass(kind, succeeded: true, duration: clock.uptime() - started)
            return result
        } catch {
            ReconcilerMetrics.pass(kind, succeeded: false, duration: clock.uptime() - started)
            throw error
        }
    }

    /// `body` (a pass), cancelled if leadership is lost meanwhile: a pass that may no longer act
    /// would only spend the budget on reads (a list whose answers are lost can take minutes) and
    /// keep this replica from standing by. Whatever it had sent is settled by the next leader.
    private func whileLeading<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let leadership else { return try await body() }
        let clock = self.clock
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                while leadership.isLeading {
                    do { try await clock.sleep(for: .seconds(1)) } catch { return nil }
                }
                return nil
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
                if !leadership.isLeading { throw LeadershipLost() }
            }
            throw LeadershipLost()
        }
    }

    /// Waits out a failed campaign's back-off. What arrives meanwhile (a NOTIFY, a lost lease's
    /// wake-up) is a leader's business, and the full pass that follows a won campaign covers it:
    /// it is taken and does not cut the wait short, or the loop would campaign again at once,
    /// round and round, against a database that is down. Shutdown ends it.
    private func backOff(_ delay: Duration) async throws {
        let deadline = clock.uptime() + delay
        while clock.uptime() < deadline {
            hooks.progress()
            guard try await wake.wait(for: min(deadline - clock.uptime(), heartbeat)) else { continue }
            if wake.isShuttingDown { return }
            _ = wake.take()
        }
    }

    /// Waits up to `delay`, running quick passes for NOTIFYs about new rows; returns early when a
    /// full pass is due (a NOTIFY about anything else, a resync request, or shutdown). Throws
    /// `CancellationError` when cancelled.
    ///
    /// Leading edge, then trailing: the first notification is acted on at once (a new row's create
    /// leaves within milliseconds of its INSERT), and whatever arrives while that quick pass runs
    /// waits in the wake signal and is taken, all of it, by exactly one quick pass right after.
    /// A burst stays one pass or a few: a quick pass reads every row still waiting for its first
    /// create, so a 500-row INSERT is covered by the first pass, however few of its notifications
    /// had arrived when it began.
    private func waitBetweenPasses(_ delay: Duration, quickPasses: Bool) async throws {
        var deadline = clock.uptime() + delay
        // Rows the quick passes of this wait acted on. A notification about one of them that comes
        // later is nearly always the tail of a burst a pass already read (the INSERT's
        // notifications reach us after its rows are readable); it asks for no full pass. Should it
        // be an edit instead (a deletion requested at once), the full pass that follows the new
        // droplets at the fast interval sees it, at most that interval later.
        var covered = Set<UUID>()
        while clock.uptime() < deadline {
            hooks.progress()
            let slice = min(deadline - clock.uptime(), heartbeat)
            guard try await wake.wait(for: slice) else { continue }
            if wake.isShuttingDown || !quickPasses { return }
            let pending = wake.take()
            if pending.resync { return }
            if pending.rows.isSubset(of: covered) { continue }
            do {
                let handled = try await measured(.quick) { [reconciler] in
                    try await whileLeading { try await reconciler.quickPass() }
                }
                covered.formUnion(handled)
                // Anything else that changed (a deletion request, an edited row) needs a full pass.
                if !pending.rows.isSubset(of: covered) { return }
                // New droplets are on their way: follow them at the fast interval.
                if !handled.isEmpty { deadline = min(deadline, clock.uptime() + configuration.fastInterval) }
            } catch {
                logger.warning("quick pass failed; falling back to a full pass: \(error)")
                return
            }
        }
    }
}
