import Foundation
import ReconcileCore
import Testing

/// A binding rests on a fresh read (issue 23): a droplet on a page read in this very pass is as
/// fresh as a lookup's answer, so a fleet without droplet ids is adopted for the price of its
/// list; a page read in an earlier pass may show a droplet destroyed since, and a lookup decides.
@Suite("Presence confirmed in bulk")
struct BulkPresenceTests {
    @Test("a row that records nothing is bound to its one droplet on a page read in this pass, with no lookup")
    func freshPageBinds() {
        let rows = [row(1), row(2, attemptedAt: seconds(-7_200))]
        let droplets = [droplet(101, for: 1), droplet(102, for: 2)]
        let plan = decide(rows, observe(droplets, snapshot: false, fresh: [101, 102]))
        #expect(plan.identityLookups.isEmpty)
        #expect(plan.after(rows[0]).dropletID == 101 && plan.after(rows[0]).status == .active)
        #expect(plan.after(rows[1]).dropletID == 102 && plan.after(rows[1]).status == .active)
        #expect(plan.adoptions.count == 2)
        #expect(plan.creates.isEmpty)
    }

    @Test(
        "a droplet on a page read in an earlier pass (it may be destroyed since) binds nothing: its identity is looked up"
    )
    func stalePageAsksForALookup() {
        let rows = [row(1)]
        let plan = decide(rows, observe([droplet(101, for: 1)], snapshot: false, fresh: []))
        #expect(plan.identityLookups == [rowID(1)])
        #expect(plan.updates.isEmpty && plan.creates.isEmpty)
        // The lookup found nothing (destroyed by hand after its page was read): a create, not a binding.
        let lookedUp = decide(rows, observe([], snapshot: false, lookedUp: [rowID(1)]))
        #expect(lookedUp.creates.count == 1)
        #expect(lookedUp.updates.allSatisfy { $0.to.dropletID == nil })
    }

    @Test(
        "two droplets with one identity, both fresh, still wait for a lookup: which to keep and which to destroy is its to say"
    )
    func duplicatesNeedALookup() {
        let rows = [row(1)]
        let droplets = [droplet(101, for: 1), droplet(102, for: 1, createdAt: seconds(-60))]
        let plan = decide(rows, observe(droplets, snapshot: false, fresh: [101, 102]))
        #expect(plan.identityLookups == [rowID(1)])
        #expect(plan.updates.isEmpty && plan.destroys.isEmpty)
    }

    @Test("a row that records another droplet is not rebound on a fresh page alone")
    func recordedElsewhereNeedsALookup() {
        let rows = [row(1, status: .active, dropletID: 100, ipv4: ipv4, ipv6: ipv6)]
        let droplets = [droplet(100, for: nil), droplet(101, for: 1, createdAt: seconds(-7_200))]
        let plan = decide(rows, observe(droplets, snapshot: false, fresh: [100, 101]))
        #expect(plan.identityLookups == [rowID(1)])
        #expect(plan.updates.allSatisfy { $0.to.dropletID == 100 })
    }
}
