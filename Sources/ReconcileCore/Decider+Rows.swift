#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Timekeeping

// The body of `Decider.decide`. One pass over the rows and one over the droplets, with dictionary
// look-ups in between: O(rows + droplets). The loop's benchmark (10,000 rows × 10,000 droplets,
// release build, budget 20 ms) measures `Decider.decide` as a whole; keep this linear.

extension Decider {
    func reconcile(
        rows: [ServerRecord],
        observation: Observation,
        now: Date,
        rowsReadAt: Date,
        orphansFirstSeen: [Int64: Date]
    ) -> Plan {
        let index = ObservationIndex(rows: rows, observation: observation)
        var builder = PlanBuilder(now: now, rowsReadAt: min(rowsReadAt, now))
        // Fleet droplets a live row claims (identity or recorded id); the rest are orphans.
        var claimed = [Bool](repeating: false, count: observation.droplets.count)
        var waitingForProjects: [String: [ProjectAssignment.Member]] = [:]
        for position in rows.indices where rows[position].state.status != .deleted {
            let actionsBefore = builder.actions.count
            let identityGroup = index.fleetByIdentity[ObservationIndex.RowKey(rows[position].id)]
            switch identityGroup {
            case nil: break
            case .one(let position): claimed[position] = true
            case .many(let positions): for position in positions { claimed[position] = true }
            }
            if let dropletID = rows[position].state.dropletID, let position = index.byID[dropletID] {
                claimed[position] = true
            }
            decide(
                row: rows[position],
                identityGroup: identityGroup,
                index: index,
                observation: observation,
                into: &builder
            )
            // A row the pass writes or sends for is assigned by a later pass, at its new revision.
            if builder.actions.count == actionsBefore, let project = pendingProject(of: rows[position], index: index) {
                let row = rows[position]
                waitingForProjects[project, default: []].append(
                    .init(
                        rowID: row.id,
                        dropletID: row.state.dropletID ?? 0,
                        expectedRevision: row.revision,
                        state: row.state
                    )
                )
            }
        }
        assignProjects(waitingForProjects, into: &builder)
        // Between full lists the observation holds only what belongs to rows: nothing is an orphan.
        if observation.isFullView {
            decideOrphans(index: index, claimed: claimed, orphansFirstSeen: orphansFirstSeen, into: &builder)
        }
        return builder.plan
    }

    // MARK: Rows

    private func decide(
        row: ServerRecord,
        identityGroup: ObservationIndex.IdentityGroup?,
        index: ObservationIndex,
        observation: Observation,
        into plan: inout PlanBuilder
    ) {
        let state = row.state
        let recorded = index.recorded(for: row, gone: observation.goneDropletIDs)
        let identityDroplets = index.identityDroplets(identityGroup)
        // Per-row backoff: no create or destroy for this row before this instant.
        let backoffUntil = state.nextAttemptAt.flatMap { $0 > plan.now ? $0 : nil }
        let settleDeadline = settleDeadline(of: state)
        // A create whose outcome nobody has seen yet: the droplet may still appear in a list.
        let createUnsettled =
            state.dropletID == nil && identityDroplets.isEmpty
            && settleDeadline.map { observation.seenAt(row.id) < $0 } ?? false

        if row.deleteRequestedAt != nil {
            decideDeletion(
                row: row,
                recorded: recorded,
                observation: observation,
                identityDroplets: identityDroplets,
                index: index,
                backoffUntil: backoffUntil,
                createUnsettled: createUnsettled,
                settleDeadline: settleDeadline,
                into: &plan
            )
            return
        }
        // A failed row waits for an operator: it keeps whatever it is bound to.
        if state.status == .failed {
            // Failed because its stored columns are unusable: record why, once, in the row itself.
            if let stored = row.storedState, stored != state {
                plan.actions.append(.update(row: row.id, expectedRevision: row.revision, from: stored, to: state))
            }
            return
        }

        // The droplet the row keeps: the one with history, the oldest of those it records or that
        // carry its identity. A droplet newer than another with the same identity is never kept
        // over it, even when the row records the newer one (a create answered after an older,
        // uncertain one had already succeeded). While the recorded droplet is unknown, nothing is
        // decided on identity alone: it may be the one to keep.
        let kept: ObservedDroplet?
        switch recorded {
        case .observed(let droplet):
            kept =
                identityDroplets.contains(where: { $0.id == droplet.id })
                ? identityDroplets.min(by: Self.older) : ([droplet] + identityDroplets).min(by: Self.older)
        case .none, .gone: kept = identityDroplets.min(by: Self.older)
        case .unknown: kept = nil
        }

        // A list of several pages may be minutes old when it ends (it is read over several passes):
        // a droplet it shows may be gone since. Before a row is bound to a droplet it does not
        // record, or a duplicate is destroyed, its identity is looked up, and that answer decides.
        // A row that records nothing and whose one droplet is on a page read in this very pass
        // needs no lookup: that page is as fresh as the lookup's answer would be. So a fleet is
        // adopted a slice of pages at a time, for the price of its list.
        let confirmedInBulk: Bool
        if case .none = recorded, identityDroplets.count == 1 {
            confirmedInBulk = observation.freshlyRead.contains(identityDroplets[0].id)
        } else {
            confirmedInBulk = false
        }
        if kept != nil, !observation.listIsSnapshot, !observation.identitiesLookedUp.contains(row.id),
            !confirmedInBulk, identityDroplets.contains(where: { $0.id != state.dropletID })
        {
            plan.lookUp(row.id)
            return
        }

        if let kept {
            let duplicates = identityDroplets.filter {
                $0.id != kept.id && !index.isRecordedByAnother($0, than: row.id)
            }
            bind(row: row, to: kept, hasDuplicates: !duplicates.isEmpty, observation: observation, into: &plan)
            if !duplicates.isEmpty {
                if let backoffUntil {
                    plan.wake(at: backoffUntil)
                } else {
                    for duplicate in duplicates {
                        let reason = DestroyReason.duplicate(
                            row: row.id,
                            kept: kept.id,
                            keptCreatedAt: kept.createdAt,
                            duplicateCreatedAt: duplicate.createdAt
                        )
                        plan.actions.append(.destroy(dropletID: duplicate.id, reason: reason))
                    }
                }
            }
            return
        }

        switch recorded {
        case .unknown:
            // Only a 404 proves a droplet gone; look again on the next pass.
            plan.waitingOnCloud = true
        case .gone(let dropletID) where state.status == .provisioning:
            decidePlacementFailure(
                row: row,
                droplet: dropletID,
                settleDeadline: settleDeadline,
                observation: observation,
                into: &plan
            )
        case .gone(let dropletID):
            var target = state
            target.status = .failed
            target.lastError = DecisionMessages.vanished(droplet: dropletID)
            plan.update(row, to: target)
        case .none where createUnsettled:
            // Only absence has to wait for the settle period. Its identity is looked up every
            // pass meanwhile: a droplet it finds is the create's, and is bound at once.
            plan.waitingOnCloud = true
            if let settleDeadline { plan.wake(at: settleDeadline) }
            if !observation.identitiesLookedUp.contains(row.id) { plan.lookUp(row.id) }
        case .none where state.status == .creating:
            // No attempt yet, or one whose absence a look taken after the settle period confirms.
            // Nothing is created on a view that may have missed a droplet (a list of several
            // pages): the identity is looked up first. Transient trouble never fails a row.
            if state.createAttemptedAt != nil { plan.waitingOnCloud = true }
            if let backoffUntil {
                plan.wake(at: backoffUntil)
            } else if !observation.confirmsAbsence(of: row.id) {
                plan.lookUp(row.id)
            } else {
                plan.actions.append(.create(order(for: row), expectedRevision: row.revision, state: state))
                plan.waitingOnCloud = true
            }
        case .none where !observation.confirmsAbsence(of: row.id):
            // Nothing fails for want of a droplet on a view that may have missed one.
            plan.lookUp(row.id)
        case .none:
            // provisioning/initializing/active (or deleting without a request) with no droplet to
            // show for it: creating one now could duplicate a server someone still uses.
            var target = state
            target.status = .failed
            target.lastError = DecisionMessages.noDroplet(status: state.status)
            plan.update(row, to: target)
        case .observed:
            preconditionFailure("an observed recorded droplet is always kept")
        }
    }

    /// Follows a bound droplet's status into the row.
    private func bind(
        row: ServerRecord,
        to droplet: ObservedDroplet,
        hasDuplicates: Bool,
        observation: Observation,
        into plan: inout PlanBuilder
    ) {
        let state = row.state
        var target = state
        target.dropletID = droplet.id
        // A row that finds its droplet has left `creating` (and `deleting`, when the request was withdrawn).
        let held: ServerStatus = state.status == .creating || state.status == .deleting ? .provisioning : state.status
        var healthy = false
        switch droplet.status {
        case .new where state.dropletID == droplet.id && state.status.isUp:
            // A droplet never boots again: this is an older look than the one that saw it up (a
            // page of a list read over several passes, before a lookup bound the row). A row's
            // status never moves backwards on the same droplet.
            healthy = true
        case .new:
            target.status = .provisioning
            healthy = true
            plan.waitingOnCloud = true
        case .active:
            healthy = true
            if let ipv4 = droplet.publicIPv4 {
                target.status = .active
                target.ipv4 = ipv4
                target.ipv6 = droplet.publicIPv6
            } else if !state.status.isUp {
                target.status = .provisioning
                plan.waitingOnCloud = true
            }
        // A row that is up whose droplet briefly lists without an address keeps its status and
        // addresses: a list glitch must not take a server out of service.
        case .off:
            // Powered off by this daemon's own resize (the change says so), or out of band (drift
            // says so): either way the server keeps its status.
            target.status = held
            target.lastError = nil
        case .archive:
            target.status = held
            target.lastError = DecisionMessages.archived(droplet: droplet.id)
        case .other:
            target.status = held
            plan.waitingOnCloud = true
        }
        if healthy {
            target.lastError = nil
            // The backoff still paces the destroys of duplicates; otherwise the row is well again.
            if !hasDuplicates {
                target.transientFailures = 0
                target.nextAttemptAt = nil
            }
            if droplet.status == .active, droplet.publicIPv4 != nil {
                followAgent(of: row, droplet: droplet, into: &target, plan: &plan)
            }
        }
        let adopted =
            state.dropletID != droplet.id
            || (state.status == .creating && state.createAttemptedAt == nil)
        var order: DropletActionOrder?
        // Changes to a live row, once its duplicates (if any) are gone.
        if !hasDuplicates, droplet.status == .off || (droplet.status == .active && droplet.publicIPv4 != nil) {
            order = followLiveChanges(of: row, droplet: droplet, observation: observation, into: &target, plan: &plan)
            // A binding is written on its own, now: a step's intent leaves only when the rate
            // budget lets it, and by then the read the binding rests on may be stale. The change
            // is neither sent nor recorded; the next pass starts it on the bound row.
            if adopted, order != nil {
                order = nil
                target.change = state.change
            }
        } else {
            target.observed = DropletFacts(droplet)
        }
        if adopted {
            plan.actions.append(.note(.adopted(row: row.id, droplet: droplet.id)))
        }
        if let order {
            // The step's intent carries the rest of the row's update with it.
            plan.actions.append(.dropletAction(order, expectedRevision: row.revision, from: state, state: target))
        } else {
            plan.update(row, to: target)
        }
    }

    // MARK: Orphans

    private func decideOrphans(
        index: ObservationIndex,
        claimed: [Bool],
        orphansFirstSeen: [Int64: Date],
        into plan: inout PlanBuilder
    ) {
        for position in index.fleet where !claimed[position] {
            let droplet = index.droplets[position]
            plan.actions.append(.note(.orphanSeen(droplet: droplet)))
            guard case .delete(let grace) = configuration.orphanPolicy,
                let firstSeen = orphansFirstSeen[droplet.id]
            else { continue }
            let deadline = firstSeen.adding(grace)
            if plan.now >= deadline {
                plan.actions.append(.destroy(dropletID: droplet.id, reason: .orphan(identity: droplet.identity)))
            } else {
                plan.wake(at: deadline)
            }
        }
    }

    // MARK: Helpers

    /// Until when the row's last create counts as recent: its intent's whole window (the send
    /// window, the request's deadline, the settle period), whenever its answer came.
    public func recentCreateUntil(of state: DaemonState) -> Date? {
        state.createAttemptedAt?.adding(
            configuration.createSendWindow + configuration.createRequestTimeout + configuration.settlePeriod
        )
    }

    /// The instant from which a look proves a create's absence: a settle period after the last
    /// instant the create could have reached DigitalOcean.
    public func settleDeadline(of state: DaemonState) -> Date? {
        CreateIntent(of: state, configuration: configuration)?.reachableUntil.adding(configuration.settlePeriod)
    }

    /// Oldest first; the lower id breaks ties, so every replica keeps the same droplet.
    private static func older(_ a: ObservedDroplet, _ b: ObservedDroplet) -> Bool {
        a.createdAt != b.createdAt ? a.createdAt < b.createdAt : a.id < b.id
    }
}
