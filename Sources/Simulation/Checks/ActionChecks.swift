import DigitalOceanModel
import Foundation

/// Droplet actions (rename, power off and on, resize): what a replica may send to a live row's
/// droplet (docs/design.md, "Changes to a live row", and rules 3 to 5 of "Identity and
/// idempotency"). Judged as the request reaches DigitalOcean, on the droplet as it is then,
/// whether DigitalOcean refuses it or not.
///
/// - Only to a droplet of the fleet that carries a row's identity: never one without the fleet
///   tag, never an orphan.
/// - Never a step repeated while the same action may still be in progress: a lost answer is
///   settled by reading the droplet, not by sending the step again.
/// - Never a power-on behind the operator's back: only of a droplet a daemon powered off itself
///   (the simulation runs with `--powered-off report`: a droplet powered off by hand is drift).
/// - A resize only of a droplet powered off.
///
/// A row whose records were taken back (by a restore, or a delete and insert) or whose droplet was
/// changed by hand cannot know what was sent for it: the second and third rules spare it.
enum ActionChecks {
    /// An action leaving a replica for droplet `id`: a power-off marks it as one a daemon
    /// powered off (the only ones a daemon may power on).
    static func actionSent(_ type: String?, to id: Int64, in world: SimulationWorld) {
        if type == "power_off" { world.poweredOffByDaemon.insert(id) }
    }

    /// An action of `type` (the request's body is `document`) reaching DigitalOcean for `droplet`.
    static func actionArrived(
        _ type: String,
        _ document: JSONValue,
        on droplet: SimulatedDroplet,
        by who: String,
        in world: SimulationWorld
    ) {
        let id = droplet.id
        if let identity = droplet.identity, world.database.rows[identity]?.deleteRequestedAt != nil {
            world.trace("do: \(type) of droplet \(id) by \(who) while its row asks for deletion")
            // The graceful shutdown before a destroy is the destroy's first step, and the budget's.
            if type == "shutdown" { BrakeChecks.budgetedDestroySent(id, by: who, in: world) }
        }
        if droplet.identity == nil || !droplet.inFleet {
            world.violation("\(who) sent \(type) to droplet \(id), which no row of the fleet keeps")
        }
        // A row whose records were taken back, or whose droplet was changed by hand, cannot know.
        let remembers = droplet.identity.map { !world.forgetful($0) } ?? true
        let now = world.time.now
        let running = world.digitalOcean.actions().contains {
            $0.dropletID == id && $0.type == type && $0.name == document["name"]?.stringValue
                && $0.size == document["size"]?.stringValue && !$0.outOfBand && $0.status(at: now) == "in-progress"
        }
        // A lost answer is settled by reading the droplet, not by sending the step again.
        if remembers, running {
            world.violation("\(who) sent \(type) to droplet \(id) while the same action was in progress")
        }
        // Never powered on behind the operator's back: only what a daemon powered off itself.
        if type == "power_on", remembers, !world.poweredOffByDaemon.contains(id) {
            world.violation("\(who) powered on droplet \(id), which no daemon powered off")
        }
        if type == "resize", !droplet.poweredOff, droplet.apiStatus(at: now) == "active" {
            world.violation("\(who) sent a resize to droplet \(id) while it is powered on")
        }
    }

    /// An action DigitalOcean ended: a completed power-on takes the droplet off the daemon's list
    /// of droplets it powered off.
    static func actionEnded(_ action: SimulatedAction, in world: SimulationWorld) {
        if action.type == "power_on", action.ending == .completed {
            world.poweredOffByDaemon.remove(action.dropletID)
        }
    }
}
