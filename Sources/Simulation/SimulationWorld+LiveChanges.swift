import DigitalOceanModel
import Foundation
import ReconcileCore

/// Changes to live rows (issue 13) under the world's faults: operators rename rows and change
/// their size (resizes allowed in some seeds), and people change droplets at DigitalOcean by hand.
/// At the end every row that was left alone by hand must show its droplet as the row asks, with
/// no change in flight and no droplet left powered off by the daemon.
extension SimulationWorld {
    static let sizes = ["s-1vcpu-512mb-10gb", "s-1vcpu-1gb", "s-2vcpu-2gb"]

    /// Draws this seed's live changes; `at` picks an instant in a range of seconds.
    func scheduleLiveChanges(end: Double, at: (ClosedRange<Double>) -> Date) {
        // Drawn from the seed, not the generator, so the draws of every other event stay as they were.
        trace("live changes: resizes \(resizeAllowed ? "allowed" : "reported as drift")")
        for round in 0..<index(4) {
            time.schedule(at: at(10...end)) { [unowned self] in self.renameRow(round: round) }
        }
        for _ in 0..<index(3) {
            time.schedule(at: at(10...end)) { [unowned self] in self.changeSize() }
        }
        if random() < 0.2 { time.schedule(at: at(30...end)) { [unowned self] in self.renameByHand() } }
        if random() < 0.2 { time.schedule(at: at(30...end)) { [unowned self] in self.powerOffByHand() } }
    }

    func liveRow() -> ServerRecord? {
        let candidates = database.rows.values.filter { $0.deleteRequestedAt == nil && !invalid.contains($0.id) }
            .sorted { $0.id.uuidString < $1.id.uuidString }
        return candidates.isEmpty ? nil : candidates[index(candidates.count)]
    }

    private func renameRow(round: Int) {
        guard let row = liveRow() else { return }
        let name = "web-\(labels[row.id] ?? "x")-r\(round)"
        database.update(row.id) { $0.name = name }
        trace("operator: \(label(row.id)) renamed \(name)")
        notify(row.id)
    }

    private func changeSize() {
        guard let row = liveRow() else { return }
        let size = Self.sizes[index(Self.sizes.count)]
        database.update(row.id) { $0.size = size }
        trace("operator: \(label(row.id)) asks for size \(size)")
        notify(row.id)
    }

    /// A person renames a droplet in the control panel: drift, never undone.
    private func renameByHand() {
        guard let row = liveRow(), let droplet = liveDroplets(identity: row.id).first,
            changeByHand(droplet.id, [("type", "rename"), ("name", "by-hand")])
        else { return }
        changedByHand.insert(row.id)
        trace("operator: droplet \(droplet.id) of \(label(row.id)) renamed by hand")
    }

    /// A person powers a droplet off in the control panel: drift, never powered on by the daemon.
    private func powerOffByHand() {
        guard let row = liveRow(), let droplet = liveDroplets(identity: row.id).first,
            droplet.apiStatus(at: time.now) == "active", changeByHand(droplet.id, [("type", "power_off")])
        else { return }
        changedByHand.insert(row.id)
        trace("operator: droplet \(droplet.id) of \(label(row.id)) powered off by hand")
    }

    /// Whether the row's records may not know what happened to its droplet: changed by hand, taken
    /// back by a restore, or deleted and inserted again.
    func forgetful(_ id: UUID) -> Bool {
        changedByHand.contains(id) || disturbed.contains(id) || reinserted.contains(id)
    }
}
