#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Timekeeping

/// A change to a row's daemon columns, with the audit entries that describe it. The store writes
/// the row and its entries in one statement: a compare-and-set that misses writes neither, so the
/// trail never tells of a change the row did not make.
public struct Transition: Sendable {
    /// The row as it was read (its id and name name the entries).
    public let row: ServerRecord
    public let from: DaemonState
    public let to: DaemonState
    /// The entries, in the order they are written.
    public private(set) var events: [AuditEvent]
    /// When the entries are stamped (the database's time, as the daemon knows it).
    public let at: Date
    /// DigitalOcean's id of the request whose answer brought the change, where there was one.
    public let requestID: String?

    /// The change and what the change itself says: its status change (in the agent's words where
    /// the change is the agent's doing), its live change's progress and drift, and its failure.
    /// - Parameter agentTimeout: how long an agent has to connect, which the `initializing` entry
    ///   names; nil when the daemon bootstraps no agents.
    public init(
        row: ServerRecord,
        from: DaemonState,
        to: DaemonState,
        at: Date,
        requestID: String? = nil,
        agentTimeout: Duration? = nil
    ) {
        self.row = row
        self.from = from
        self.to = to
        self.at = at
        self.requestID = requestID
        self.events = []
        Invariants.check(self)
        if from.status != to.status {
            let kind = AuditKind.statusChange(from: from, to: to)
            append(
                kind,
                droplet: to.dropletID ?? from.dropletID,
                statuses: true,
                message: Self.statusChangeMessage(kind, row: row, from: from, to: to, agentTimeout: agentTimeout)
            )
        }
        let droplet = to.dropletID ?? from.dropletID
        for (kind, message) in Self.liveChangeEntries(row: row, droplet: droplet, from: from, to: to) {
            append(kind, droplet: droplet, message: message)
        }
        if to.status == .failed, from.status != .failed || from.lastError != to.lastError {
            append(
                .failed,
                droplet: to.dropletID,
                statuses: true,
                message: "server \(row.name) failed: \(to.lastError ?? "no reason recorded")"
            )
        }
    }

    /// Adds an entry about the request that brought the change (its acceptance, its uncertain end).
    /// - Parameters:
    ///   - droplet: the droplet it names; nil: the row's.
    ///   - statuses: whether it carries the row's statuses before and after.
    public mutating func append(_ kind: AuditKind, droplet: Int64? = nil, statuses: Bool = false, message: String) {
        events.append(
            AuditEvent(
                kind: kind,
                at: at,
                serverID: row.id,
                serverName: row.name,
                dropletID: droplet ?? row.state.dropletID,
                fromStatus: statuses ? from.status : nil,
                toStatus: statuses ? to.status : nil,
                requestID: requestID,
                message: message
            )
        )
    }

    /// The sentence of a status change's entry.
    static func statusChangeMessage(
        _ kind: AuditKind,
        row: ServerRecord,
        from: DaemonState,
        to: DaemonState,
        agentTimeout: Duration?
    ) -> String {
        let agent = to.agentID.map { "agent \($0.uuidString.lowercased())" } ?? "its agent"
        let droplet = to.dropletID.map { "droplet \($0)" } ?? "its droplet"
        switch kind {
        case .agentAwaited:
            let timeout = agentTimeout.map { " (up to \(DurationText.format($0)))" } ?? ""
            return
                "server \(row.name) is initializing: \(droplet) is active at \(to.ipv4 ?? "its address"); waiting\(timeout) for \(agent) to connect to the Engine Hub"
        case .agentConnected:
            // The write that carries this entry clears the key (AgentKeyChange.clearBootstrapKey).
            return
                "server \(row.name) is active: \(agent) connected to the Engine Hub; its bootstrap key is cleared (single-use)"
        case .agentTimedOut:
            return
                "server \(row.name) failed: \(agent) did not connect in time; \(droplet) is left running for inspection"
        case .agentUnreachable:
            return "server \(row.name) is unreachable: \(to.lastError ?? "its agent has not been seen recently")"
        case .agentReachable:
            return "server \(row.name) is active again: the Engine Hub sees \(agent) again"
        case .placementFailed:
            return "server \(row.name) is creating again: \(to.lastError ?? "its droplet's placement failed")"
        default:
            return "server \(row.name) is now \(to.status.rawValue) (was \(from.status.rawValue))"
        }
    }

    /// What a change to a row's live change and drift says.
    static func liveChangeEntries(
        row: ServerRecord,
        droplet id: Int64?,
        from: DaemonState,
        to: DaemonState
    ) -> [(AuditKind, String)] {
        var entries: [(AuditKind, String)] = []
        let droplet = "droplet \(id.map(String.init) ?? "?")"
        let server = "server \(row.name)"
        if let before = from.change {
            switch to.change {
            case nil where to.refused != nil && to.refused != from.refused:
                entries.append(
                    (
                        .changeFailed,
                        "\(server): \(before.goal.description) of \(droplet) did not happen: \(to.refused?.reason ?? "")"
                    )
                )
            case nil:
                if let failure = before.failure {
                    entries.append((.changeFailed, "\(server): \(failure); \(droplet) is powered on again"))
                } else {
                    entries.append((.changeCompleted, "\(server): \(before.goal.description) of \(droplet) completed"))
                }
            case let after? where after.failure != nil && before.failure == nil:
                entries.append((.changeFailed, "\(server): \(after.failure ?? ""); powering \(droplet) back on"))
            case let after? where after.stepIndex > before.stepIndex:
                entries.append(
                    (.actionCompleted, "\(server): \(before.step.type) of \(droplet) done; \(after.progress)")
                )
            case _?:
                break
            }
        } else if to.change == nil, let refused = to.refused, refused != from.refused {
            entries.append(
                (.changeFailed, "\(server): the \(refused.column) \(refused.value) was not applied: \(refused.reason)")
            )
        }
        switch (from.drift, to.drift) {
        case (let old, let drift?) where old != drift:
            entries.append((.driftDetected, "\(server) drifts from its droplet: \(drift)"))
        case (_?, nil):
            entries.append((.driftCleared, "\(server) matches its droplet again"))
        default:
            break
        }
        return entries
    }
}
