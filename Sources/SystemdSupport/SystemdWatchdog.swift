import Logging
import ServiceLifecycle
import Synchronization
import Timekeeping

/// Sends `WATCHDOG=1` to systemd for as long as the reconcile loop keeps making progress.
///
/// ## Contract with the loop
/// - The loop calls ``progress()`` whenever it gets something done or is deliberately idle: at the
///   start and end of every pass, between actions of a long pass, and while waiting for work
///   (NOTIFY, a timer, the database at start-up). It must do so at least every `interval / 2`.
/// - Waiting on DigitalOcean within a deadline is life too: the client registers each request and
///   each retry's backoff in `waits` (see ``BoundedWaits``), and a wait in progress within its
///   deadline, or one that ended in time, counts as progress. A slow or timing-out API is then no
///   reason to restart; a request that outlives its deadline is.
/// - Every `interval / 2` this service pings systemd, but only if the loop showed life within the
///   last `interval`. When the loop is stuck (a hung call, a deadlock, a livelock that never
///   reaches a progress point) the pings stop, systemd's `WatchdogSec=` expires, and systemd kills
///   the daemon with SIGABRT and restarts it (`Restart=on-failure`).
/// - Construction counts as progress, so start-up gets one full interval before its first report.
/// - When the unit has no watchdog (`WatchdogSec=` unset, or not under systemd), ``progress()`` is
///   cheap and nothing is sent.
/// - The service ends on graceful shutdown: after `STOPPING=1` systemd stops watching and
///   `TimeoutStopSec=` applies instead.
public final class SystemdWatchdog: Service, Sendable {
    /// How long the loop may go without reporting progress; `nil` disables the watchdog.
    public let interval: Duration?
    /// Uptime at the last report of progress.
    private let lastProgress: Mutex<Duration>
    /// The loop's waits on DigitalOcean, each with its deadline; nil: only progress counts.
    private let waits: BoundedWaits?
    private let clock: any DaemonClock
    private let ping: @Sendable () -> Void
    private let logger: Logger

    /// A watchdog for the unit's own `WatchdogSec=`.
    public convenience init(
        notifier: SystemdNotifier,
        clock: any DaemonClock = SystemClock(),
        waits: BoundedWaits? = nil,
        logger: Logger
    ) {
        self.init(
            interval: notifier.watchdogInterval,
            clock: clock,
            waits: waits,
            logger: logger,
            ping: { notifier.watchdog() }
        )
    }

    /// A watchdog with an explicit interval and ping (tests use this to count pings).
    public init(
        interval: Duration?,
        clock: any DaemonClock = SystemClock(),
        waits: BoundedWaits? = nil,
        logger: Logger,
        ping: @escaping @Sendable () -> Void
    ) {
        self.interval = interval
        self.clock = clock
        self.waits = waits
        self.lastProgress = Mutex(clock.uptime())
        self.ping = ping
        self.logger = logger
    }

    /// The loop is alive and moving. Call at least every `interval / 2`; see the type's contract.
    public func progress() {
        let now = clock.uptime()
        lastProgress.withLock { $0 = now }
    }

    /// How long the loop has shown no sign of life (progress, or a wait on DigitalOcean within its
    /// deadline): what `/healthz` reports on.
    public func sinceLastSignOfLife() -> Duration {
        let now = clock.uptime()
        return now - lastSignOfLife(at: now)
    }

    private func lastSignOfLife(at now: Duration) -> Duration {
        let progress = lastProgress.withLock { $0 }
        guard let waited = waits?.lastSignOfLife(at: now) else { return progress }
        return max(progress, waited)
    }

    /// Whether a ping is due at `now`: progress was reported less than `interval` ago.
    static func isHealthy(lastProgress: Duration, now: Duration, interval: Duration) -> Bool {
        now - lastProgress < interval
    }

    public func run() async throws {
        guard let interval else {
            logger.debug("systemd watchdog is off; not sending WATCHDOG=1")
            // Stay in the service group until shutdown: returning early would end the group.
            try? await gracefulShutdown()
            return
        }
        let period = interval / 2
        var stalled = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let now = clock.uptime()
            let lastAlive = lastSignOfLife(at: now)
            if Self.isHealthy(lastProgress: lastAlive, now: now, interval: interval) {
                if stalled {
                    logger.notice("reconcile loop is making progress again; resuming watchdog pings")
                    stalled = false
                }
                ping()
            } else if !stalled {
                stalled = true
                logger.critical(
                    "reconcile loop made no progress and waits on no request within its deadline; withholding WATCHDOG=1 so systemd restarts the daemon",
                    metadata: [
                        "since_last_progress": "\(DurationText.format(now - lastAlive))",
                        "watchdog_interval": "\(DurationText.format(interval))",
                        "overdue_requests": "\(waits?.overdue(at: now) ?? 0)",
                    ]
                )
            }
            do {
                try await cancelWhenGracefulShutdown { [clock] in try await clock.sleep(for: period) }
            } catch {
                return
            }
        }
    }
}
