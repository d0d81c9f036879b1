import DigitalOceanModel
import Foundation
import ReconcileCore
import Reconciler

/// What the world checks about requests to DigitalOcean: as they leave (`checkAsSent`), as they
/// arrive (`checkOnArrival`), and as the model reports their effects (`observeEffects`). The model
/// keeps the state; the world only judges it.
extension SimulationWorld {
    /// A request leaving a replica (after its gate): a destroy is judged on the rows as they are
    /// now (a restore or an operator's change of mind afterwards cannot recall it), and a power-off
    /// marks the droplet as one a daemon powered off.
    func checkAsSent(_ method: String, _ path: String, body: [UInt8]?, by who: String) {
        let parts = path.split(separator: "/")
        guard parts.count >= 3, parts[0] == "v2", parts[1] == "droplets", let id = Int64(parts[2]) else { return }
        if method == "DELETE", parts.count == 3 {
            checkDestroy(id, by: who)
        } else if method == "POST", parts.count == 4, Self.actionType(in: body) == "power_off" {
            poweredOffByDaemon.insert(id)
        }
    }

    /// A request reaching DigitalOcean, before the model handles it: a droplet action is judged
    /// on the droplet as it is now, whether DigitalOcean then refuses it or not.
    func checkOnArrival(_ request: SimulatedDigitalOcean.Request, by who: String) {
        let parts = request.uri.split(separator: "?").first?.split(separator: "/") ?? []
        guard request.method == "POST", parts.count == 4, parts[1] == "droplets", parts[3] == "actions",
            let id = Int64(parts[2]), let droplet = existingDroplet(id),
            let document = try? JSONValue.parse(request.body), let type = document["type"]?.stringValue
        else { return }
        if let identity = droplet.identity, database.rows[identity]?.deleteRequestedAt != nil {
            trace("do: \(type) of droplet \(id) by \(who) while its row asks for deletion")
        }
        if droplet.identity == nil || !droplet.inFleet {
            violation("\(who) sent \(type) to droplet \(id), which no row of the fleet keeps")
        }
        // A step is never repeated while it may still be in progress: a lost answer is settled by
        // reading the droplet, not by sending the step again.
        // (A row whose records were taken back, by a restore or a delete and insert, cannot know.)
        let remembers = droplet.identity.map { !forgetful($0) } ?? true
        let now = time.now
        let running = digitalOcean.actions().contains {
            $0.dropletID == id && $0.type == type && $0.name == document["name"]?.stringValue
                && $0.size == document["size"]?.stringValue && !$0.outOfBand && $0.status(at: now) == "in-progress"
        }
        if remembers, running {
            violation("\(who) sent \(type) to droplet \(id) while the same action was in progress")
        }
        // Never powered on behind the operator's back: only what a daemon powered off itself.
        // (Again, a row whose records a restore or a delete and insert took back cannot know.)
        if type == "power_on", remembers, !poweredOffByDaemon.contains(id) {
            violation("\(who) powered on droplet \(id), which no daemon powered off")
        }
        if type == "resize", !droplet.poweredOff, droplet.apiStatus(at: now) == "active" {
            violation("\(who) sent a resize to droplet \(id) while it is powered on")
        }
    }

    /// Takes the model's effects since the last look and judges each as it lands (a late create
    /// lands when it is carried out, on the world's timers).
    func observeEffects() {
        for effect in digitalOcean.takeEffects() {
            switch effect {
            case .created(let droplet, let userData, let who):
                if droplet.createdAt > time.now {
                    time.schedule(at: droplet.createdAt) { [unowned self] in
                        self.created(droplet, userData: userData, by: who ?? "someone")
                    }
                } else {
                    created(droplet, userData: userData, by: who ?? "someone")
                }
            case .deleteRequested(let droplet, let who):
                trace("do: droplet \(droplet.id) destroyed by \(who ?? "someone")")
            case .actionStarted(let action, let who):
                trace(
                    "do: action \(action.id) (\(action.type)) started on droplet \(action.dropletID) by \(who ?? "someone")"
                )
            case .actionEnded(let action):
                if action.type == "power_on", action.ending == .completed {
                    poweredOffByDaemon.remove(action.dropletID)
                }
                trace("do: action \(action.id) (\(action.type)) \(action.ending.rawValue)")
            }
        }
    }

    /// A create takes effect: at most one live droplet per identity, ever.
    private func created(_ droplet: SimulatedDroplet, userData: String?, by who: String) {
        if let identity = droplet.identity, droplet.inFleet {
            let existing = liveDroplets(identity: identity).filter {
                $0.id != droplet.id && $0.deleteRequestedAt == nil
            }
            if !existing.isEmpty {
                if promiseVoided.contains(identity) {
                    duplicatesAfterLossyFailover += 1
                    trace("do: a second droplet for \(label(identity)), whose intent a lossy failover took back")
                } else {
                    violation(
                        "\(who) created a second droplet \(droplet.id) for \(label(identity)) while droplet \(existing.map { String($0.id) }.joined(separator: ", ")) existed"
                            + context(of: identity)
                    )
                }
            } else if vanished.contains(identity) {
                recreatedAfterVanish += 1
                trace("do: \(label(identity)) gets a droplet again after its droplet vanished")
            }
            createsTakenEffect[identity, default: 0] += 1
            if droplet.vanishesAt != nil { placementFailed[identity, default: []].insert(droplet.id) }
        }
        trace("do: droplet \(droplet.id) made for \(droplet.identity.map(label) ?? "no row") by \(who)")
        if let failsAt = droplet.vanishesAt {
            trace("do: droplet \(droplet.id)'s placement fails at \(clock(failsAt))")
        }
        if let userData, let activeAt = droplet.activeAt, let agent = Self.agentInUserData(userData) {
            // Booted, then cloud-init starts the agent a few seconds later.
            let delay = activeAt.timeIntervalSince(time.now) + 3 + hostileRandom() * 15
            startAgent(on: droplet.id, agent: agent.agent, keySHA256: agent.keySHA256, after: delay)
        }
    }

    /// Checks, as a destroy leaves, that it is one the design allows: a droplet with the fleet
    /// tag, and not the one a live row keeps (the oldest with its identity) nor an orphan.
    private func checkDestroy(_ id: Int64, by who: String) {
        guard let droplet = existingDroplet(id), droplet.deleteRequestedAt == nil else { return }
        guard droplet.inFleet else {
            violation("\(who) destroyed droplet \(id), which has no citrus-host tag")
            return
        }
        guard let identity = droplet.identity else {
            violation("\(who) destroyed droplet \(id), which carries no row's identity (an orphan)")
            return
        }
        let row = database.rows[identity]
        let oldest = liveDroplets(identity: identity).filter { $0.deleteRequestedAt == nil }
            .min { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        guard oldest?.id == id else { return }  // a newer duplicate
        if let row, row.state.status != .deleted, row.deleteRequestedAt == nil {
            // An operator who withdrew the deletion less than a second ago may have done so while
            // the request was already leaving: no re-check can close that gap.
            if let withdrawn = deletionWithdrawnAt[identity], time.now.timeIntervalSince(withdrawn) < 1 {
                trace("do: droplet \(id) destroyed by \(who) as its row's deletion was withdrawn")
                return
            }
            violation(
                "\(who) destroyed droplet \(id), the one live row \(label(identity)) should keep"
                    + (deletionWithdrawnAt[identity] != nil ? " (its deletion request was withdrawn)" : "")
            )
        } else if row == nil, !goneAskingDeletion.contains(identity) {
            checkOrphanDestroy(droplet, identity: identity, by: who)
        }
    }

    /// An orphan may be destroyed only with `--orphans delete`, and only once it has been one (no
    /// live row with its identity) for the grace period: a droplet whose row was deleted with SQL
    /// a moment ago, or whose create was in flight, is not yet an orphan.
    private func checkOrphanDestroy(_ droplet: SimulatedDroplet, identity: UUID, by who: String) {
        guard let grace = orphanGrace else {
            violation("\(who) destroyed droplet \(droplet.id), an orphan, with orphans set to report")
            return
        }
        let orphanSince = max(droplet.createdAt, rowGoneAt[identity] ?? droplet.createdAt)
        let age = time.now.timeIntervalSince(orphanSince)
        if age < grace {
            violation(
                "\(who) destroyed droplet \(droplet.id) of \(label(identity)), an orphan for only "
                    + String(format: "%.1f s (grace %.0f s)", age, grace)
            )
        }
    }

    static func actionType(in body: [UInt8]?) -> String? {
        guard let body, let document = try? JSONValue.parse(body) else { return nil }
        return document["type"]?.stringValue
    }

    /// A request delivered at once, as the transport delivers it on arrival, for tests that drive
    /// the model and the checks by hand.
    @discardableResult
    func deliver(
        _ method: String,
        _ uri: String,
        body: JSONValue? = nil,
        by who: String
    ) -> SimulatedDigitalOcean.Response? {
        let request = SimulatedDigitalOcean.Request(
            method: method,
            uri: uri,
            headers: [("Authorization", "Bearer \(Self.daemonToken)"), (SimulatedDigitalOcean.requestedByHeader, who)],
            body: body?.serialized() ?? []
        )
        checkAsSent(method, uri, body: request.body, by: who)
        checkOnArrival(request, by: who)
        let outcome = digitalOcean.handle(request)
        observeEffects()
        guard case .respond(let response, _) = outcome else { return nil }
        return response
    }
}
