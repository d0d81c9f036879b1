import DigitalOceanModel
import Foundation
import ReconcileCore

/// Convergence: the way a row's status goes, and where every row ends once the faults stop
/// (docs/design.md, "States" and "Changes to a live row").
///
/// - A status never moves backwards on the same droplet: creating < provisioning < initializing
///   < active, with unreachable level with active (an agent that comes and goes); failed,
///   deleting and deleted are outside the order. Onto a new droplet anything goes.
/// - Time keeps moving: 200,000 steps at one instant is a livelock.
/// - Within the convergence bound after the faults stop, every row has converged:
///   - a row asking for deletion is `deleted`, with no droplet carrying its identity;
///   - a row with an invalid name is `failed`;
///   - any other row is `active`, bound to the one droplet that carries its identity, with no
///     change in flight and no action running on it, its droplet as the row asks (name; size when
///     resizes are allowed) or the difference reported as drift, never drift with nothing
///     different, and never left powered off by the daemon.
///   - Allowed besides, because the row truly cannot know better: `failed` for a row something
///     out of band happened to (its droplet destroyed by hand, a restore, a failover, an operator)
///     or whose droplet's placement failed after the 202; `unreachable` when its droplet is
///     powered off or its agent's key was taken back; a row whose droplet someone powered off and
///     whose records it cannot trust holds its status with drift that says so; `deleted` when the
///     operator withdrew the deletion after it was done.
enum ConvergenceChecks {
    /// A row write the database accepts: the status never moves backwards on the same droplet.
    static func statusOrder(from: DaemonState, to: DaemonState, row: ServerRecord, in world: SimulationWorld) {
        guard let droplet = to.dropletID, from.dropletID == droplet, let was = statusRank(from.status),
            let now = statusRank(to.status), now < was
        else { return }
        world.violation(
            "\(world.label(row.id)) moved backwards on droplet \(droplet): \(from.status.rawValue) → \(to.status.rawValue)"
        )
    }

    /// Where a status stands in a droplet's life, for the rule that it never moves backwards on the
    /// same droplet: creating < provisioning < initializing < active, with unreachable level with
    /// active (an agent that comes and goes). A write is backwards when the row keeps its droplet
    /// and its status goes to a lower rank than the one it replaces (active → provisioning,
    /// active → initializing, unreachable → provisioning, initializing → creating). `failed`,
    /// `deleting` and `deleted` are outside the order: moving to or from them is never backwards.
    static func statusRank(_ status: ServerStatus) -> Int? {
        switch status {
        case .creating: 0
        case .provisioning: 1
        case .initializing: 2
        case .active, .unreachable: 3
        case .failed, .deleting, .deleted: nil
        }
    }

    /// Whether `steps` at one instant is a livelock (a violation, naming the processes still busy).
    static func livelocked(steps: Int, in world: SimulationWorld) -> Bool {
        guard steps > 200_000 else { return false }
        let busy = world.everyProcess.filter { $0.executor.runnable }.map {
            "\($0.name) (\($0.executor.pending) jobs)"
        }
        world.violation("livelock: 200,000 steps without time moving in \(busy.joined(separator: ", "))")
        return true
    }

    /// Whether every row has converged; when `final`, a row that has not is a violation.
    @discardableResult
    static func converged(final: Bool, in world: SimulationWorld) -> Bool {
        var converged = true
        let liveByIdentity = world.liveDropletsByIdentity()
        for row in world.database.rows.values.sorted(by: { $0.id.uuidString < $1.id.uuidString }) {
            let live = liveByIdentity[row.id] ?? []
            let oldest = live.min { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            if let problem = problem(of: row, live: live, oldest: oldest, in: world) {
                // Before the end, one row that has not converged is the answer.
                guard final else { return false }
                converged = false
                world.violation("\(world.label(row.id)) did not converge: \(problem)")
            }
        }
        return converged
    }

    /// What keeps `row` from having converged, with `live` the droplets carrying its identity, or nil.
    private static func problem(
        of row: ServerRecord,
        live: [SimulatedDroplet],
        oldest: SimulatedDroplet?,
        in world: SimulationWorld
    ) -> String? {
        let state = row.state
        if [.provisioning, .initializing].contains(state.status), row.deleteRequestedAt == nil,
            heldOff(row, droplet: oldest, in: world)
        {
            return nil
        } else if [.creating, .provisioning, .initializing, .deleting].contains(state.status) {
            return "still \(state.status.rawValue)"
        } else if state.status == .deleted, world.deletionWithdrawnAt[row.id] != nil {
            return nil  // deleted before the operator withdrew the request
        } else if state.status == .unreachable, oldest?.poweredOff == true {
            return nil  // its agent stops with the droplet someone powered off
        } else if state.status == .unreachable, world.restored.contains(row.id) || world.promiseVoided.contains(row.id)
        {
            // A restore (or a lossy failover) took the agents table back to a key the droplet's
            // agent no longer has: it cannot authenticate, and `unreachable` says so truly.
            return nil
        } else if row.deleteRequestedAt != nil {
            if state.status != .deleted || !live.isEmpty {
                return "deletion requested: \(state.status.rawValue) with \(live.count) droplets"
            }
        } else if world.invalid.contains(row.id) {
            if state.status != .failed { return "has an invalid name but is \(state.status.rawValue)" }
        } else if state.status == .active {
            if live.count != 1 || state.dropletID != oldest?.id {
                return
                    "active with droplet \(state.dropletID.map(String.init) ?? "none") but \(live.count) droplets carry its identity"
            } else if let oldest, let live = liveProblem(of: row, droplet: oldest, in: world) {
                return live
            }
        } else if state.status == .failed, live.isEmpty, placementsExhausted(row, in: world) {
            return nil  // every placement it may have failed after the 202
        } else if !(state.status == .failed && world.disturbed.contains(row.id)) {
            return "is \(state.status.rawValue) (\(state.lastError ?? "no error"))"
        }
        return nil
    }

    /// Whether the row ended failed because as many of its droplets' placements failed after
    /// DigitalOcean accepted them (a 404 after the 202) as the daemon makes before it gives up;
    /// short of that, a failed placement is created again and the row must converge.
    private static func placementsExhausted(_ row: ServerRecord, in world: SimulationWorld) -> Bool {
        let failed = world.placementFailed[row.id] ?? []
        return failed.count >= DecisionConfiguration().maxPlacements
            && row.state.dropletID.map(failed.contains) ?? true
    }

    /// A row whose droplet is off, which it may not know it asked for, holds its status with drift
    /// that says so: converged.
    private static func heldOff(_ row: ServerRecord, droplet: SimulatedDroplet?, in world: SimulationWorld) -> Bool {
        guard let droplet, droplet.poweredOff, world.forgetful(row.id) else { return false }
        return row.state.drift?.contains("power:") == true && row.state.change == nil
    }

    /// What is wrong with an active row's droplet once the world is quiet, or nil.
    private static func liveProblem(
        of row: ServerRecord,
        droplet: SimulatedDroplet,
        in world: SimulationWorld
    )
        -> String?
    {
        let state = row.state
        if let change = state.change { return "still changing: \(change.progress)" }
        if world.actionInProgress(on: droplet.id) {
            return "an action still runs on droplet \(droplet.id)"
        }
        if world.forgetful(row.id) {
            // Changed by hand, or the row's records taken back: whatever differs is drift.
            let differs = droplet.name != row.name || droplet.poweredOff
            if differs, state.drift == nil { return "its droplet differs, but no drift is recorded" }
            return nil
        }
        if droplet.poweredOff { return "droplet \(droplet.id) left powered off" }
        let refused = state.refused.map { "\($0.column)=\($0.value)" }
        if droplet.name != row.name, refused != "name=\(row.name)" {
            return "droplet \(droplet.id) is named \(droplet.name), the row asks \(row.name)"
        }
        if world.resizeAllowed, droplet.size != row.size, refused != "size=\(row.size)" {
            return "droplet \(droplet.id) is \(droplet.size), the row asks \(row.size)"
        }
        if !world.resizeAllowed, droplet.size != row.size, state.drift?.contains("size:") != true {
            return "its size differs from its droplet's and no drift says so"
        }
        if let problem = world.specificationProblem(of: row, droplet: droplet) { return problem }
        if droplet.name == row.name, droplet.size == row.size, state.drift != nil {
            return "drift recorded with nothing different: \(state.drift ?? "")"
        }
        return nil
    }
}
