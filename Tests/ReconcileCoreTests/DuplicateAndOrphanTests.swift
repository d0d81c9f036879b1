import Foundation
import ReconcileCore
import Testing

/// The destroy of `id` as a duplicate of the droplet `row` keeps.
func duplicate(_ id: Int64, of row: ServerRecord, kept: Int64, keptAt: Date, at: Date) -> Destroy {
    Destroy(dropletID: id, reason: .duplicate(row: row.id, kept: kept, keptCreatedAt: keptAt, duplicateCreatedAt: at))
}

@Suite("Duplicates")
struct DuplicateTests {
    @Test(
        "keep the oldest droplet even when the row records a newer one: the newer was made second; re-bind, destroy the rest",
        arguments: [ServerStatus.provisioning, .initializing, .active]
    )
    func keepOldestOverRecorded(status: ServerStatus) throws {
        let r = row(status: status, dropletID: 300, ipv4: ipv4, ipv6: ipv6, attemptedAt: seconds(-900), attempts: 2)
        let plan = decide(
            [r],
            observe([
                droplet(100, for: 1, createdAt: seconds(-3_000)),
                droplet(300, for: 1, createdAt: seconds(-600)),
                droplet(200, for: 1, createdAt: seconds(-2_000)),
            ])
        )
        #expect(
            plan.destroys == [
                duplicate(300, of: r, kept: 100, keptAt: seconds(-3_000), at: seconds(-600)),
                duplicate(200, of: r, kept: 100, keptAt: seconds(-3_000), at: seconds(-2_000)),
            ]
        )
        #expect(plan.after(r).dropletID == 100)
        #expect(plan.after(r).status == .active)
        #expect(plan.adoptions == [.adopted(row: r.id, droplet: 100)])
        #expect(plan.orphanIDs.isEmpty, "duplicates are the row's, not orphans")
    }

    @Test("the droplet a row records is kept when it is the oldest; a newer one with its identity goes")
    func keepRecordedWhenOldest() {
        let r = row(status: .active, dropletID: 100, ipv4: ipv4, ipv6: ipv6)
        let plan = decide(
            [r],
            observe([droplet(101, for: 1, createdAt: seconds(-10)), droplet(100, for: 1, createdAt: seconds(-1_000))])
        )
        #expect(plan.destroys == [duplicate(101, of: r, kept: 100, keptAt: seconds(-1_000), at: seconds(-10))])
        #expect(plan.updates.isEmpty)
    }

    @Test("no recorded droplet → keep the oldest, bind it, destroy the rest")
    func keepOldest() throws {
        let r = row(status: .creating, attemptedAt: seconds(-120), attempts: 2)
        let plan = decide(
            [r],
            observe([
                droplet(500, for: 1, status: .new, createdAt: seconds(-50)),
                droplet(400, for: 1, status: .active, createdAt: seconds(-130)),
            ])
        )
        #expect(plan.destroys == [duplicate(500, of: r, kept: 400, keptAt: seconds(-130), at: seconds(-50))])
        let after = try #require(plan.written(r))
        #expect(after.dropletID == 400)
        #expect(after.status == .active)
        #expect(plan.adoptions == [.adopted(row: r.id, droplet: 400)])
        #expect(plan.creates.isEmpty)
    }

    @Test(
        "same creation time → the lower id is kept, whatever the list order",
        arguments: [[401, 400], [400, 401]] as [[Int64]]
    )
    func tieBreak(order: [Int64]) {
        let r = row(status: .creating, attemptedAt: seconds(-120), attempts: 2)
        let plan = decide([r], observe(order.map { droplet($0, for: 1, createdAt: seconds(-100)) }))
        #expect(plan.after(r).dropletID == 400)
        #expect(plan.destroys == [duplicate(401, of: r, kept: 400, keptAt: seconds(-100), at: seconds(-100))])
    }

    @Test("the recorded droplet is kept even when it lacks the fleet tag; a newer tagged duplicate goes")
    func recordedUntaggedKept() {
        let r = row(status: .active, dropletID: 100, ipv4: ipv4, ipv6: ipv6)
        let plan = decide(
            [r],
            observe([droplet(100, for: 1, fleet: false), droplet(101, for: 1, createdAt: seconds(-60))])
        )
        #expect(plan.destroys == [duplicate(101, of: r, kept: 100, keptAt: seconds(-1_800), at: seconds(-60))])
    }

    @Test("an untagged droplet with the row's identity is never destroyed as a duplicate")
    func untaggedNeverDestroyed() {
        let r = row(status: .active, dropletID: 100, ipv4: ipv4, ipv6: ipv6)
        let plan = decide(
            [r],
            observe([droplet(100, for: 1), droplet(101, for: 1, fleet: false, createdAt: seconds(-9_000))])
        )
        #expect(plan.actions.isEmpty)
    }

    @Test("a row in backoff destroys no duplicate yet, and keeps its backoff while duplicates remain")
    func backoffHoldsDuplicateDestroys() {
        let r = row(status: .active, dropletID: 100, ipv4: ipv4, ipv6: ipv6, failures: 1, nextAttemptAt: seconds(20))
        let plan = decide([r], observe([droplet(100, for: 1), droplet(101, for: 1)]))
        #expect(plan.destroys.isEmpty)
        #expect(plan.updates.isEmpty, "the backoff paces the duplicate's destroy; it is not reset")
        #expect(plan.nextWakeUp == seconds(20))
    }
}

@Suite("Orphans")
struct OrphanTests {
    static func deleting(grace: Duration) -> DecisionConfiguration {
        var configuration = DecisionConfiguration()
        configuration.orphanPolicy = .delete(grace: grace)
        return configuration
    }

    /// A fleet droplet with no identity and no row, one with the identity of a row that does not
    /// exist, and one with the identity of a deleted row.
    static let deletedRow = row(9, status: .deleted, dropletID: 903, deleteRequested: true)
    static let orphans = [droplet(901, for: nil), droplet(902, for: 77), droplet(903, for: 9)]

    @Test("by default orphans are reported every pass, never destroyed")
    func reportOnly() {
        let first = Dictionary(uniqueKeysWithValues: Self.orphans.map { ($0.id, seconds(-86_400)) })
        let plan = decide([Self.deletedRow], observe(Self.orphans), orphansFirstSeen: first)
        #expect(plan.orphanIDs == [901, 902, 903])
        #expect(plan.notes.contains(.orphanSeen(droplet: Self.orphans[0])), "the note carries the droplet as observed")
        #expect(plan.destroys.isEmpty)
        #expect(plan.updates.isEmpty)
    }

    @Test("with --orphans delete, an orphan seen longer than the grace period is destroyed")
    func deleteAfterGrace() {
        let first: [Int64: Date] = [901: seconds(-600), 902: seconds(-300), 903: seconds(-10)]
        let plan = decide(
            [Self.deletedRow],
            observe(Self.orphans),
            configuration: Self.deleting(grace: .seconds(300)),
            orphansFirstSeen: first
        )
        #expect(
            plan.destroys == [
                Destroy(dropletID: 901, reason: .orphan(identity: Self.orphans[0].identity)),
                Destroy(dropletID: 902, reason: .orphan(identity: Self.orphans[1].identity)),
            ]
        )
        #expect(plan.orphanIDs == [901, 902, 903], "still reported")
        #expect(plan.nextWakeUp == seconds(290), "wake when 903's grace ends")
    }

    @Test("an orphan the loop has not yet timed is never destroyed")
    func noFirstSeenNoDestroy() {
        let plan = decide([], observe(Self.orphans), configuration: Self.deleting(grace: .zero))
        #expect(plan.destroys.isEmpty)
        #expect(plan.orphanIDs.count == 3)
    }

    @Test("droplets without the fleet tag are never orphans and never destroyed")
    func untaggedUntouched() {
        let strangers = [droplet(800, for: nil, fleet: false), droplet(801, for: 77, fleet: false)]
        let plan = decide(
            [],
            observe(strangers),
            configuration: Self.deleting(grace: .zero),
            orphansFirstSeen: [800: seconds(-1e6), 801: seconds(-1e6)]
        )
        #expect(plan.actions.isEmpty)
    }

    @Test(
        "a fleet droplet recorded by a live row, or tagged for one (failed included), is no orphan",
        arguments: [ServerStatus.creating, .provisioning, .active, .failed, .deleting]
    )
    func matchedIsNotOrphan(status: ServerStatus) {
        let rows = [row(1, status: status, dropletID: 700), row(2, status: status)]
        let plan = decide(
            rows,
            observe([droplet(700, for: nil), droplet(701, for: 2)]),
            configuration: Self.deleting(grace: .zero),
            orphansFirstSeen: [700: seconds(-1e6), 701: seconds(-1e6)]
        )
        #expect(plan.orphanIDs.isEmpty)
        #expect(!plan.destroys.contains { if case .orphan = $0.reason { true } else { false } })
    }

    @Test("a droplet recorded only by a deleted row is an orphan")
    func recordedByDeletedRow() {
        let plan = decide([row(3, status: .deleted, dropletID: 750)], observe([droplet(750, for: nil)]))
        #expect(plan.orphanIDs == [750])
    }

    @Test("a droplet listed twice (a page boundary shifted) is reported once")
    func listedTwice() {
        let plan = decide([], observe([droplet(901, for: nil), droplet(901, for: nil)]))
        #expect(plan.orphanIDs == [901])
    }
}
