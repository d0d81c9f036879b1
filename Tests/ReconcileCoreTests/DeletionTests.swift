import Foundation
import ReconcileCore
import Testing

/// Rows with `delete_requested_at` set, in every status, against what the list shows.
@Suite("Deletion")
struct DeletionTests {
    /// Every status a row can be asked to delete from (deleted is history, tested separately).
    static let deletable: [ServerStatus] = [.creating, .provisioning, .initializing, .active, .failed, .deleting]

    /// A row asked to be deleted. Creating rows have no recorded droplet (their settled create
    /// shows up only through the identity tag); the others record droplet 100.
    static func subject(_ status: ServerStatus, nextAttemptAt: Date? = nil) -> ServerRecord {
        row(
            status: status,
            dropletID: status == .creating ? nil : 100,
            ipv4: status == .creating ? nil : ipv4,
            lastError: status == .failed ? "retries exhausted" : nil,
            attemptedAt: seconds(-900),
            attempts: 1,
            nextAttemptAt: nextAttemptAt,
            deleteRequested: true
        )
    }

    @Test(
        "a live droplet → destroy it, row deleting",
        arguments: deletable,
        [DropletStatus.new, .active, .off, .archive]
    )
    func liveDroplet(status: ServerStatus, dropletStatus: DropletStatus) throws {
        let r = Self.subject(status)
        let plan = decide([r], observe([droplet(100, for: 1, status: dropletStatus)]))
        #expect(plan.destroys == [Destroy(dropletID: 100, reason: .deleteRequested(row: r.id))])
        #expect(plan.after(r).status == .deleting)
        #expect(plan.after(r).dropletID == (status == .creating ? nil : 100))
        #expect(plan.updates.count == (status == .deleting ? 0 : 1))
        #expect(plan.creates.isEmpty)
        #expect(plan.waitingOnCloud)
        #expect(plan.orphanIDs.isEmpty)
    }

    @Test("two droplets with the row's identity → both destroyed as requested", arguments: deletable)
    func twoDroplets(status: ServerStatus) {
        let r = Self.subject(status)
        let plan = decide([r], observe([droplet(100, for: 1), droplet(101, for: 1, createdAt: seconds(-60))]))
        #expect(Set(plan.destroys.map(\.dropletID)) == [100, 101])
        #expect(plan.destroys.allSatisfy { $0.reason == .deleteRequested(row: r.id) })
        #expect(plan.after(r).status == .deleting)
    }

    @Test(
        "the recorded droplet without the fleet tag (adopted legacy droplet) → never destroyed; the row fails saying why",
        arguments: [ServerStatus.provisioning, .active, .failed, .deleting]
    )
    func untaggedRecordedDroplet(status: ServerStatus) {
        let r = Self.subject(status)
        let plan = decide([r], observe([droplet(100, for: nil, fleet: false)]))
        #expect(plan.destroys.isEmpty)
        #expect(plan.after(r).status == .failed)
        #expect(plan.after(r).lastError?.contains("no citrus-host tag") == true)
    }

    @Test(
        "the recorded droplet answered 404 → deleted, lastError cleared",
        arguments: deletable.filter { $0 != .creating }
    )
    func goneVia404(status: ServerStatus) throws {
        let r = Self.subject(status)
        let plan = decide([r], observe([], gone: [100]))
        let after = try #require(plan.written(r))
        #expect(after.status == .deleted)
        #expect(after.lastError == nil)
        #expect(after.dropletID == 100, "the row is history; it keeps the id")
        #expect(plan.destroys.isEmpty && plan.creates.isEmpty)
    }

    @Test(
        "nothing listed and nothing recorded → deleted at once",
        arguments: [ServerStatus.creating, .failed, .deleting]
    )
    func nothingAnywhere(status: ServerStatus) {
        var r = Self.subject(status)
        r.state.dropletID = nil
        let plan = decide([r], observe([]))
        #expect(plan.after(r).status == .deleted)
        #expect(plan.destroys.isEmpty && plan.creates.isEmpty)
        #expect(!plan.waitingOnCloud)
    }

    @Test(
        "recorded droplet neither listed nor fetched → deleting, nothing destroyed, not deleted",
        arguments: [ServerStatus.provisioning, .active, .failed, .deleting]
    )
    func recordedUnknown(status: ServerStatus) {
        let r = Self.subject(status)
        let plan = decide([r], observe([]))
        #expect(plan.after(r).status == .deleting, "only a 404 proves the droplet gone")
        #expect(plan.destroys.isEmpty)
        #expect(plan.waitingOnCloud)
    }

    @Test("uncertain create (unsettled) → deleting, nothing destroyed, wake when it settles")
    func uncertainCreate() {
        let r = row(status: .creating, attemptedAt: seconds(-15), attempts: 1, deleteRequested: true)
        let plan = decide([r], observe([]))
        #expect(plan.after(r).status == .deleting)
        #expect(plan.destroys.isEmpty && plan.creates.isEmpty)
        #expect(plan.waitingOnCloud)
        #expect(plan.nextWakeUp == seconds(45))
    }

    @Test("uncertain create, once settled with nothing listed → deleted")
    func settledCreate() {
        let r = row(status: .deleting, attemptedAt: seconds(-120), attempts: 1, deleteRequested: true)
        let plan = decide([r], observe([]))
        #expect(plan.after(r).status == .deleted)
    }

    @Test("uncertain create whose droplet appears → destroyed", arguments: [seconds(-15), seconds(-120)])
    func uncertainCreateThenDroplet(attemptedAt: Date) {
        let r = row(status: .deleting, attemptedAt: attemptedAt, attempts: 1, deleteRequested: true)
        let plan = decide([r], observe([droplet(100, for: 1, status: .new)]))
        #expect(plan.destroys == [Destroy(dropletID: 100, reason: .deleteRequested(row: r.id))])
        #expect(plan.after(r).status == .deleting)
    }

    @Test("a row in backoff (a destroy was just issued) → no destroy again yet", arguments: deletable)
    func backoffHoldsDestroys(status: ServerStatus) {
        let r = Self.subject(status, nextAttemptAt: seconds(12))
        let plan = decide([r], observe([droplet(100, for: 1)]))
        #expect(plan.destroys.isEmpty)
        #expect(plan.after(r).status == .deleting)
        #expect(plan.nextWakeUp == seconds(12))
        #expect(plan.waitingOnCloud)
    }

    @Test("after the backoff, a still-listed droplet is destroyed again (DELETE is idempotent)")
    func reissueAfterBackoff() {
        let r = row(
            status: .deleting,
            dropletID: 100,
            attemptedAt: seconds(-900),
            failures: 1,
            nextAttemptAt: seconds(-1),
            deleteRequested: true
        )
        let plan = decide([r], observe([droplet(100, for: 1)]))
        #expect(plan.destroys.map(\.dropletID) == [100])
        #expect(plan.updates.isEmpty)
    }

    @Test("a droplet another live row records is never destroyed for this row")
    func neverDestroyAnotherRowsDroplet() {
        let r = row(1, status: .active, dropletID: 100, deleteRequested: true)
        let other = row(2, status: .active, dropletID: 101, ipv4: ipv4, ipv6: ipv6)
        // 101 carries row 1's identity (an operator re-pointed row 2 at it).
        let plan = decide([r, other], observe([droplet(100, for: 1), droplet(101, for: 1)]))
        #expect(plan.destroys.map(\.dropletID) == [100])
    }

    @Test("deletion wins over status following: a new droplet is not 'provisioning'")
    func deletionBeforeBinding() {
        let r = row(status: .creating, attemptedAt: seconds(-5), attempts: 1, deleteRequested: true)
        let plan = decide([r], observe([droplet(100, for: 1, status: .new)]))
        #expect(plan.after(r).status == .deleting)
        #expect(plan.adoptions.isEmpty)
    }

    @Test("a creating row never created, asked to delete → deleted without any request")
    func neverCreated() {
        let r = row(status: .creating, deleteRequested: true)
        let plan = decide([r], observe([]))
        #expect(plan.after(r).status == .deleted)
        #expect(plan.creates.isEmpty && plan.destroys.isEmpty)
    }
}

/// A deleted row is history; a failed row waits for an operator.
@Suite("History and failure")
struct TerminalRowTests {
    @Test(
        "a deleted row yields no action whatever the list shows",
        arguments: [false, true],
        [Optional<DropletStatus>.none, .new, .active, .off]
    )
    func deletedRow(deleteRequested: Bool, dropletStatus: DropletStatus?) {
        let r = row(status: .deleted, dropletID: 100, attemptedAt: seconds(-900), deleteRequested: deleteRequested)
        let droplets = dropletStatus.map { [droplet(100, for: 1, status: $0)] } ?? []
        let plan = decide([r], observe(droplets, gone: [7]))
        #expect(plan.updates.isEmpty && plan.creates.isEmpty)
        // A droplet still wearing a deleted row's identity is an orphan, reported, not destroyed.
        #expect(plan.orphanIDs == (dropletStatus == nil ? [] : [100]))
        #expect(plan.destroys.isEmpty)
        #expect(!plan.waitingOnCloud)
    }

    @Test(
        "a failed row keeps its live droplet, duplicates included; nothing is written or destroyed",
        arguments: [DropletStatus.new, .active, .off]
    )
    func failedRowWithDroplet(dropletStatus: DropletStatus) {
        let r = row(status: .failed, dropletID: 100, lastError: "retries exhausted")
        let plan = decide([r], observe([droplet(100, for: 1, status: dropletStatus), droplet(101, for: 1)]))
        #expect(plan.actions.isEmpty)
        #expect(!plan.waitingOnCloud)
    }

    @Test("a failed row with nothing, or a gone droplet, is not recreated")
    func failedRowWithoutDroplet() {
        let r = row(status: .failed, dropletID: 100, lastError: DecisionMessages.vanished(droplet: 100))
        #expect(decide([r], observe([], gone: [100])).actions.isEmpty)
        #expect(decide([r], observe([])).actions.isEmpty)
        let never = row(status: .failed, lastError: "name rejected by DigitalOcean (422)")
        #expect(decide([never], observe([])).actions.isEmpty)
    }
}
