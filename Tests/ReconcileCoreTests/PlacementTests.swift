import Foundation
import ReconcileCore
import Testing

/// A droplet DigitalOcean accepted and then could not place (gone, 404, before it was ever
/// active): the platform still wants the server, so its row is created again, exactly once, up to
/// a bound (issue 25, "a way back from failed").
@Suite("Failed placements")
struct PlacementTests {
    /// A row whose create was accepted ten minutes ago as droplet 100, which the last read showed
    /// still `new`.
    static func provisioning(
        seen: Bool = true,
        attemptedAt: Date = seconds(-600),
        failedPlacements: Int = 0
    )
        -> ServerRecord
    {
        var r = row(status: .provisioning, dropletID: 100, attemptedAt: attemptedAt, attempts: 1 + failedPlacements)
        r.state.failedPlacements = failedPlacements
        r.state.observed = seen ? DropletFacts(name: r.name, region: r.region, size: r.size, image: r.image) : nil
        return r
    }

    @Test("a droplet seen new, then 404: its placement failed, and the row is created again, once")
    func createdAgain() throws {
        let r = Self.provisioning()
        let observation = observe([], gone: [100])
        let plan = decide([r], observation)
        let after = try #require(plan.written(r))
        #expect(after.status == .creating)
        #expect(after.dropletID == nil && after.ipv4 == nil && after.observed == nil)
        #expect(after.failedPlacements == 1)
        #expect(after.createAttempts == r.state.createAttempts, "the attempt that made droplet 100 stays counted")
        let message = try #require(after.lastError)
        #expect(message.contains("droplet 100") && message.contains("placement 2 of 3"), "\(message)")
        #expect(plan.creates.isEmpty, "the row is written back to creating first; the create follows")

        // The next look: nothing carries the identity, the old create long settled: one create.
        var again = r
        again.state = after
        let next = decide([again], observation)
        #expect(next.creates.count == 1)
        #expect(next.creates.first?.order.rowID == r.id)
    }

    @Test(
        "a droplet never seen that answers 404 inside its create's settle period waits: the lookup may lag the create"
    )
    func unseenWaitsForTheSettlePeriod() {
        let r = Self.provisioning(seen: false, attemptedAt: seconds(-5))
        let plan = decide([r], observe([], gone: [100]))
        #expect(plan.written(r) == nil, "\(String(describing: plan.written(r)))")
        #expect(plan.creates.isEmpty)
        #expect(plan.waitingOnCloud)
        #expect(plan.nextWakeUp != nil)
    }

    @Test("a droplet never seen that still answers 404 after the settle period: its placement failed")
    func unseenAfterTheSettlePeriod() {
        let r = Self.provisioning(seen: false, attemptedAt: seconds(-600))
        #expect(decide([r], observe([], gone: [100])).written(r)?.status == .creating)
    }

    @Test("the last placement the bound allows fails the row with the count and what to do")
    func boundedPlacements() throws {
        let r = Self.provisioning(failedPlacements: 2)
        let plan = decide([r], observe([], gone: [100]))
        let after = try #require(plan.written(r))
        #expect(after.status == .failed)
        #expect(after.failedPlacements == 3)
        #expect(after.dropletID == 100, "the row keeps the last droplet's id as evidence")
        let message = try #require(after.lastError)
        #expect(message.contains("3 droplets") && message.contains("retry"), "\(message)")
        #expect(plan.creates.isEmpty)
    }

    @Test("a droplet that was active and then vanished is an out-of-band destroy, never placed again")
    func activeThenGoneFails() {
        var r = row(status: .active, dropletID: 100, ipv4: "198.51.100.1", attemptedAt: seconds(-900), attempts: 1)
        r.state.observed = DropletFacts(name: r.name)
        let plan = decide([r], observe([], gone: [100]))
        #expect(plan.written(r)?.status == .failed)
        #expect(plan.creates.isEmpty)
    }

    @Test("a placement failure is journaled as placement_failed, with the droplet and the next placement")
    func auditEntry() throws {
        let r = Self.provisioning()
        let after = try #require(decide([r], observe([], gone: [100])).written(r))
        let change = Transition(row: r, from: r.state, to: after, at: seconds(0))
        let entry = try #require(change.events.first)
        #expect(entry.kind == .placementFailed)
        #expect(entry.dropletID == 100)
        #expect(
            entry.message.contains("creating again") && entry.message.contains("placement 2 of 3"),
            "\(entry.message)"
        )
    }
}
