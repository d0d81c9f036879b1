#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Metrics
import ReconcileCore
import Synchronization
import Timekeeping

/// The loop's metrics, through swift-metrics only: with no factory bootstrapped (tests, tools)
/// every call records nothing. Handlers are made at each use, not kept, so that a factory
/// bootstrapped after this module is loaded still receives them. Names and labels are documented
/// in README.md ("Metrics").
public enum ReconcilerMetrics {
    /// The uptime of the last completed full pass and the clock it was read on: the only state
    /// here, kept so that the age of the fleet view can be computed when it is scraped.
    private static let lastFullView = Mutex<(clock: any DaemonClock, at: Duration)?>(nil)

    public enum PassKind: String, Sendable {
        case full, quick
    }

    /// A pass ended: counted by kind and result, timed by kind.
    static func pass(_ kind: PassKind, succeeded: Bool, duration: Duration) {
        Counter(
            label: "citrus_passes_total",
            dimensions: [("kind", kind.rawValue), ("result", succeeded ? "ok" : "failed")]
        ).increment()
        Metrics.Timer(label: "citrus_pass_duration_seconds", dimensions: [("kind", kind.rawValue)]).record(
            duration: duration
        )
    }

    /// A pass completed: rows by status (every status, so a status that empties reads 0), orphans
    /// as the last full list saw them, and when that list began.
    static func fullView(_ summary: PassSummary, clock: any DaemonClock) {
        for status in ServerStatus.allCases {
            Gauge(label: "citrus_servers", dimensions: [("status", status.rawValue)]).record(
                summary.counts[status] ?? 0
            )
        }
        Gauge(label: "citrus_orphans").record(summary.orphans)
        // The view is as old as its full list, which passes between full lists do not renew.
        guard let age = summary.fullViewAge else { return }
        lastFullView.withLock { $0 = (clock, clock.uptime() - age) }
        Gauge(label: "citrus_last_full_view_age_seconds").record(age.timeInterval)
    }

    /// Whether this replica leads (1) or stands by (0).
    static func leading(_ leading: Bool) {
        Gauge(label: "citrus_leader").record(leading ? 1 : 0)
    }

    /// What came of a create the loop decided to send.
    static func create(_ outcome: CreateOutcome) {
        let kind: String
        switch outcome {
        case .accepted: kind = "accepted"
        case .refused: kind = "refused"
        case .transient: kind = "transient"
        case .unknown: kind = "unknown"
        case .withdrawn: kind = "withdrawn"
        }
        Counter(label: "citrus_creates_total", dimensions: [("outcome", kind)]).increment()
    }

    /// A server's agent connected: how long after its droplet became active (or was first seen so).
    static func agentBootstrap(_ duration: Duration) {
        Metrics.Timer(label: "citrus_agent_bootstrap_seconds").record(duration: max(.zero, duration))
    }

    /// The destroy brake after a full pass: on (1) or off (0), and the destroys it holds back.
    static func destroyBrake(braked: Bool, waiting: Int) {
        Gauge(label: "citrus_destroys_braked").record(braked ? 1 : 0)
        Gauge(label: "citrus_destroys_waiting").record(waiting)
    }

    /// Brings the values that change with time alone up to date; call right before exporting.
    public static func refresh() {
        guard let last = lastFullView.withLock({ $0 }) else { return }
        let age = last.clock.uptime() - last.at
        Gauge(label: "citrus_last_full_view_age_seconds").record(age.timeInterval)
    }
}
