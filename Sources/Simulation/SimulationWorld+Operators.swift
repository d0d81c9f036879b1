import DigitalOceanModel
import Foundation
import Logging
import ReconcileCore
import Reconciler

/// What operators (and the world) do to the rows and the droplets.
extension SimulationWorld {
    /// `createdAt`: when the row says it was made, if not now (a row moved in or restored).
    func insert(_ row: ServerRecord, createdAt: Date? = nil) {
        var row = row
        row.createdAt = createdAt ?? time.now
        row.state = DaemonState()
        database.insert(row)
        rowGoneAt[row.id] = nil
        goneAskingDeletion.remove(row.id)
        trace("operator: INSERT \(label(row.id)) (\(row.name))")
        notify(row.id)
    }

    func requestDeletion(_ id: UUID) {
        guard database.rows[id] != nil, time.now < quietAt else { return }
        database.update(id) { $0.deleteRequestedAt = self.time.now }
        trace("operator: delete requested for \(label(id))")
        notify(id)
    }

    /// NOTIFY reaches every listening process a moment later, unless it is lost.
    func notify(_ id: UUID) {
        for process in slots.compactMap({ $0 }) where process.isAlive {
            guard !faults.notificationLost() else { continue }
            time.schedule(after: 0.001 + random() * 0.05) { process.wake.signal(row: id) }
        }
    }

    /// Whether no create for `id` may still be in flight or hidden by list lag.
    func quiet(_ id: UUID) -> Bool {
        guard let sent = lastCreateSentAt[id] else { return true }
        return time.now.timeIntervalSince(sent) > requestTimeout + FaultPlan.maxLateEffect + FaultPlan.maxListLag + 5
    }

    func deleteAndReinsert() {
        let candidates = database.rows.values.filter {
            $0.state.status == .active && $0.deleteRequestedAt == nil && $0.state.dropletID != nil && quiet($0.id)
        }.sorted { $0.id.uuidString < $1.id.uuidString }
        guard !candidates.isEmpty else { return }
        let row = candidates[index(candidates.count)]
        database.remove(row.id)
        rowGone(row)
        reinserted.insert(row.id)
        if agentBootstrap { disturbed.insert(row.id) }
        trace("operator: DELETE \(label(row.id)) with SQL; it comes back with the same id")
        notify(row.id)
        time.schedule(after: 1 + random() * 20) { [unowned self] in
            var again = row
            again.revision = 0
            self.insert(again)
        }
    }

    func destroyOutOfBand() {
        let candidates = database.rows.values.filter { $0.state.dropletID != nil && $0.deleteRequestedAt == nil }
            .sorted { $0.id.uuidString < $1.id.uuidString }
        guard !candidates.isEmpty else { return }
        let row = candidates[index(candidates.count)]
        for droplet in liveDroplets(identity: row.id) { destroyByHand(droplet.id) }
        disturbed.insert(row.id)
        vanished.insert(row.id)
        trace("operator: destroyed \(label(row.id))'s droplet at DigitalOcean, out of band")
    }

    /// A restore from the snapshot. `checked`: the restore the world did before issue 22, kept
    /// reachable, which waits for a quiet moment: no create intended or sent since the backup
    /// still unsettled, no deletion requested since whose DELETE may be on its way. Unchecked, it
    /// comes at any moment, creates in flight or not (a backup that predates an intent), and takes
    /// the database away while it runs: at least a create's whole settle window (send window,
    /// request deadline, settle period), as a restore from a backup does. That is the design's
    /// answer to a restore that predates an intent (README, "Why there is never a second
    /// droplet"): the leader that sent the create remembers it, and any other finds its droplet
    /// listed by the time the database is back.
    func restore(checked: Bool = true) {
        guard let snapshot else { return }
        let configuration = DecisionConfiguration()
        let settleWindow = (configuration.createSendWindow + configuration.settlePeriod).timeInterval + requestTimeout
        guard checked else {
            restore(snapshot, downtime: settleWindow + hostileRandom() * 120)
            return
        }
        let window = requestTimeout + FaultPlan.maxLateEffect + FaultPlan.maxListLag + 10
        let createsSettled = database.rows.values.allSatisfy { row in
            quiet(row.id) && row.state.createAttemptedAt.map { time.now.timeIntervalSince($0) > window } ?? true
        }
        let deletionsKept = database.rows.values.allSatisfy { row in
            row.deleteRequestedAt == nil || snapshot.tables.rows[row.id]?.deleteRequestedAt != nil
        }
        guard createsSettled, deletionsKept else {
            trace("operator: restore skipped (creates or deletions in flight)")
            return
        }
        // It takes the database away as long as any restore does: a droplet action sent before it
        // (which the quiet moment does not wait for) lands while it is away (seed 50814).
        restore(snapshot, downtime: settleWindow)
    }

    private func restore(_ snapshot: (at: Date, tables: SimulatedDatabase.Tables), downtime: TimeInterval = 0) {
        disturbed.formUnion(database.rows.keys)
        disturbed.formUnion(snapshot.tables.rows.keys)
        restored.formUnion(database.rows.keys)
        restored.formUnion(snapshot.tables.rows.keys)
        for (id, row) in database.rows where row.state.status != .deleted {
            if snapshot.tables.rows[id].map({ $0.state.status == .deleted }) ?? true { rowGone(row) }
        }
        database.restore(snapshot.tables, downtime: downtime)
        for (id, row) in database.rows where row.state.status != .deleted {
            rowGoneAt[id] = nil
            goneAskingDeletion.remove(id)
        }
        trace(
            String(
                format: "operator: database restored from the backup of %.1f s, unreachable for %.0f s",
                snapshot.at.timeIntervalSince(time.origin),
                downtime
            )
        )
        let notifyAll = { [unowned self] in
            for id in self.database.rows.keys.sorted(by: { $0.uuidString < $1.uuidString }) { self.notify(id) }
        }
        if downtime > 0 { time.schedule(after: downtime, notifyAll) } else { notifyAll() }
    }
}
