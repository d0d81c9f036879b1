#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Postgres
import ReconcileCore

// How a row's live-change columns (migration 8) map to `DaemonState`.

extension LiveChange.Goal {
    /// `change_goal` and `change_target`.
    var columns: (goal: String, target: String?) {
        switch self {
        case .rename(let name): ("rename", name)
        case .resize(let size, let disk): (disk ? "resize-disk" : "resize", size)
        case .powerOn: ("power-on", nil)
        case .tag(let tag): ("tag", tag)
        case .untag(let tag): ("untag", tag)
        case .backups(let on): (on ? "enable-backups" : "disable-backups", nil)
        case .shutDown: ("shut-down", nil)
        }
    }

    init?(goal: String, target: String?) {
        switch (goal, target) {
        case ("rename", let name?): self = .rename(to: name)
        case ("resize", let size?): self = .resize(to: size, disk: false)
        case ("resize-disk", let size?): self = .resize(to: size, disk: true)
        case ("power-on", _): self = .powerOn
        case ("tag", let tag?): self = .tag(tag)
        case ("untag", let tag?): self = .untag(tag)
        case ("enable-backups", _): self = .backups(on: true)
        case ("disable-backups", _): self = .backups(on: false)
        case ("shut-down", _): self = .shutDown
        default: return nil
        }
    }
}

extension ServerStore {
    static let liveChangeColumns = """
        s.droplet_name, s.droplet_region, s.droplet_size, s.droplet_image, s.drift, s.drift_since,
        s.change_goal, s.change_target, s.change_step, s.change_action_id, s.change_sent_at, s.change_failure,
        s.refused_change, s.refused_value, s.refused_reason
        """

    /// Reads the live-change columns into `state`. A change this build cannot read (written by a
    /// newer one, or edited by hand) is dropped: the next pass decides afresh from the droplet.
    static func readLiveChange(from row: PostgresRow, into state: inout DaemonState, pool: StringPool) throws {
        if let name = try row.decode(String?.self, "droplet_name") {
            state.observed = DropletFacts(
                name: name,
                region: pool.shared(try row.decode(String?.self, "droplet_region")),
                size: pool.shared(try row.decode(String?.self, "droplet_size")),
                image: pool.shared(try row.decode(String?.self, "droplet_image"))
            )
        }
        state.drift = try row.decode(String?.self, "drift")
        state.driftSince = try row.decode(Date?.self, "drift_since")
        if let goalText = try row.decode(String?.self, "change_goal"),
            let goal = LiveChange.Goal(goal: goalText, target: try row.decode(String?.self, "change_target"))
        {
            let step = try row.decode(Int?.self, "change_step") ?? 0
            state.change = LiveChange(
                goal: goal,
                stepIndex: min(max(step, 0), goal.steps.count - 1),
                actionID: try row.decode(Int64?.self, "change_action_id"),
                sentAt: try row.decode(Date?.self, "change_sent_at"),
                failure: try row.decode(String?.self, "change_failure")
            )
        }
        if let column = try row.decode(String?.self, "refused_change"),
            let value = try row.decode(String?.self, "refused_value")
        {
            state.refused = RefusedChange(
                column: column,
                value: value,
                reason: try row.decode(String?.self, "refused_reason") ?? "no reason recorded"
            )
        }
    }
}
