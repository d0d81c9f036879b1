#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// Between two full lists of the fleet, a pass reads fresh only what it must: the rows that are not
// at rest. This is the rule that says which.

extension Decider {
    /// Whether a pass between full lists may decide about `row` on `droplet`, the row's recorded
    /// droplet as the last full list (or a later read) showed it, without reading it again.
    ///
    /// At rest: a failed row (it waits for an operator), and a row in service whose droplet was on
    /// (or off, as drift the row already records), unlocked, as the row recorded it, with nothing
    /// for the daemon to send. Deciding about it again on the same facts changes nothing at
    /// DigitalOcean, and what it does need (its agent's health) is in the database. Everything else
    /// (a create, a droplet not yet active, a deletion, a change in progress or asked for) is read
    /// fresh before it is decided.
    public func isAtRest(_ row: ServerRecord, droplet: ObservedDroplet?) -> Bool {
        let state = row.state
        guard row.deleteRequestedAt == nil else { return false }
        if state.status == .failed || state.status == .deleted { return true }
        guard state.status.isUp, state.change == nil, let id = state.dropletID, let droplet, droplet.id == id,
            !droplet.locked, let observed = state.observed, observed.describes(droplet)
        else { return false }
        // A droplet still to be assigned to its project waits on a request.
        if waitsForProject(row, dropletID: id) { return false }
        switch droplet.status {
        case .active: guard droplet.publicIPv4 != nil else { return false }
        case .off: break
        case .new, .archive, .other: return false
        }
        // The common case: on, matching its row, nothing refused and no drift.
        if state.refused == nil, state.drift == nil, droplet.status == .active, matches(row, droplet) {
            return true
        }
        // Drift or a refusal the row already records, and nothing to send: a read would say the same.
        let refused = state.refused.flatMap { stands($0, row: row, droplet: droplet) ? $0 : nil }
        guard refused == state.refused,
            nextGoal(of: row, status: state.status, droplet: droplet, refused: refused) == nil
        else { return false }
        let drift = drift(
            of: row,
            droplet: droplet,
            change: nil,
            refused: refused,
            policy: configuration.liveChanges
        )
        return drift == state.drift
    }
}
