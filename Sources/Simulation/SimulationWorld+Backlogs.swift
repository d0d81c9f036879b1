import DigitalOceanModel
import Foundation
import ReconcileCore
import Timekeeping

/// Issue 23's world: a backlog of rows without their droplet ids, which the daemon adopts from the
/// pages of its lists, while new rows keep coming. Drawn from a generator of its own, so that a seed
/// without it makes the same draws as before it.
extension SimulationWorld {
    func scheduleBacklogs(end: Double) {
        var draws = SeededGenerator(seed: seed ^ 0x6973_7375_6532_3233)
        func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &draws) < p }
        func within(_ range: ClosedRange<Double>) -> Date {
            time.origin.addingTimeInterval(Double.random(in: range, using: &draws))
        }
        guard chance(0.3) else { return }
        // A fleet moved in (or rows restored from a backup without their droplet ids): droplets
        // carrying the rows' identities, then the rows, older than any list, all at once.
        let count = Int.random(in: 8...40, using: &draws)
        let rows = (1...count).map { number -> ServerRecord in
            let id = UUID(
                uuid: (
                    0, 0, 0, 0x23, 0, 0, 0x40, 0, 0x80, 0, 0, 0, UInt8(truncatingIfNeeded: seed),
                    UInt8(truncatingIfNeeded: seed >> 8), 0, UInt8(number)
                )
            )
            labels[id] = "moved\(number)"
            // Made by hand, they run no agent: with agent bootstrap their rows may end failed.
            if agentBootstrap { disturbed.insert(id) }
            return ServerRecord(id: id, name: "web-moved-\(number)")
        }
        let madeAt = within(0...max(1, end / 2))
        let insertedAt = madeAt.addingTimeInterval(FaultPlan.maxListLag + 1 + Double.random(in: 0...60, using: &draws))
        time.schedule(at: madeAt) { [unowned self] in
            for row in rows {
                self.makeByHand(name: row.name, tags: [FleetTags.fleet, row.identityTag])
            }
            self.trace("world: \(rows.count) droplets made for rows that come later without their droplet ids")
        }
        time.schedule(at: insertedAt) { [unowned self] in
            for row in rows { self.insert(row, createdAt: self.time.origin.addingTimeInterval(-86_400)) }
        }
        // One of them destroyed by hand while the daemon lists and adopts (the reason a binding
        // rests on a fresh read): its row gets a droplet again, or fails saying its droplet vanished.
        if chance(0.5) {
            let victim = rows[Int.random(in: 0..<rows.count, using: &draws)]
            let destroyAt = insertedAt.addingTimeInterval(Double.random(in: 0...90, using: &draws))
            time.schedule(at: destroyAt) { [unowned self] in
                guard self.time.now < self.quietAt else { return }
                for droplet in self.liveDroplets(identity: victim.id) { self.destroyByHand(droplet.id) }
                self.disturbed.insert(victim.id)
                self.vanished.insert(victim.id)
                self.trace("operator: destroyed \(self.label(victim.id))'s droplet by hand while the fleet is adopted")
            }
        }
    }
}
