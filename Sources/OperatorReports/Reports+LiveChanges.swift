#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore

// What `plan` and `status` show of changes to live rows: the droplet actions a pass would send,
// the drift it would leave, and what DigitalOcean has beside what the row asks for.

extension Reports {
    /// `plan`'s line for a droplet action.
    static func planLine(_ order: DropletActionOrder, state: DaemonState, label: String) -> String {
        let progress = state.change.map { " (\($0.progress))" } ?? ""
        switch order.kind {
        case .rename(let name):
            return "rename   droplet \(order.dropletID) for \(label): to \(escaped(name))\(progress)"
        case .resize(let size, let disk):
            return "resize   droplet \(order.dropletID) for \(label): to \(escaped(size))"
                + (disk ? ", disk included (irreversible)" : ", CPU and memory only") + progress
        case .powerOff:
            return "power    droplet \(order.dropletID) for \(label): off\(progress)"
        case .powerOn:
            return "power    droplet \(order.dropletID) for \(label): on\(progress)"
        case .tag(let tag):
            return "tag      droplet \(order.dropletID) for \(label): add \(escaped(tag))\(progress)"
        case .untag(let tag):
            return "tag      droplet \(order.dropletID) for \(label): remove \(escaped(tag))\(progress)"
        case .backups(let on):
            return "backups  droplet \(order.dropletID) for \(label): \(on ? "on" : "off")\(progress)"
        case .shutdown:
            return "shutdown droplet \(order.dropletID) for \(label): gracefully, before it is destroyed\(progress)"
        }
    }

    /// Each row's drift as a pass would leave it: the plan's write where it has one, else the row's.
    static func drift(after plan: Plan, rows: [ServerRecord]) -> [(row: ServerRecord, drift: String)] {
        var planned: [UUID: String?] = [:]
        for action in plan.actions {
            switch action {
            case let .update(id, _, _, to): planned[id] = to.drift
            case let .dropletAction(order, _, _, state): planned[order.rowID] = state.drift
            case .create, .destroy, .assign, .note: break
            }
        }
        return rows.compactMap { row in
            guard row.state.status != .deleted, let drift = planned[row.id] ?? row.state.drift else { return nil }
            return (row, drift)
        }
    }

    /// A user column as `status` shows it: the row's value, and the droplet's beside it where they differ.
    static func beside(_ wish: String, _ fact: String?) -> String {
        guard let fact, fact != wish else { return escaped(wish) }
        return "\(escaped(wish)) (droplet: \(escaped(fact)))"
    }

    /// The STATUS cell's note on a live change or drift: "resizing 2/3", "drift".
    static func liveNote(_ state: DaemonState) -> String? {
        if let change = state.change {
            let verb =
                switch change.goal {
                case .rename: "renaming"
                case .resize: change.failure == nil ? "resizing" : "recovering"
                case .powerOn: "powering on"
                case .tag, .untag: "tagging"
                case .backups: "switching backups"
                case .shutDown: "shutting down"
                }
            return "\(verb) \(change.stepIndex + 1)/\(change.goal.steps.count)"
        }
        return state.drift == nil ? nil : "drift"
    }
}
