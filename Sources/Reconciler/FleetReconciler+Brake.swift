#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import Timekeeping

// The destroy brake (design.md, identity rule 8): before a full pass acts, its destroys are
// counted against the budget (DestroyBudget) with what the database says was sent in the last
// hour and what this replica sent itself (a send whose answer was lost is not in the audit trail,
// yet may have happened). Destroys past the budget are held; everything else in the plan goes on.
// The journal says when braking starts and when it ends, once each.

/// The brake as the last full pass left it, for STATUS=, `/metrics` and tests.
public struct DestroyBrakeState: Sendable, Hashable {
    /// When braking started, by the database's clock.
    public var since: Date
    /// Destroys held back by the last pass.
    public var waiting: Int
    /// Destroys counted in the hour, and the limit, as of the last pass.
    public var counted: Int
    public var limit: Int

    /// "destroys braked: 30 wait (20 of 20 in the last hour)".
    public var oneLine: String {
        "destroys braked: \(waiting) wait (\(counted) of \(limit) in the last hour; citrus-reconciler destroys allow --until 2h)"
    }
}

extension FleetReconciler {
    /// The plan with the destroys the budget holds back taken out; records and reports the brake.
    func brakeDestroys(in plan: Plan, liveRows: Int, isFullView: Bool) async -> Plan {
        let now = databaseNow()
        destroysSent = destroysSent.filter { now.timeIntervalSince($0.value) < DestroyBudget.window.timeInterval }
        let destroys = plan.actions.filter { action in
            if case .destroy(_, .duplicate) = action { return false }
            return DestroyClearance.isBudgeted(action)
        }
        // A new leader reads the brake's record once even with nothing to destroy: a brake the
        // last leader left on is this one's to end.
        guard !destroys.isEmpty || brake != nil || !brakeReviewed else { return plan }

        let ledger: DestroyLedger
        do {
            ledger = try await repository.destroyLedger()
        } catch {
            // Without the count, nothing the budget counts is sent: the next pass asks again.
            logger.warning("destroys wait this pass: the destroy budget's count could not be read: \(error)")
            let held = Set(destroys)
            return Plan(
                actions: plan.actions.filter { !held.contains($0) },
                waitingOnCloud: plan.waitingOnCloud,
                nextWakeUp: plan.nextWakeUp,
                identityLookups: plan.identityLookups
            )
        }
        brakeReviewed = true
        // Braked by an earlier leader (or this daemon before a restart): taken over, not
        // announced again, and judged by this replica's budget (a raised one lets them go).
        let inherited = brake == nil ? ledger.brakedSince : nil
        let counted = ledger.destroyedInHour.union(destroysSent.keys)
        let clearance = DestroyClearance.decide(
            destroys,
            budget: configuration.destroyBudget,
            counted: counted,
            liveRows: liveRows,
            allowedUntil: ledger.allowedUntil,
            braked: brake != nil,
            now: now
        )
        let heldOrphans = clearance.held.count { $0.rowID == nil }
        // Between full lists a pass sees no orphans: those the last full view held still wait.
        if isFullView { orphansHeld = heldOrphans }
        let waiting = clearance.held.count - heldOrphans + orphansHeld

        if waiting > 0, brake == nil {
            brake = DestroyBrakeState(
                since: inherited ?? now,
                waiting: waiting,
                counted: clearance.counted + clearance.clearedCounting,
                limit: clearance.limit
            )
            if inherited == nil {
                await announceBrake(clearance, waiting: waiting, orphans: orphansHeld, liveRows: liveRows)
            }
        } else if inherited != nil {
            await announceRelease(clearance, ledger: ledger, released: destroys.count)
        } else if var current = brake {
            if clearance.allowedUntil != nil || (waiting == 0 && (isFullView || clearance.roomLeft > 0)) {
                brake = nil
                await announceRelease(clearance, ledger: ledger, released: destroys.count)
            } else {
                current.waiting = waiting
                current.counted = clearance.counted + clearance.clearedCounting
                current.limit = clearance.limit
                brake = current
            }
        }
        ReconcilerMetrics.destroyBrake(braked: brake != nil, waiting: brake?.waiting ?? 0)

        // A shutdown cleared takes its destroy's place once it is sent: its intent's write records
        // a destroy_sending entry, which the next pass's count (any replica's) holds.
        let held = Set(clearance.held)
        guard !held.isEmpty else { return plan }
        return Plan(
            actions: plan.actions.filter { !held.contains($0) },
            waitingOnCloud: plan.waitingOnCloud,
            nextWakeUp: plan.nextWakeUp,
            identityLookups: plan.identityLookups
        )
    }

    /// A new leader's first look: the destroys DigitalOcean accepted lately, whoever sent them,
    /// count as gone while a list may still show them (a deleted droplet lists for seconds more),
    /// so a row inserted meanwhile with a departing droplet's identity does not adopt it. The
    /// replica that sent them knew as much (`recentDestroys`); the audit trail tells the next one.
    func takeOverRecentDestroys() async {
        guard let ledger = try? await repository.destroyLedger() else { return }
        let horizon = databaseNow().adding(.zero - configuration.destroyRepeatInterval)
        for (droplet, at) in ledger.acceptedAt where at > horizon {
            recentDestroys[droplet] = max(recentDestroys[droplet] ?? at, at)
        }
    }

    private func announceBrake(_ clearance: DestroyClearance, waiting: Int, orphans: Int, liveRows: Int) async {
        let budget = configuration.destroyBudget
        await audit.emit(
            AuditEvent(
                kind: .destroysBraked,
                at: databaseNow(),
                message:
                    "destroys braked: \(clearance.counted + clearance.clearedCounting) destroys sent in the last hour "
                    + "(\(clearance.clearedCounting) of them just now), the budget allows "
                    + "\(clearance.limit) (\(budget.perHour) an hour, \(budget.percentOfFleet)% of a fleet of "
                    + "\(liveRows + clearance.counted), never below \(budget.floorPerHour)); \(waiting) destroys wait "
                    + "(\(waiting - orphans) rows' deletions, \(orphans) orphans) and none is sent until an operator "
                    + "allows them; creates and everything else go on. If the deletions are wanted: "
                    + "citrus-reconciler destroys allow --until 2h --reason '…' (or raise --destroy-budget-per-hour "
                    + "and --destroy-budget-percent and restart); if not, clear delete_requested_at on the rows"
            )
        )
    }

    private func announceRelease(_ clearance: DestroyClearance, ledger: DestroyLedger, released: Int) async {
        let why: String
        if let until = clearance.allowedUntil {
            why =
                "an operator allowed destroys until \(until.formatted(.iso8601))"
                + (ledger.allowedBy.map { " (\($0))" } ?? "") + "; \(released) destroys go now"
        } else if released > 0 {
            why =
                "the hour has room under this replica's budget (\(configuration.destroyBudget.description)); "
                + "\(released) destroys go now"
        } else {
            why = "no destroy waits any more"
        }
        await audit.emit(
            AuditEvent(
                kind: .destroysReleased,
                at: databaseNow(),
                message:
                    "destroys no longer braked: \(why) (\(clearance.counted) destroyed in the last hour, budget \(clearance.limit))"
            )
        )
    }
}
