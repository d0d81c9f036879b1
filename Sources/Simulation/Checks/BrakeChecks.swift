import Foundation
import ReconcileCore
import Timekeeping

/// The destroy brake (docs/design.md, identity rule 8): no rolling hour holds more destroys sent
/// (the first DELETE of each droplet for a row's deletion or as an orphan, or the graceful
/// shutdown before it, which begins the destroy; duplicates are exempt)
/// than the budget allows, unless an operator's allowance was in force when it was decided.
///
/// The budget's share is of the fleet; the world judges it against every row it ever made, an
/// upper bound of any fleet the daemon could have counted, so the hourly limit and the floor are
/// what this check holds the daemon to. A destroy decided while an allowance held may leave a
/// little after it ends (it waits in the rate budget): two minutes' grace.
enum BrakeChecks {
    static let allowanceGrace: TimeInterval = 120

    static func budgetedDestroySent(_ id: Int64, by who: String, in world: SimulationWorld) {
        let now = world.time.now
        // A DELETE sent again (the first one failed) is the same destroy, counted once.
        guard world.budgetedDestroysSent[id] == nil else { return }
        world.budgetedDestroysSent[id] = now
        let allowed = world.database.destroyAllowances.contains {
            $0.from <= now && now.timeIntervalSince($0.until) < allowanceGrace
        }
        if allowed { world.destroysSentWhileAllowed += 1 }
        let hourAgo = now.addingTimeInterval(-DestroyBudget.window.timeInterval)
        let inHour = world.budgetedDestroysSent.values.count { $0 > hourAgo }
        let limit = world.destroyBudget.limit(fleetSize: world.labels.count + inHour)
        guard inHour > limit, !allowed else { return }
        world.violation(
            "\(who) destroyed droplet \(id) past the destroy budget: \(inHour) destroys in the last hour, "
                + "the budget allows \(limit), and no allowance was in force"
        )
    }
}
