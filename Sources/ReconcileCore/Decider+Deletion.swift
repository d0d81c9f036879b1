#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// A row whose deletion was requested: destroy what it is bound to, and mark it deleted only once
// a look proves the droplet gone.

extension Decider {
    func decideDeletion(
        row: ServerRecord,
        recorded: Recorded,
        observation: Observation,
        identityDroplets: [ObservedDroplet],
        index: ObservationIndex,
        backoffUntil: Date?,
        createUnsettled: Bool,
        settleDeadline: Date?,
        into plan: inout PlanBuilder
    ) {
        let state = row.state
        var bound = identityDroplets.filter { !index.isRecordedByAnother($0, than: row.id) }
        var recordedUnknown = false
        var untaggedRecorded: ObservedDroplet?
        switch recorded {
        case .observed(let droplet) where !bound.contains(where: { $0.id == droplet.id }):
            // Design rule 5: droplets without the fleet tag are never touched, not even on request.
            if droplet.isInFleet { bound.append(droplet) } else { untaggedRecorded = droplet }
        case .unknown:
            recordedUnknown = true
        case .observed, .none, .gone:
            break
        }

        var target = state
        if row.isProtected, !bound.isEmpty || recordedUnknown || createUnsettled {
            // Nothing is destroyed, and the row keeps its status: it says why it waits, once.
            target.lastError = DecisionMessages.protectedFromDeletion
            target.transientFailures = 0
            target.nextAttemptAt = nil
            plan.update(row, to: target)
            return
        }
        if let untagged = untaggedRecorded, bound.isEmpty, !createUnsettled {
            target.status = .failed
            target.lastError = DecisionMessages.untaggedNotDestroyed(droplet: untagged.id)
            target.transientFailures = 0
            target.nextAttemptAt = nil
            plan.update(row, to: target)
            return
        }
        if bound.isEmpty && !recordedUnknown && !createUnsettled && !observation.confirmsAbsence(of: row.id) {
            // `deleted` is final: believe the absence only from a view that proves it.
            if target.status != .deleting {
                target.status = .deleting
                target.lastError = nil
            }
            plan.lookUp(row.id)
            plan.update(row, to: target)
            return
        }
        if bound.isEmpty && !recordedUnknown && !createUnsettled {
            target.change = nil
            target.status = .deleted
            target.lastError = nil
            target.transientFailures = 0
            target.nextAttemptAt = nil
            plan.update(row, to: target)
            return
        }

        if target.status != .deleting {
            target.status = .deleting
            target.lastError = nil
        }
        plan.waitingOnCloud = true
        if createUnsettled, let settleDeadline {
            plan.wake(at: settleDeadline)
            // A droplet the create made is destroyed as soon as a lookup finds it.
            if !observation.identitiesLookedUp.contains(row.id) { plan.lookUp(row.id) }
        }
        if !bound.isEmpty {
            if let backoffUntil {
                plan.wake(at: backoffUntil)
            } else if let shutdown = shutdownFirst(row: row, bound: bound, target: target, plan: &plan) {
                // The server is shut down first (or is shutting down): its write goes with it.
                if let shutdown { plan.actions.append(shutdown) } else { plan.update(row, to: target) }
                return
            } else {
                for droplet in bound {
                    plan.actions.append(.destroy(dropletID: droplet.id, reason: .deleteRequested(row: row.id)))
                }
            }
        }
        plan.update(row, to: target)
    }

    /// With `shutdownBeforeDestroy`, the graceful shutdown to send before the row's one droplet is
    /// destroyed (`.some(action)`), or `.some(nil)` while it is shutting down; nil to destroy now:
    /// the droplet is off (or not active), or the wait after `delete_requested_at` is over.
    private func shutdownFirst(
        row: ServerRecord,
        bound: [ObservedDroplet],
        target: DaemonState,
        plan: inout PlanBuilder
    ) -> Action?? {
        guard let wait = configuration.shutdownBeforeDestroy, bound.count == 1, let droplet = bound.first,
            droplet.status == .active, let asked = row.deleteRequestedAt
        else { return nil }
        let deadline = asked.adding(wait)
        guard plan.now < deadline else { return nil }
        plan.wake(at: deadline)
        if droplet.locked || (target.change?.goal == .shutDown && target.change?.sentAt != nil) {
            return .some(nil)
        }
        var shuttingDown = target
        shuttingDown.change = LiveChange(goal: .shutDown)
        return .dropletAction(
            DropletActionOrder(rowID: row.id, dropletID: droplet.id, kind: .shutdown),
            expectedRevision: row.revision,
            from: row.state,
            state: shuttingDown
        )
    }
}
