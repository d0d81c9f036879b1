import Synchronization

/// The waits the reconcile loop is in whose end is bounded: a request to DigitalOcean with its
/// timeout, a retry's backoff. The watchdog counts them as signs of life.
///
/// Why: the watchdog is there to catch a loop that is stuck, not one that is slow. During a
/// DigitalOcean brownout one page of a list can take five attempts of 30 s each, and no row moves
/// meanwhile; counting only row progress, systemd killed the daemon mid-list, and the list began
/// again from page 1 after the restart. A wait with a deadline cannot be stuck before its deadline:
/// either it ends by then (answered, timed out, slept), or the deadline failed to fire.
///
/// So, while at least one wait is in progress and none has outlived its deadline by more than
/// `grace`, the loop is alive; a wait that ends in time is a sign of life at its end, as a report
/// of progress would be. Everything else still stops the pings, as before: a wait past its
/// deadline and grace (the transport's timeout did not fire), and whatever is not registered here
/// (a deadlock, a statement without a timeout, an await that never returns), during which the
/// loop's last sign of life only ages. The retries around the waits are bounded too (a number of
/// attempts), so a loop made only of waits still reaches its next progress point.
public final class BoundedWaits: Sendable {
    /// How long a wait may outlive its deadline before it counts as hung: room for a timeout that
    /// fires late on a busy machine.
    public let grace: Duration
    private let clock: any DaemonClock
    private let state = Mutex(State())

    private struct State {
        /// The deadline (uptime) of each wait in progress.
        var deadlines: [UInt64: Duration] = [:]
        var nextID: UInt64 = 0
        /// When the last wait that ended in time ended.
        var lastEndedInTime: Duration?
    }

    public init(clock: any DaemonClock = SystemClock(), grace: Duration = .seconds(10)) {
        self.clock = clock
        self.grace = grace
    }

    /// Runs `body`, a wait that ends within `limit` (its own timeout or sleep enforces that).
    public func waiting<T, Failure: Error>(
        atMost limit: Duration,
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws(Failure) -> T
    ) async throws(Failure) -> T {
        let deadline = clock.uptime() + limit
        let id = state.withLock { state in
            state.nextID += 1
            state.deadlines[state.nextID] = deadline
            return state.nextID
        }
        defer { end(id) }
        return try await body()
    }

    private func end(_ id: UInt64) {
        let now = clock.uptime()
        state.withLock { state in
            guard let deadline = state.deadlines.removeValue(forKey: id), now <= deadline + grace else { return }
            state.lastEndedInTime = max(state.lastEndedInTime ?? now, now)
        }
    }

    /// The latest instant, as of `now`, at which the waits show the loop alive: `now` while at
    /// least one wait is in progress and none is past its deadline and grace; with none in
    /// progress, the end of the last one that ended in time. Nil while one is overdue (something
    /// hangs: only the loop's own progress counts then), or when none has ended in time yet.
    public func lastSignOfLife(at now: Duration) -> Duration? {
        state.withLock { state in
            if state.deadlines.values.contains(where: { now > $0 + grace }) { return nil }
            return state.deadlines.isEmpty ? state.lastEndedInTime : now
        }
    }

    /// Waits in progress that have outlived their deadline and grace, as of `now`.
    public func overdue(at now: Duration) -> Int {
        state.withLock { state in state.deadlines.values.count { now > $0 + grace } }
    }
}
