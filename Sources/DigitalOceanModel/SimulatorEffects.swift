import Foundation

/// What a request did to the account, in the order it happened, for an observer that checks
/// invariants as effects land (the deterministic simulation). Kept only when
/// ``SimulatorConfiguration/recordsEffects`` is on, and taken with
/// ``SimulatedDigitalOcean/takeEffects()``. In memory only: a create's carries its `user_data`.
public enum SimulatorEffect: Sendable {
    /// A droplet was made (its `createdAt` is when it exists: later than now for a late create).
    case created(SimulatedDroplet, userData: String?, by: String?)
    /// A delete was accepted: the droplet goes at its `deletedAt`.
    case deleteRequested(SimulatedDroplet, by: String?)
    case actionStarted(SimulatedAction, by: String?)
    /// An action sent through the API ended (completed or errored).
    case actionEnded(SimulatedAction)
}

extension SimulatedAccount {
    mutating func record(_ effect: SimulatorEffect) {
        if recordsEffects { effects.append(effect) }
    }
}

extension SimulatedDigitalOcean {
    /// The header whose value an effect names as `by`: who sent the request (a simulated process).
    public static let requestedByHeader = "x-simulation-process"

    /// The effects recorded since the last call, oldest first, with every action that has ended
    /// by now settled.
    public func takeEffects() -> [SimulatorEffect] {
        settled(clock.now()) { state in
            defer { state.effects.removeAll(keepingCapacity: true) }
            return state.effects
        }
    }

    /// Deletes a droplet by hand (the control panel): no rate limit, no request log, no effect
    /// recorded. False when there is no such droplet or its delete was already asked for.
    @discardableResult
    public func deleteOutOfBand(dropletID: Int64) -> Bool {
        let now = clock.now()
        return settled(now) { $0.deleteOutOfBand(dropletID: dropletID, now: now) }
    }

    /// Counts one request against `token`'s rate windows, as another user of the same token
    /// would; false when the windows are full (that request would have got a 429).
    @discardableResult
    public func spendRequest(token: String) -> Bool {
        let now = clock.now()
        return state.withLock { state in
            var context = SimulatedAccount.ResponseContext(requestID: "", host: "", requestedBy: nil)
            return state.count(token: token, now: now, context: &context) == nil
        }
    }
}
