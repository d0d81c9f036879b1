#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What must never happen, checked in production code where a broken rule would otherwise travel
/// on silently: a plan that creates twice for one identity or destroys what it must keep, a write
/// that takes a row's create attempts back.
///
/// On in debug builds, where a broken rule stops the process there and then, and wherever a
/// reporter is set (`reporting(to:_:)`: the deterministic simulation sets one in every build and
/// records what breaks as a violation of its seed). Off in release builds otherwise: the plan's check is a pass
/// over every action.
public enum Invariants {
    /// Runs `body` with broken rules reported to `report` instead of stopping the process, for
    /// whatever runs on this thread meanwhile. The simulation runs a seed's every task on the one
    /// thread that drives it, so this covers the daemon's code under it; a task-local would not
    /// (its tasks are started by the world's executor, not by the caller).
    public static func reporting<Result>(
        to report: @escaping (String) -> Void,
        _ body: () throws -> Result
    ) rethrows
        -> Result
    {
        let box = Unmanaged.passRetained(Reporter(report))
        let previous = pthread_getspecific(reporterKey)
        pthread_setspecific(reporterKey, box.toOpaque())
        defer {
            pthread_setspecific(reporterKey, previous)
            box.release()
        }
        return try body()
    }

    /// Where a broken rule is reported on this thread, if anywhere.
    static var reporter: ((String) -> Void)? {
        guard let raw = pthread_getspecific(reporterKey) else { return nil }
        return Unmanaged<Reporter>.fromOpaque(raw).takeUnretainedValue().report
    }

    private final class Reporter {
        let report: (String) -> Void
        init(_ report: @escaping (String) -> Void) { self.report = report }
    }

    /// Whether the checks run.
    public static var enabled: Bool {
        #if DEBUG
            true
        #else
            reporter != nil
        #endif
    }

    /// Reports `message` when `condition` does not hold.
    public static func check(
        _ condition: @autoclosure () -> Bool,
        _ message: @autoclosure () -> String,
        file: StaticString = #fileID,
        line: UInt = #line
    ) {
        guard enabled, !condition() else { return }
        if let reporter {
            reporter("broken invariant: \(message()) (\(file):\(line))")
        } else {
            preconditionFailure("broken invariant: \(message())", file: file, line: line)
        }
    }

    /// A plan's rules: at most one create per row, and no destroy of a droplet that a live row
    /// keeps (records, without asking for deletion) or that lacks the fleet tag.
    static func check(_ plan: Plan, rows: [ServerRecord], observation: Observation) {
        guard enabled else { return }
        var creating = Set<UUID>()
        var destroying = [Int64: DestroyReason]()
        // What each row records once the plan's writes are in (a duplicate's row is re-bound to
        // the droplet it keeps in the same plan that destroys the one it recorded).
        var rebound = [UUID: Int64?]()
        for action in plan.actions {
            switch action {
            case .create(let order, _, _):
                check(creating.insert(order.rowID).inserted, "a plan creates twice for row \(order.rowID)")
            case let .destroy(dropletID, reason):
                destroying[dropletID] = reason
            case let .update(row, _, _, to):
                rebound[row] = to.dropletID
            case let .dropletAction(order, _, _, to):
                rebound[order.rowID] = to.dropletID
            default:
                break
            }
        }
        guard !destroying.isEmpty else { return }
        for row in rows where row.state.status != .deleted && row.deleteRequestedAt == nil {
            if let kept = rebound[row.id] ?? row.state.dropletID, let reason = destroying[kept] {
                check(false, "a plan destroys droplet \(kept), which row \(row.id) keeps (\(reason))")
            }
        }
        for droplet in observation.droplets where !droplet.isInFleet {
            if let reason = destroying[droplet.id] {
                check(false, "a plan destroys droplet \(droplet.id), which lacks the fleet tag (\(reason))")
            }
        }
    }

    /// A row write's rules: its create attempts and failed placements never go down (only an
    /// operator's retry starts them afresh), and an attempt it stamps could reach DigitalOcean no
    /// earlier than it was made.
    static func check(_ change: Transition) {
        guard enabled else { return }
        let (from, to) = (change.from, change.to)
        check(
            to.createAttempts >= from.createAttempts,
            "row \(change.row.id)'s create attempts go down, \(from.createAttempts) to \(to.createAttempts)"
        )
        check(
            to.failedPlacements >= from.failedPlacements,
            "row \(change.row.id)'s failed placements go down, \(from.failedPlacements) to \(to.failedPlacements)"
        )
        if to.createAttemptedAt != from.createAttemptedAt || to.createReachableUntil != from.createReachableUntil,
            let attempted = to.createAttemptedAt, let reachable = to.createReachableUntil
        {
            check(
                reachable >= attempted,
                "row \(change.row.id)'s create could reach DigitalOcean until \(reachable), before it was made (\(attempted))"
            )
        }
    }
}

/// The thread-local slot of `Invariants.reporting(to:_:)`.
private let reporterKey: pthread_key_t = {
    var key = pthread_key_t()
    precondition(pthread_key_create(&key, nil) == 0, "no thread-local key for the invariants' reporter")
    return key
}()
