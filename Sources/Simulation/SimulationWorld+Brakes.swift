import DigitalOceanModel
import Foundation
import ReconcileCore

/// The destroy brake in the world (issue 25): some seeds run with a small budget and ask for
/// many rows' deletions (and make orphans) at once; an operator allows destroys now and then, and
/// always once the faults stop, so that every row converges. Draws come from the third
/// generator (`brakeRandom`).
extension SimulationWorld {
    /// The replicas' destroy budget, drawn before any starts: small in a third of the seeds.
    func drawDestroyBudget() {
        guard brakeRandom() < 0.35 else { return }
        destroyBudget = DestroyBudget(perHour: 1 + brakeIndex(4), percentOfFleet: 20, floorPerHour: 1)
        trace("destroy budget: \(destroyBudget.description)")
    }

    var brakesTested: Bool { destroyBudget != DestroyBudget() }

    func scheduleBrakes(end: Double) {
        guard brakesTested else { return }
        func at(_ range: ClosedRange<Double>) -> Date {
            time.origin.addingTimeInterval(range.lowerBound + brakeRandom() * (range.upperBound - range.lowerBound))
        }
        // A mass deletion: half the rows there are at once, and orphans made by hand.
        let massAt = at(30...max(31, end - 30))
        let share = 0.3 + brakeRandom() * 0.4
        let orphans = orphanGrace == nil ? 0 : brakeIndex(4)
        time.schedule(at: massAt) { [unowned self] in self.massDeletion(share: share, orphans: orphans) }
        // An operator allows destroys for a while, in some seeds before the faults stop.
        if brakeRandom() < 0.4 {
            let from = at(30...end)
            let length = 30 + brakeRandom() * 300
            time.schedule(at: from) { [unowned self] in self.allowDestroys(for: length) }
        }
    }

    private func massDeletion(share: Double, orphans: Int) {
        let candidates = database.rows.values.filter { $0.state.status != .deleted && $0.deleteRequestedAt == nil }
            .sorted { $0.id.uuidString < $1.id.uuidString }
        let count = Int((Double(candidates.count) * share).rounded(.up))
        trace("operator: mass deletion of \(count) of \(candidates.count) rows, \(orphans) orphans made")
        for row in candidates.prefix(count) { requestDeletion(row.id) }
        for number in 0..<orphans {
            let stranger = UUID(
                uuid: (
                    9, 9, 9, 8, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, UInt8(number), 0, UInt8(truncatingIfNeeded: seed)
                )
            )
            makeByHand(name: "orphan-\(number)", tags: [FleetTags.fleet, FleetTags.identity(for: stranger)])
        }
    }

    /// `citrus-reconciler destroys allow --until`: a row of `destroy_allowances`, and NOTIFY.
    func allowDestroys(for seconds: TimeInterval) {
        database.destroyAllowances.append((time.now, time.now.addingTimeInterval(seconds)))
        trace(String(format: "operator: destroys allowed for %.0f s", seconds))
        for process in slots.compactMap({ $0 }) where process.isAlive {
            time.schedule(after: 0.001 + brakeRandom() * 0.05) { process.wake.signal(row: nil) }
        }
    }

    /// Once the faults stop, the operator allows what waits, so that every row converges.
    func allowDestroysToTheEnd() {
        guard brakesTested else { return }
        allowDestroys(for: convergenceBound + 60)
    }
}
