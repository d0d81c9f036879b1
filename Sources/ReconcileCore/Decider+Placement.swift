#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// A droplet DigitalOcean accepted and then could not place: the row is created again, a bounded
// number of times (issue 25, "a way back from failed").

extension Decider {
    /// A row whose droplet answered 404 before the row ever saw it active: its placement failed
    /// (DigitalOcean accepted the create, then could not place it) and the platform still wants the
    /// server, so the row goes back to `creating` and is created again, exactly once, by the usual
    /// rules (its identity looked up, nothing found). The 404 is believed only once it cannot be a
    /// lookup that lags the create: the droplet was seen by an earlier read, or the create's settle
    /// period is over. After `maxPlacements` failed placements the row fails with the count.
    func decidePlacementFailure(
        row: ServerRecord,
        droplet: Int64,
        settleDeadline: Date?,
        observation: Observation,
        into plan: inout PlanBuilder
    ) {
        let state = row.state
        let seenBefore = state.observed != nil
        if !seenBefore, let settleDeadline, observation.seenAt(row.id) < settleDeadline {
            plan.waitingOnCloud = true
            plan.wake(at: settleDeadline)
            return
        }
        var target = state
        target.failedPlacements += 1
        if target.failedPlacements >= configuration.maxPlacements {
            target.status = .failed
            target.lastError = DecisionMessages.placementsExhausted(
                droplet: droplet,
                failed: target.failedPlacements
            )
        } else {
            target.status = .creating
            target.dropletID = nil
            target.ipv4 = nil
            target.ipv6 = nil
            target.observed = nil
            target.drift = nil
            target.driftSince = nil
            target.lastError = DecisionMessages.placementFailed(
                droplet: droplet,
                failed: target.failedPlacements,
                of: configuration.maxPlacements
            )
        }
        plan.update(row, to: target)
    }
}
