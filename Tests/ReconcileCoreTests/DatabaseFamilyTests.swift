import Foundation
import ReconcileCore
import Testing

/// Issue 22's core cases: a create recorded outside its row, a status that never moves backwards
/// on the same droplet, the settle period counted from a create's end, and a destroy's last look.
@Suite struct DatabaseFamilyTests {
    let configuration = DecisionConfiguration()

    // MARK: An intent that outlives its row

    /// The create recorded for row 1 five seconds ago, before the row was deleted and inserted again.
    var recorded: CreateIntent {
        CreateIntent(attemptedAt: seconds(-5), reachableUntil: seconds(-5).adding(.seconds(35)), attempt: 1)
    }

    @Test func aRowInsertedAgainDuringItsCreateWaitsForTheDropletInsteadOfCreatingAnother() {
        var reinserted = row(1)
        reinserted.state = reinserted.state.remembering(recorded)
        // The droplet is not listed yet (list lag): a one-page list and a lookup both miss it.
        let plan = decide([reinserted], observe([], lookedUp: [rowID(1)]))
        #expect(plan.creates.isEmpty)
        #expect(plan.waitingOnCloud)
        // Without the record the same look sends a second create: what the record is for.
        #expect(decide([row(1)], observe([], lookedUp: [rowID(1)])).creates.count == 1)
    }

    @Test func aRowInsertedAgainBindsTheDropletItsEarlierCreateMade() {
        var reinserted = row(1)
        reinserted.state = reinserted.state.remembering(recorded)
        let plan = decide([reinserted], observe([droplet(42, for: 1, status: .new, ipv4: nil, ipv6: nil)]))
        #expect(plan.creates.isEmpty)
        #expect(plan.after(reinserted).dropletID == 42)
        #expect(plan.after(reinserted).status == .provisioning)
    }

    @Test func aRecordedIntentWhoseSettlePeriodIsPastAllowsACreateOnAConfirmedAbsence() {
        let old = CreateIntent(attemptedAt: seconds(-600), reachableUntil: seconds(-565), attempt: 1)
        var reinserted = row(1)
        reinserted.state = reinserted.state.remembering(old)
        #expect(decide([reinserted], observe([], lookedUp: [rowID(1)])).creates.count == 1)
    }

    @Test func theSameIntentReadBackFromTheDatabaseIsNotTakenForALaterOne() {
        // This process stamped the intent to the nanosecond; the row holds it to the microsecond.
        let stamped = seconds(-2).addingTimeInterval(0.000_000_4)
        let answeredAt = seconds(-1.9)
        let remembered = CreateIntent(attemptedAt: stamped, reachableUntil: stamped.adding(.seconds(35)), attempt: 1)
        // The row: the same intent, its settle counted from the 500 that answered it.
        let read = row(1, attemptedAt: seconds(-2), reachableUntil: answeredAt, attempts: 1).state
        #expect(read.remembering(remembered) == read, "the answer's settle bound stands")
    }

    @Test func rememberingKeepsTheRowsOwnLaterIntentAndIgnoresBoundRows() {
        let own = row(1, attemptedAt: seconds(-1), attempts: 2)
        #expect(own.state.remembering(recorded) == own.state)
        let bound = row(1, status: .active, dropletID: 42, ipv4: ipv4)
        #expect(bound.state.remembering(recorded) == bound.state)
        let agent = UUID()
        var withAgent = recorded
        withAgent.agentID = agent
        let merged = row(1).state.remembering(withAgent)
        #expect(merged.createAttemptedAt == recorded.attemptedAt)
        #expect(merged.createReachableUntil == recorded.reachableUntil)
        #expect(merged.createAttempts == 1)
        #expect(merged.agentID == agent, "the droplet carries that agent's key")
    }

    // MARK: Status never moves backwards on the same droplet

    @Test func anOlderLookShowingTheDropletBootingDoesNotTakeAnActiveRowBack() {
        let active = row(1, status: .active, dropletID: 42, ipv4: ipv4, ipv6: ipv6)
        let stale = droplet(42, for: 1, status: .new, ipv4: nil, ipv6: nil)
        let plan = decide([active], observe([stale], snapshot: false, lookedUp: [rowID(1)]))
        #expect(plan.after(active).status == .active)
        #expect(plan.after(active).ipv4 == ipv4)
    }

    @Test func aRowBoundToANewDropletStillFollowsItsBoot() {
        let provisioning = row(1, status: .provisioning, dropletID: 42)
        let plan = decide([provisioning], observe([droplet(42, for: 1, status: .new, ipv4: nil, ipv6: nil)]))
        #expect(plan.after(provisioning).status == .provisioning)
        #expect(plan.waitingOnCloud)
        // An active row whose droplet was replaced by a new one (a vanish, a re-bind) follows it.
        let active = row(1, status: .active, dropletID: 41, ipv4: ipv4)
        let replaced = decide([active], observe([droplet(42, for: 1, status: .new, ipv4: nil, ipv6: nil)], gone: [41]))
        #expect(replaced.after(active).status == .provisioning)
    }

    // MARK: The settle period counts from the create's end

    @Test func aCreateAnsweredWithAServerErrorSettlesFromTheAnswerNotTheDeadline() {
        let decider = Decider(configuration: configuration)
        let intent = decider.intent(from: row(1).state, at: seconds(0))
        #expect(intent.createReachableUntil == seconds(35))
        let answered = decider.afterCreate(
            .unknown(reason: "HTTP 500"),
            before: row(1).state,
            intent: intent,
            at: seconds(0.2),
            jitter: 0.5
        )
        #expect(answered.createReachableUntil == seconds(0.2))
        #expect(answered.createAttemptedAt == seconds(0))
        // A request that timed out ends at its deadline: the bound stays the intent's.
        let timedOut = decider.afterCreate(
            .unknown(reason: "timeout"),
            before: row(1).state,
            intent: intent,
            at: seconds(40),
            jitter: 0.5
        )
        #expect(timedOut.createReachableUntil == seconds(35))
    }

    // MARK: A destroy's last look

    @Test func aDestroyForADeletionIsWithdrawnWhenTheOperatorChangedTheirMind() {
        let reason = DestroyReason.deleteRequested(row: rowID(1))
        let asking = row(1, status: .deleting, dropletID: 42, deleteRequested: true)
        #expect(reason.withdrawal(of: 42, claimants: [asking]) == nil)
        let cleared = row(1, status: .active, dropletID: 42)
        #expect(reason.withdrawal(of: 42, claimants: [cleared]) == "the row no longer asks for deletion")
        #expect(reason.withdrawal(of: 42, claimants: []) == "its row is gone")
        let other = row(2, status: .active, dropletID: 42)
        #expect(reason.withdrawal(of: 42, claimants: [asking, other]) == "server web-2 records the droplet")
    }

    @Test func aDuplicatesDestroyIsWithdrawnWhenItsRowNowRecordsIt() {
        let reason = DestroyReason.duplicate(
            row: rowID(1),
            kept: 41,
            keptCreatedAt: seconds(-60),
            duplicateCreatedAt: seconds(-30)
        )
        #expect(reason.withdrawal(of: 42, claimants: [row(1, status: .active, dropletID: 41)]) == nil)
        #expect(reason.withdrawal(of: 42, claimants: [row(1, status: .active, dropletID: 42)]) != nil)
        #expect(reason.withdrawal(of: 42, claimants: []) == "its row is gone")
    }

    @Test func anOrphansDestroyIsWithdrawnWhenARowClaimsItAgain() {
        let reason = DestroyReason.orphan(identity: rowID(1))
        #expect(reason.withdrawal(of: 42, claimants: []) == nil)
        #expect(reason.withdrawal(of: 42, claimants: [row(1)]) == "server web-1 claims it")
        #expect(reason.withdrawal(of: 42, claimants: [row(2, status: .active, dropletID: 42)]) != nil)
        #expect(reason.withdrawal(of: 42, claimants: [row(1, status: .deleted)]) == nil, "deleted rows are history")
    }
}
