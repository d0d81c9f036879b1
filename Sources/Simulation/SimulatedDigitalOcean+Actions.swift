import Foundation
import ReconcileCore

/// A droplet action in the simulated DigitalOcean: it locks its droplet, and takes effect (or
/// errors) a few seconds of virtual time later.
struct SimulatedAction {
    var id: Int64
    var dropletID: Int64
    var kind: DropletActionKind
    var progress: ActionProgress
    var startedAt: Date
}

extension SimulatedDigitalOcean {
    /// What DigitalOcean answers a droplet action it refuses (422).
    enum ActionRefusal: Error {
        /// Locked by an action in progress (a pending event): try again later.
        case busy
        case refused(String)
    }

    /// An action arrives: refused as DigitalOcean would, or started. Checks, as it takes effect,
    /// that the daemon acts only on a droplet a live row keeps.
    func startAction(_ kind: DropletActionKind, on dropletID: Int64, by who: String) -> Result<Int64, ActionRefusal> {
        guard var droplet = droplets[dropletID] else { return .failure(.refused("404: no such droplet")) }
        if let identity = droplet.identity, world.database.rows[identity]?.deleteRequestedAt != nil {
            world.trace("do: \(kind.type) of droplet \(dropletID) by \(who) while its row asks for deletion")
        }
        if droplet.identity == nil || !droplet.tags.contains(FleetTags.fleet) {
            world.violation("\(who) sent \(kind.type) to droplet \(dropletID), which no row of the fleet keeps")
        }
        // A step is never repeated while it may still be in progress: a lost answer is settled by
        // reading the droplet, not by sending the step again.
        // (A row whose records were taken back, by a restore or a delete and insert, cannot know.)
        let remembers = droplet.identity.map { !world.forgetful($0) } ?? true
        let running = actions.values.contains {
            $0.dropletID == dropletID && $0.kind == kind && $0.progress == .inProgress
        }
        if remembers, running {
            world.violation("\(who) sent \(kind.type) to droplet \(dropletID) while the same action was in progress")
        }
        // Never powered on behind the operator's back: only what a daemon powered off itself.
        // (Again, a row whose records a restore or a delete and insert took back cannot know.)
        if kind == .powerOn, who != "world", remembers, !poweredOffByDaemon.contains(dropletID) {
            world.violation("\(who) powered on droplet \(dropletID), which no daemon powered off")
        }
        guard !droplet.locked, world.time.now >= droplet.activeAt else { return .failure(.busy) }
        switch kind {
        case .powerOff where droplet.poweredOff: return .failure(.refused("Droplet is already powered off."))
        case .powerOn where !droplet.poweredOff: return .failure(.refused("Droplet is already powered on."))
        case .resize where !droplet.poweredOff:
            world.violation("\(who) sent a resize to droplet \(dropletID) while it is powered on")
            return .failure(.refused("Droplet must be powered off before it is resized."))
        default: break
        }
        nextActionID += 1
        let action = SimulatedAction(
            id: nextActionID,
            dropletID: dropletID,
            kind: kind,
            progress: .inProgress,
            startedAt: world.time.now
        )
        actions[action.id] = action
        droplet.locked = true
        droplets[dropletID] = droplet
        let takes: TimeInterval =
            switch kind {
            case .rename: 1 + world.random() * 3
            case .powerOff, .powerOn: 3 + world.random() * 10
            case .resize: 20 + world.random() * 40
            }
        let errors = world.faults.actionErrors()
        world.time.schedule(at: world.time.now.addingTimeInterval(takes)) { [self] in
            finish(action.id, errored: errors)
        }
        world.trace("do: action \(action.id) (\(kind.type)) started on droplet \(dropletID) by \(who)")
        return .success(action.id)
    }

    private func finish(_ actionID: Int64, errored: Bool) {
        guard var action = actions[actionID] else { return }
        action.progress = errored ? .errored : .completed
        actions[actionID] = action
        guard var droplet = droplets[action.dropletID] else { return }
        droplet.locked = false
        if !errored {
            switch action.kind {
            case .rename(let name): droplet.name = name
            case .powerOff: droplet.poweredOff = true
            case .powerOn:
                droplet.poweredOff = false
                poweredOffByDaemon.remove(action.dropletID)
            case .resize(let size, _): droplet.size = size
            }
        }
        droplets[action.dropletID] = droplet
        world.trace("do: action \(actionID) (\(action.kind.type)) \(errored ? "errored" : "completed")")
    }

    func progress(ofAction id: Int64) -> ActionProgress? {
        actions[id]?.progress
    }

    /// A change made in the control panel: in the droplet's history like any other action.
    func recordByHand(_ kind: DropletActionKind, on dropletID: Int64) {
        nextActionID += 1
        actions[nextActionID] = SimulatedAction(
            id: nextActionID,
            dropletID: dropletID,
            kind: kind,
            progress: .completed,
            startedAt: world.time.now
        )
    }

    /// A droplet's actions, newest first, as `GET /v2/droplets/{id}/actions` lists them.
    func history(of dropletID: Int64) -> [ObservedAction] {
        actions.values.filter { $0.dropletID == dropletID }.sorted { $0.id > $1.id }.map {
            ObservedAction(id: $0.id, type: $0.kind.type, progress: $0.progress, startedAt: $0.startedAt)
        }
    }
}
