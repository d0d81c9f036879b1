import Foundation

/// Droplet actions in-process: the same as `/_sim/actions`, `/_sim/action-settings`,
/// `/_sim/action-faults` and `POST /_sim/droplets/{id}/actions` over HTTP.
extension SimulatedDigitalOcean {
    /// Every rename, power_off, power_on and resize so far, oldest first (creates are not listed).
    public func actions() -> [SimulatedAction] {
        settled(clock.now()) { $0.actions.values.sorted { $0.id < $1.id } }
    }

    /// One action by id, a create's too.
    public func action(id: Int64) -> SimulatedAction? {
        settled(clock.now()) { $0.action(id: id) }
    }

    /// How long each action type runs, as configured or last set.
    public var actionTiming: SimulatorActionTiming { state.withLock { $0.actionTiming } }

    /// For actions started from now on.
    public func setActionTiming(_ timing: SimulatorActionTiming) { state.withLock { $0.actionTiming = timing } }

    /// Aims a fault at the next matching actions (see ``SimulatorActionFault``).
    public func addActionFault(_ fault: SimulatorActionFault) {
        state.withLock { $0.faults.actionFaults.append(fault) }
    }

    /// Changes a droplet out of band, as a person in the control panel would: `body` is what
    /// `POST /v2/droplets/{id}/actions` takes (`{"type": "rename", "name": "web-2"}`,
    /// `{"type": "power_off"}`, `{"type": "resize", "size": "s-2vcpu-4gb", "disk": true}`), under the
    /// same rules, done at once. Throws with DigitalOcean's message when it refuses.
    @discardableResult
    public func changeOutOfBand(dropletID: Int64, _ body: JSONValue) throws -> SimulatedAction {
        let now = clock.now()
        let (result, snapshot) = settled(now) { state -> (Result<SimulatedAction, APIRefusal>, PersistedState?) in
            let result = Result { () throws(APIRefusal) in
                try state.changeOutOfBand(dropletID: dropletID, body: body.serialized(), now: now)
            }
            return (result, state.dirty && persistence != nil ? state.persistable() : nil)
        }
        if let snapshot { persistence?.save(snapshot) }
        switch result {
        case .success(let action): return action
        case .failure(let refusal): throw SimulatorError(refusal.message)
        }
    }
}
