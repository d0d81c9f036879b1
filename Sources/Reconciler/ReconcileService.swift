import Foundation
import Logging
import ReconcileCore
import ServiceLifecycle

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

    public init(
        passCompleted: @escaping @Sendable (PassSummary) -> Void = { _ in },
        passFailed: @escaping @Sendable (any Error) -> Void = { _ in },
        progress: @escaping @Sendable () -> Void = {},
        stopping: @escaping @Sendable () -> Void = {},
        standingBy: @escaping @Sendable () -> Void = {}
    ) {
        self.passCompleted = passCompleted
        self.passFailed = passFailed
        self.progress = progress
        self.stopping = stopping
        self.standingBy = standingBy
    }
}

/// The daemon's loop as a `Service`: a full pass, then wait for a NOTIFY, a backoff or settle
/// deadline, or the (fast or resync) interval; repeat until graceful shutdown. Shutdown never
/// interrupts a pass: requests in flight finish and their results are written first.
public struct ReconcileService: Service {
    let reconciler: FleetReconciler
    /// Nil: this replica acts alone (tests, tools). Otherwise it acts only while it leads.
    let leadership: Leadership?
    let wake: WakeSignal
    let configuration: ReconcilerConfiguration
    let hooks: ReconcileHooks
    let logger: Logger
    /// The longest the loop stays silent towards `hooks.progress`.
    let heartbeat: Duration

    public init(
        reconciler: FleetReconciler,
        leadership: Leadership? = nil,
        wake: WakeSignal,
        configuration: ReconcilerConfiguration,
        hooks: ReconcileHooks = ReconcileHooks(),
        heartbeat: Duration = .seconds(5),
        logger: Logger
    ) {
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
        try await withGracefulShutdownHandler {
            try await loop()
        } onGracefulShutdown: {
            hooks.stopping()
            wake.shutdown()
        }
        await leadership?.resign()
        logger.notice("reconcile loop stopped")
    }

    private func loop() async throws {
        var consecutiveFailures = 0
        while !wake.isShuttingDown {
            hooks.progress()
            if let leadership, !leadership.isLeading {
                do {
                    if try await leadership.campaign() {
                        consecutiveFailures = 0
                        await reconciler.announceLeadership(true)
                    } else {
                        hooks.standingBy()
                        // Short enough for a quick takeover and a prompt shutdown; NOTIFYs are
                        // the leader's business, so they do not wake a standby.
                        try? await Task.sleep(for: configuration.standbyPollInterval)
                        _ = wake.take()
                        continue
                    }
                } catch {
                    consecutiveFailures += 1
                    let delay = ReconcileCore.Backoff.delay(
                        failures: consecutiveFailures, base: .milliseconds(500), cap: .seconds(30), jitter: .random(in: 0..<1))
                    logger.error("database unreachable; campaigning again in \(delay): \(error)")
                    hooks.passFailed(error)
                    try await waitBetweenPasses(delay, quickPasses: false)
                    continue
                }
            }
            _ = wake.take()  // a full pass covers whatever was pending
            var delay: Duration
            do {
                let summary = try await reconciler.fullPass()
                consecutiveFailures = 0
                hooks.passCompleted(summary)
                delay = summary.waitingOnCloud ? configuration.fastInterval : configuration.resyncInterval
                if let wakeUp = summary.nextWakeUp {
                    let untilWakeUp = Duration.seconds(max(wakeUp.timeIntervalSinceNow, 0)) + .milliseconds(10)
                    delay = min(delay, untilWakeUp)
                }
            } catch {
                if let leadership, leadership.isLeading {
                    leadership.sessionFailed(error)
                    if !leadership.isLeading { await reconciler.announceLeadership(false) }
                }
                consecutiveFailures += 1
                delay = ReconcileCore.Backoff.delay(
                    failures: consecutiveFailures, base: .seconds(1), cap: configuration.fastInterval * 6, jitter: Double.random(in: 0..<1))
                logger.error(
                    "reconcile pass failed; next try in \(delay.formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))): \(error)")
                hooks.passFailed(error)
            }
            try await waitBetweenPasses(delay, quickPasses: leadership?.isLeading ?? true)
        }
    }

    /// Waits up to `delay`, running quick passes for NOTIFYs about new rows; returns early when a
    /// full pass is due (a NOTIFY about anything else, a resync request, or shutdown).
    private func waitBetweenPasses(_ delay: Duration, quickPasses: Bool) async throws {
        let clock = ContinuousClock()
        var deadline = clock.now + delay
        while clock.now < deadline {
            hooks.progress()
            let slice = min(deadline - clock.now, heartbeat)
            guard await wake.wait(for: slice) else { continue }
            if wake.isShuttingDown || !quickPasses { return }
            try? await Task.sleep(for: configuration.debounce)  // gather a burst of inserts into one pass
            let pending = wake.take()
            if pending.resync { return }
            do {
                let handled = try await reconciler.quickPass()
                // Anything else that changed (a deletion request, an edited row) needs a full pass.
                if !pending.rows.isSubset(of: handled) { return }
                // New droplets are on their way: follow them at the fast interval.
                if !handled.isEmpty { deadline = min(deadline, clock.now + configuration.fastInterval) }
            } catch {
                logger.warning("quick pass failed; falling back to a full pass: \(error)")
                return
            }
        }
    }
}
