import Foundation
import ReconcileCore
import Testing

/// The destroy budget's arithmetic (issue 25, brakes): limits, room and which destroys go.
@Suite("Destroy budget")
struct DestroyBudgetTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// A row id of its own for each droplet, the same every time it is asked for.
    static func row(_ droplet: Int64) -> UUID {
        UUID(uuidString: String(format: "00000000-0000-4000-8000-%012llx", droplet))!
    }

    static func deletion(_ droplet: Int64) -> Action {
        .destroy(dropletID: droplet, reason: .deleteRequested(row: row(droplet)))
    }

    static func orphan(_ droplet: Int64) -> Action {
        .destroy(dropletID: droplet, reason: .orphan(identity: nil))
    }

    static func duplicate(_ droplet: Int64) -> Action {
        .destroy(
            dropletID: droplet,
            reason: .duplicate(row: row(droplet), kept: 1, keptCreatedAt: now, duplicateCreatedAt: now)
        )
    }

    @Test(
        "the default limit: the floor for small fleets, a fifth of a middling one, 100 an hour for large ones",
        arguments: [(0, 10), (20, 10), (50, 10), (55, 11), (100, 20), (499, 99), (500, 100), (50_000, 100)]
    )
    func defaultLimit(fleet: Int, limit: Int) {
        #expect(DestroyBudget().limit(fleetSize: fleet) == limit)
    }

    @Test("the floor never lifts the limit above the hourly one")
    func floorBelowHourly() {
        let budget = DestroyBudget(perHour: 3, percentOfFleet: 20, floorPerHour: 10)
        #expect(budget.limit(fleetSize: 5) == 3)
    }

    @Test("room counts the hour's destroys against the fleet as it was at the start of the hour")
    func remaining() {
        let budget = DestroyBudget()
        // 100 rows an hour ago, 20 destroyed since: 80 live, nothing left.
        #expect(budget.remaining(counted: 20, liveRows: 80) == 0)
        #expect(budget.remaining(counted: 5, liveRows: 95) == 15)
        #expect(budget.remaining(counted: 0, liveRows: 100) == 20)
        // More counted than the limit (a budget lowered since): no room, never negative.
        #expect(budget.remaining(counted: 50, liveRows: 0) == 0)
    }

    @Test("50 deletions of a 100-row fleet at once: 20 go, 30 are held")
    func massDeletion() {
        let destroys = (1...50).map { Self.deletion(Int64($0)) }
        let clearance = DestroyClearance.decide(
            destroys,
            budget: DestroyBudget(),
            counted: [],
            liveRows: 100,
            allowedUntil: nil,
            braked: false,
            now: Self.now
        )
        #expect(clearance.cleared == Array(destroys.prefix(20)))
        #expect(clearance.held == Array(destroys.suffix(30)))
        #expect(clearance.limit == 20)
        #expect(clearance.clearedCounting == 20)
        #expect(clearance.roomLeft == 0)
    }

    @Test("duplicates and droplets already counted go even when the hour is spent; orphans are counted")
    func exemptions() {
        let destroys = [Self.duplicate(7), Self.deletion(8), Self.orphan(9), Self.deletion(10)]
        let clearance = DestroyClearance.decide(
            destroys,
            budget: DestroyBudget(perHour: 2, percentOfFleet: 100, floorPerHour: 1),
            counted: [8, 99],
            liveRows: 10,
            allowedUntil: nil,
            braked: false,
            now: Self.now
        )
        #expect(clearance.cleared == [Self.duplicate(7), Self.deletion(8)])
        #expect(clearance.held == [Self.orphan(9), Self.deletion(10)])
    }

    @Test(
        "a destroy already counted goes again only while the hour's count is within the budget, or under an allowance"
    )
    func countedPastTheBudgetWaits() {
        // Seven counted in an hour whose budget is 2 (an allowance has ended): droplet 8's intent
        // was written under it, its request withdrawn; it is not sent past the budget.
        let budget = DestroyBudget(perHour: 2, percentOfFleet: 100, floorPerHour: 1)
        let counted: Set<Int64> = [1, 2, 3, 4, 5, 6, 8]
        for braked in [false, true] {
            let held = DestroyClearance.decide(
                [Self.deletion(8)],
                budget: budget,
                counted: counted,
                liveRows: 10,
                allowedUntil: nil,
                braked: braked,
                now: Self.now
            )
            #expect(held.cleared.isEmpty && held.held == [Self.deletion(8)], "braked: \(braked)")
        }
        let allowed = DestroyClearance.decide(
            [Self.deletion(8)],
            budget: budget,
            counted: counted,
            liveRows: 10,
            allowedUntil: Self.now.addingTimeInterval(60),
            braked: true,
            now: Self.now
        )
        #expect(allowed.cleared == [Self.deletion(8)])
    }

    @Test("once braked, nothing counted goes while the hour has room, until an allowance")
    func brakedUntilAllowed() {
        let destroys = [Self.deletion(1), Self.orphan(2)]
        let braked = DestroyClearance.decide(
            destroys,
            budget: DestroyBudget(),
            counted: [],
            liveRows: 100,
            allowedUntil: nil,
            braked: true,
            now: Self.now
        )
        #expect(braked.cleared.isEmpty)
        #expect(braked.held == destroys)
        let expired = DestroyClearance.decide(
            destroys,
            budget: DestroyBudget(),
            counted: [],
            liveRows: 100,
            allowedUntil: Self.now,
            braked: true,
            now: Self.now
        )
        #expect(expired.held == destroys, "an allowance that ended allows nothing")
        let allowed = DestroyClearance.decide(
            destroys,
            budget: DestroyBudget(),
            counted: Set(1...500),
            liveRows: 100,
            allowedUntil: Self.now.addingTimeInterval(60),
            braked: true,
            now: Self.now
        )
        #expect(allowed.cleared == destroys)
        #expect(allowed.held.isEmpty)
    }

    @Test(
        "a graceful shutdown before a destroy takes the destroy's place in the budget: past it, no server is shut down"
    )
    func shutdownsAreBudgeted() {
        func shutdown(_ droplet: Int64) -> Action {
            .dropletAction(
                DropletActionOrder(rowID: Self.row(droplet), dropletID: droplet, kind: .shutdown),
                expectedRevision: 1,
                from: DaemonState(),
                state: DaemonState()
            )
        }
        let budget = DestroyBudget(perHour: 2, percentOfFleet: 100, floorPerHour: 0)
        let clearance = DestroyClearance.decide(
            [shutdown(1), Self.deletion(2), shutdown(3)],
            budget: budget,
            counted: [],
            liveRows: 10,
            allowedUntil: nil,
            braked: false,
            now: Self.now
        )
        #expect(clearance.cleared == [shutdown(1), Self.deletion(2)])
        #expect(clearance.held == [shutdown(3)])
        #expect(DestroyClearance.isBudgeted(shutdown(1)) && DestroyClearance.isBudgeted(Self.deletion(1)))
    }
}
