import DigitalOceanModel
import Foundation

/// Destroys: what a replica may send a DELETE for (docs/design.md, "Identity and idempotency").
/// Judged as the request leaves the replica (after its gate), on the rows as they are then: a
/// restore or an operator's change of mind afterwards cannot recall a request already sent.
///
/// - Never a droplet without the fleet tag `citrus-host` (rule 5).
/// - Never a droplet that carries no row's identity: the daemon did not make it (rule 4).
/// - Never the droplet a live row keeps: the oldest with its identity, of a row neither deleted
///   nor asking for deletion (rule 3: a newer duplicate may go). One exception, because no
///   re-check can close it: an operator who withdrew the deletion less than a second before the
///   request left; later than that, the text says the deletion was withdrawn (rule 8: every
///   mutating request re-checks its row just before it leaves).
/// - An orphan (tagged `citrus-host`, its identity's row gone) only with `--orphans delete`, and
///   only once it has been one for the grace period, counted from when its row went: a droplet
///   whose row was deleted with SQL a moment ago, or whose create was in flight, is not yet an
///   orphan (rule 4). A droplet whose row went while asking for deletion is no orphan at all.
///
/// How many destroys an hour (rule 8's brake) is judged by `BrakeChecks`.
enum DestroyChecks {
    /// A DELETE of droplet `id` leaving replica `who`.
    static func destroySent(_ id: Int64, by who: String, in world: SimulationWorld) {
        guard let droplet = world.existingDroplet(id), droplet.deleteRequestedAt == nil else { return }
        guard droplet.inFleet else {
            world.violation("\(who) destroyed droplet \(id), which has no citrus-host tag")
            return
        }
        guard let identity = droplet.identity else {
            world.violation("\(who) destroyed droplet \(id), which carries no row's identity (an orphan)")
            return
        }
        let row = world.database.rows[identity]
        let oldest = world.liveDroplets(identity: identity).filter { $0.deleteRequestedAt == nil }
            .min { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        guard oldest?.id == id else { return }  // a newer duplicate
        BrakeChecks.budgetedDestroySent(id, by: who, in: world)
        if let row, row.state.status != .deleted, row.deleteRequestedAt == nil {
            // An operator who withdrew the deletion less than a second ago may have done so while
            // the request was already leaving: no re-check can close that gap.
            if let withdrawn = world.deletionWithdrawnAt[identity], world.time.now.timeIntervalSince(withdrawn) < 1 {
                world.trace("do: droplet \(id) destroyed by \(who) as its row's deletion was withdrawn")
                return
            }
            world.violation(
                "\(who) destroyed droplet \(id), the one live row \(world.label(identity)) should keep"
                    + (world.deletionWithdrawnAt[identity] != nil ? " (its deletion request was withdrawn)" : "")
            )
        } else if row == nil, !world.goneAskingDeletion.contains(identity) {
            orphanDestroySent(droplet, identity: identity, by: who, in: world)
        }
    }

    /// An orphan's destroy: only with `--orphans delete`, and only past its grace.
    private static func orphanDestroySent(
        _ droplet: SimulatedDroplet,
        identity: UUID,
        by who: String,
        in world: SimulationWorld
    ) {
        guard let grace = world.orphanGrace else {
            world.violation("\(who) destroyed droplet \(droplet.id), an orphan, with orphans set to report")
            return
        }
        let orphanSince = max(droplet.createdAt, world.rowGoneAt[identity] ?? droplet.createdAt)
        let age = world.time.now.timeIntervalSince(orphanSince)
        if age < grace {
            world.violation(
                "\(who) destroyed droplet \(droplet.id) of \(world.label(identity)), an orphan for only "
                    + String(format: "%.1f s (grace %.0f s)", age, grace)
            )
        }
    }
}
