import DigitalOceanModel
import Foundation
import ReconcileCore
import Reconciler

/// Where the world sees requests to DigitalOcean: as they leave (`checkAsSent`), as they arrive
/// (`checkOnArrival`), and as the model reports their effects (`observeEffects`). The model keeps
/// the state; the checks in `Checks/` judge it.
extension SimulationWorld {
    /// A request leaving a replica (after its gate): a destroy is judged on the rows as they are
    /// now (a restore or an operator's change of mind afterwards cannot recall it), and a power-off
    /// marks the droplet as one a daemon powered off.
    func checkAsSent(_ method: String, _ path: String, body: [UInt8]?, by who: String) {
        let parts = path.split(separator: "/")
        guard parts.count >= 3, parts[0] == "v2", parts[1] == "droplets", let id = Int64(parts[2]) else { return }
        if method == "DELETE", parts.count == 3 {
            DestroyChecks.destroySent(id, by: who, in: self)
        } else if method == "POST", parts.count == 4 {
            ActionChecks.actionSent(Self.actionType(in: body), to: id, in: self)
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
        ActionChecks.actionArrived(type, document, on: droplet, by: who, in: self)
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
                ActionChecks.actionEnded(action, in: self)
                trace("do: action \(action.id) (\(action.type)) \(action.ending.rawValue)")
            }
        }
    }

    /// A create takes effect: judged (`IdentityChecks`), then the droplet boots and its agent starts.
    private func created(_ droplet: SimulatedDroplet, userData: String?, by who: String) {
        IdentityChecks.createTookEffect(droplet, by: who, in: self)
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
