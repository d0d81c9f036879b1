#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Accumulates one pass's plan.
struct PlanBuilder {
    let now: Date
    /// When the rows were read: what they say of their agents is as of this instant.
    let rowsReadAt: Date
    var actions: [Action] = []
    var waitingOnCloud = false
    var nextWakeUp: Date?
    var identityLookups: [UUID] = []

    mutating func wake(at date: Date) {
        guard date > now else { return }
        if let current = nextWakeUp, current <= date { return }
        nextWakeUp = date
    }

    mutating func update(_ row: ServerRecord, to state: DaemonState) {
        guard state != row.state else { return }
        actions.append(.update(row: row.id, expectedRevision: row.revision, from: row.state, to: state))
    }

    /// The row's next step needs its absence confirmed first: look its identity up.
    mutating func lookUp(_ row: UUID) {
        identityLookups.append(row)
        waitingOnCloud = true
    }

    var plan: Plan {
        Plan(actions: actions, waitingOnCloud: waitingOnCloud, nextWakeUp: nextWakeUp, identityLookups: identityLookups)
    }
}
