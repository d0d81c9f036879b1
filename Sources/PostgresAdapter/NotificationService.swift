#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import Postgres
import ReconcileCore
import Reconciler
import ServerStore
import ServiceLifecycle
import Timekeeping

/// Turns the `servers` table's NOTIFYs into wake-ups of the loop. Notifications are a hint, never
/// the only source of truth: when the listening session is re-established, anything sent in
/// between is lost, so the loop is asked for a full resync. Ends on graceful shutdown or
/// cancellation, while listening or while waiting to try again.
public struct NotificationService: Service {
    /// How attempts to LISTEN are spaced while the database is not there.
    public static let backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(30))

    let connectionString: String?
    let wake: WakeSignal
    let clock: any DaemonClock
    let logger: Logger

    public init(connectionString: String?, wake: WakeSignal, clock: any DaemonClock = SystemClock(), logger: Logger) {
        self.connectionString = connectionString
        self.wake = wake
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        var failures = 0
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let listener: PostgresListener
            do {
                listener = try await PostgresListener.start(
                    connectionString,
                    channels: [Migration.notificationChannel],
                    logger: logger
                )
            } catch {
                failures += 1
                let delay = Self.backoff.delay(failures: failures)
                logger.warning("cannot LISTEN for row changes yet; retrying in \(DurationText.format(delay)): \(error)")
                guard await clock.sleepUnlessStopping(for: delay) else { return }
                continue
            }
            failures = 0
            wake.signal(row: nil)  // anything before this moment was not heard
            await withGracefulShutdownHandler {
                for await event in listener.cancelOnGracefulShutdown() {
                    switch event {
                    case .notification(let notification):
                        wake.signal(row: UUID(uuidString: notification.payload))
                    case .reconnected:
                        logger.info("row-change notifications resumed; resyncing in case some were missed")
                        wake.signal(row: nil)
                    }
                }
            } onGracefulShutdown: {
                listener.stop()
            }
            listener.stop()
        }
    }
}
