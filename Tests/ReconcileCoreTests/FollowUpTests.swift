import Foundation
import ReconcileCore
import Testing

/// Between full lists a pass reads fresh only the rows that are not at rest, and decides about
/// the rest on what the last full list showed. These are the rules that make that safe.
@Suite("Passes between full lists")
struct FollowUpTests {
    let decider = Decider()

    /// A bound row in service with its droplet on, as the row recorded it.
    func settled(_ n: Int = 1, status: ServerStatus = .active) -> (ServerRecord, ObservedDroplet) {
        (row(n, status: status, dropletID: 100 + Int64(n), ipv4: ipv4, ipv6: ipv6), droplet(100 + Int64(n), for: n))
    }

    @Test("a row in service whose droplet is on and as recorded is at rest; so is a failed row")
    func atRest() {
        let (active, droplet) = settled()
        #expect(decider.isAtRest(active, droplet: droplet))
        for status in [ServerStatus.initializing, .unreachable] {
            let (r, d) = settled(status: status)
            #expect(decider.isAtRest(r, droplet: d), "\(status)")
        }
        #expect(decider.isAtRest(row(2, status: .failed, lastError: "x"), droplet: nil))
    }

    @Test(
        "anything on its way somewhere is read fresh: a create, a droplet not yet active, a deletion, a change, a droplet the view lacks or shows locked or renamed"
    )
    func notAtRest() {
        let (active, on) = settled()
        #expect(!decider.isAtRest(row(2), droplet: nil), "a row still to be created")
        #expect(!decider.isAtRest(row(3, status: .provisioning, dropletID: 103), droplet: droplet(103, for: 3)))
        #expect(!decider.isAtRest(active, droplet: nil), "the view lacks its droplet")
        #expect(!decider.isAtRest(active, droplet: droplet(101, for: 1, status: .new)))
        #expect(!decider.isAtRest(active, droplet: droplet(101, for: 1, ipv4: nil)))
        var locked = on
        locked.locked = true
        #expect(!decider.isAtRest(active, droplet: locked), "a droplet busy with an action")
        #expect(!decider.isAtRest(active, droplet: droplet(101, for: 1, name: "renamed-by-hand")))
        var deleting = active
        deleting.deleteRequestedAt = seconds(-1)
        #expect(!decider.isAtRest(deleting, droplet: on))
        var renamed = active
        renamed.name = "web-1-new"
        #expect(!decider.isAtRest(renamed, droplet: on), "the operator renamed the row")
        var changing = active
        changing.state.change = LiveChange(goal: .rename(to: "web-1"))
        #expect(!decider.isAtRest(changing, droplet: on))
        #expect(!decider.isAtRest(active, droplet: droplet(999, for: 1)), "the view shows another droplet")
    }

    @Test("drift the row already records is at rest; drift it does not record yet is not")
    func recordedDrift() {
        var (active, _) = settled()
        let moved = ObservedDroplet(
            id: 101,
            name: "web-1",
            status: .active,
            tags: [FleetTags.fleet, FleetTags.identity(for: rowID(1))],
            createdAt: seconds(-1_800),
            publicIPv4: ipv4,
            publicIPv6: ipv6,
            region: "sfo3"
        )
        active.state.observed = DropletFacts(moved)
        #expect(!decider.isAtRest(active, droplet: moved), "drift not yet recorded")
        // What a pass on this droplet records, the next pass finds at rest.
        let plan = decide([active], observe([moved]))
        let recorded = plan.updates.first?.to
        #expect(recorded?.drift != nil)
        if let recorded { active.state = recorded }
        #expect(decider.isAtRest(active, droplet: moved))
    }

    @Test("between full lists nothing is an orphan, and nothing is destroyed as one")
    func noOrphansBetweenFullLists() {
        var configuration = DecisionConfiguration()
        configuration.orphanPolicy = .delete(grace: .seconds(60))
        let stray = droplet(555, for: 99)
        let firstSeen: [Int64: Date] = [555: seconds(-3_600)]
        let full = decide([], observe([stray]), configuration: configuration, orphansFirstSeen: firstSeen)
        #expect(full.destroys.map(\.dropletID) == [555])
        var between = observe([stray], snapshot: false)
        between.isFullView = false
        let targeted = decide([], between, configuration: configuration, orphansFirstSeen: firstSeen)
        #expect(targeted.actions.isEmpty)
    }

    @Test("an uncertain create's identity is looked up every pass within its settle period")
    func positiveEvidenceIsSought() {
        let uncertain = row(1, attemptedAt: seconds(-10))
        let plan = decide([uncertain], observe([], snapshot: false))
        #expect(plan.creates.isEmpty)
        #expect(plan.identityLookups == [rowID(1)])
        #expect(plan.waitingOnCloud)
        #expect(plan.nextWakeUp == seconds(50))
    }

    @Test("a lookup that finds the uncertain create's droplet binds it at once, inside the settle period")
    func positiveEvidenceBindsAtOnce() {
        let uncertain = row(1, attemptedAt: seconds(-10))
        let found = droplet(700, for: 1, status: .new, createdAt: seconds(-9))
        let plan = decide([uncertain], observe([found], snapshot: false, lookedUp: [rowID(1)]))
        #expect(plan.creates.isEmpty)
        #expect(plan.updates.first?.to.dropletID == 700)
        #expect(plan.updates.first?.to.status == .provisioning)
        #expect(plan.notes.contains(.adopted(row: rowID(1), droplet: 700)))
    }

    @Test("absence still waits: a lookup inside the settle period that finds nothing creates nothing")
    func absenceWaits() {
        let uncertain = row(1, attemptedAt: seconds(-10))
        var observation = observe([], listedAt: seconds(-1), snapshot: false, lookedUp: [rowID(1)])
        observation.lookupsBeganAt = seconds(-1)
        let plan = decide([uncertain], observation)
        #expect(plan.creates.isEmpty)
        #expect(plan.updates.isEmpty)
    }

    @Test(
        "a lookup that begins after the settle period proves absence, even when the look it belongs to began before",
        arguments: [(-1.0, true), (-71.0, false)]
    )
    func lookupTimeCounts(lookupAt: Double, creates: Bool) {
        // Attempted 80 s ago: its settle period (60 s after the attempt) ended 20 s ago.
        let uncertain = row(1, attemptedAt: seconds(-80))
        var observation = observe([], listedAt: seconds(-75), snapshot: false, lookedUp: [rowID(1)])
        observation.lookupsBeganAt = seconds(lookupAt)
        let plan = decide([uncertain], observation)
        #expect(plan.creates.count == (creates ? 1 : 0))
        #expect(observation.seenAt(rowID(1)) == max(seconds(-75), seconds(lookupAt)))
        #expect(observation.seenAt(rowID(2)) == seconds(-75), "a row not looked up was seen when the look began")
    }

    @Test(
        "a list of several pages decides no adoption and no duplicate on its own: the identity is looked up first, and that answer decides"
    )
    func presenceInALongListIsConfirmed() {
        // The row records 700; the list also shows an older droplet with its identity, which may
        // have been destroyed since its page was read.
        let bound = row(1, status: .active, dropletID: 700, ipv4: ipv4, ipv6: ipv6)
        let recorded = droplet(700, for: 1, createdAt: seconds(-60))
        let older = droplet(600, for: 1, createdAt: seconds(-600))
        let fromList = decide([bound], observe([recorded, older], snapshot: false))
        #expect(fromList.identityLookups == [rowID(1)])
        #expect(fromList.destroys.isEmpty && fromList.updates.isEmpty)
        // The lookup shows only the recorded one: nothing to destroy, nothing to rebind.
        let confirmed = decide([bound], observe([recorded], snapshot: false, lookedUp: [rowID(1)]))
        #expect(confirmed.destroys.isEmpty)
        #expect(confirmed.identityLookups.isEmpty)
        // A row with nothing recorded adopts only what a lookup (or a one-page list) shows.
        let fresh = row(2)
        let existing = droplet(800, for: 2)
        #expect(decide([fresh], observe([existing], snapshot: false)).identityLookups == [rowID(2)])
        #expect(decide([fresh], observe([existing])).notes.contains(.adopted(row: rowID(2), droplet: 800)))
    }
}
