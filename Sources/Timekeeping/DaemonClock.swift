#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The one source of time for everything that stamps or waits: the reconcile loop, the
/// DigitalOcean client and its rate budget, leadership's lease and the watchdog.
///
/// Injected everywhere, so that tests move time instead of sleeping and the deterministic
/// simulation runs whole days of a replica's life in milliseconds.
public protocol DaemonClock: Sendable {
    /// Wall-clock time: stamps, and the API's epoch-second `ratelimit-reset`.
    func now() -> Date
    /// Time that only moves forward (NTP never steps it), from an arbitrary origin: for leases,
    /// send windows and timeouts, where a stepped wall clock would stretch or shrink a bound.
    func uptime() -> Duration
    /// Returns once `deadline` (wall clock) has come; throws `CancellationError` when cancelled.
    func sleep(until deadline: Date) async throws
    /// Returns once `duration` has passed; throws `CancellationError` when cancelled.
    func sleep(for duration: Duration) async throws
}

/// The system's clocks: `Date()` for wall time, `ContinuousClock` for uptime and sleeping.
public struct SystemClock: DaemonClock {
    private static let origin = ContinuousClock.now

    public init() {}

    public func now() -> Date { Date() }

    public func uptime() -> Duration { ContinuousClock.now - Self.origin }

    public func sleep(until deadline: Date) async throws {
        let seconds = deadline.timeIntervalSinceNow
        guard seconds > 0 else { return }
        try await Task.sleep(for: .milliseconds(Int64((seconds * 1000).rounded(.up))))
    }

    public func sleep(for duration: Duration) async throws {
        guard duration > .zero else { return }
        try await Task.sleep(for: duration)
    }
}
