import DigitalOceanModel
import Foundation
import ReconcileCore

/// Identity: which droplet is which row's (docs/design.md, "Identity and idempotency").
///
/// - At most one live droplet per identity, ever (rules 2, 3 and 6): a create that takes effect
///   while another droplet with the fleet tag and the same identity tag lives, and is not being
///   destroyed, is a violation, whoever sent it and however late it landed; a row deleted and
///   inserted again, or taken back by a restore, is no excuse (rule 6), and the text says so.
/// - Counted, not judged: a second droplet for a row whose commits a failover to an asynchronous
///   standby lost (rule 7: the promise needs a synchronous standby), and a droplet made again for
///   a row whose droplet vanished out of band (what the design allows).
/// - Every create that took effect is counted per identity, and one whose placement failed after
///   DigitalOcean accepted it (a 404 after the 202) is remembered: its row may end failed
///   (`ConvergenceChecks`).
/// - A row bound to a droplet it did not record rests on a fresh read (rule 2): never on a read
///   made before that droplet was destroyed, such as a page of a list read in an earlier pass.
enum IdentityChecks {
    /// A create takes effect (when the model carries it out, late or not): at most one live
    /// droplet per identity.
    static func createTookEffect(_ droplet: SimulatedDroplet, by who: String, in world: SimulationWorld) {
        guard let identity = droplet.identity, droplet.inFleet else { return }
        let existing = world.liveDroplets(identity: identity).filter {
            $0.id != droplet.id && $0.deleteRequestedAt == nil
        }
        if !existing.isEmpty {
            if world.promiseVoided.contains(identity) {
                world.duplicatesAfterLossyFailover += 1
                world.trace(
                    "do: a second droplet for \(world.label(identity)), whose intent a lossy failover took back"
                )
            } else {
                world.violation(
                    "\(who) created a second droplet \(droplet.id) for \(world.label(identity)) while droplet \(existing.map { String($0.id) }.joined(separator: ", ")) existed"
                        + context(of: identity, in: world)
                )
            }
        } else if world.vanished.contains(identity) {
            world.recreatedAfterVanish += 1
            world.trace("do: \(world.label(identity)) gets a droplet again after its droplet vanished")
        } else if !(world.placementFailed[identity]?.isEmpty ?? true) {
            world.placedAgain += 1
            world.trace("do: \(world.label(identity)) is placed again after a failed placement")
        }
        world.createsTakenEffect[identity, default: 0] += 1
        if droplet.vanishesAt != nil { world.placementFailed[identity, default: []].insert(droplet.id) }
    }

    /// A row write that binds `row` to a droplet it did not record: the droplet must not have
    /// been destroyed before the pass that binds it began (`passBegan`: when the writing session
    /// last read the rows).
    static func bindingIsFresh(
        row: UUID,
        from: DaemonState,
        to: DaemonState,
        passBegan: Date?,
        in world: SimulationWorld
    ) {
        guard let droplet = to.dropletID, droplet != from.dropletID,
            let destroyedAt = world.goneAt(droplet),
            let passBegan, destroyedAt < passBegan
        else { return }
        world.violation(
            "\(world.label(row)) bound to droplet \(droplet), destroyed at \(world.clock(destroyedAt)) before the pass that bound it began (\(world.clock(passBegan))): a binding on a stale read"
        )
    }

    /// What happened to a row that a second droplet's violation should mention.
    private static func context(of id: UUID, in world: SimulationWorld) -> String {
        var notes: [String] = []
        if world.reinserted.contains(id) { notes.append("its row was deleted with SQL and inserted again") }
        if world.restored.contains(id) { notes.append("a restore took its row back") }
        if world.disturbed.contains(id), !world.reinserted.contains(id), !world.restored.contains(id) {
            notes.append("a failover, an operator or a person disturbed its row")
        }
        return notes.isEmpty ? "" : " (" + notes.joined(separator: "; ") + ")"
    }
}
