#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore

/// Human-readable renderings for `citrus-reconciler plan` and `citrus-reconciler status`.
public enum Reports {
    /// One line per action a pass would take, in the order it would take them.
    /// - Parameter agentBootstrap: creates would carry a new agent key in their user_data.
    public static func plan(
        _ plan: Plan,
        rows: [ServerRecord],
        problems: [UUID: String] = [:],
        agentBootstrap: Bool = false
    ) -> String {
        // Every row: besides the plan's actions, drift lines name rows that have none.
        let byID = Dictionary(rows.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        func label(_ id: UUID) -> String {
            guard let row = byID[id] else { return id.uuidString.lowercased() }
            return "\(escaped(row.name)) (\(id.uuidString.lowercased()))"
        }
        var lines: [String] = []
        for action in plan.actions {
            switch action {
            case let .update(id, _, from, to):
                var changes: [String] = []
                if from.status != to.status { changes.append("status \(from.status.rawValue) → \(to.status.rawValue)") }
                if from.dropletID != to.dropletID {
                    changes.append("droplet \(to.dropletID.map(String.init) ?? "none")")
                }
                if from.ipv4 != to.ipv4 { changes.append("ipv4 \(to.ipv4 ?? "none")") }
                if from.ipv6 != to.ipv6 { changes.append("ipv6 \(to.ipv6 ?? "none")") }
                if from.lastError != to.lastError {
                    changes.append("last_error \(to.lastError.map { "\"\(escaped($0))\"" } ?? "cleared")")
                }
                if from.change != to.change {
                    changes.append("change \(to.change.map { "\"\($0.progress)\"" } ?? "done")")
                }
                if from.drift != to.drift { changes.append(to.drift == nil ? "drift cleared" : "drift recorded") }
                if changes.isEmpty { changes.append("bookkeeping") }
                lines.append("update   \(label(id)): \(changes.joined(separator: ", "))")
            case let .create(order, _, _):
                if let problem = problems[order.rowID] {
                    lines.append("fail     \(label(order.rowID)): \(escaped(problem)) (nothing would be sent)")
                } else {
                    lines.append(
                        "create   \(label(order.rowID)): \(order.region) \(order.size) \(order.image), tags \(order.tags.joined(separator: ","))"
                            + ", \(order.specification.creationOnly)"
                            + (order.specification.backups ? ", backups on" : "")
                            + (order.specification.projectID.map { ", project \($0)" } ?? "")
                            + (agentBootstrap ? ", user_data: cloud-init with a new agent key" : "")
                    )
                }
            case let .destroy(droplet, reason):
                switch reason {
                case .deleteRequested(let id):
                    lines.append("destroy  droplet \(droplet): deletion requested for \(label(id))")
                case let .duplicate(id, kept, _, _):
                    lines.append(
                        "destroy  droplet \(droplet): duplicate of \(kept) (the oldest, kept) for \(label(id))"
                    )
                case .orphan: lines.append("destroy  droplet \(droplet): orphan past its grace period")
                }
            case .note(.orphanSeen(let droplet)):
                lines.append(
                    "orphan   droplet \(droplet.id) (\(escaped(droplet.name))): tagged citrus-host, matches no row"
                )
            case let .note(.adopted(id, droplet)):
                lines.append("adopt    droplet \(droplet) for \(label(id))")
            case let .dropletAction(order, _, _, state):
                lines.append(planLine(order, state: state, label: label(order.rowID)))
            case .assign(let assignment):
                lines.append(
                    "project  \(escaped(assignment.projectID)): assign "
                        + assignment.members.map { "droplet \($0.dropletID) for \(label($0.rowID))" }.joined(
                            separator: ", "
                        )
                )
            }
        }
        for (row, drift) in drift(after: plan, rows: rows) {
            lines.append("drift    \(label(row.id)): \(escaped(drift))")
        }
        return lines.isEmpty ? "nothing to do: DigitalOcean matches the table" : lines.joined(separator: "\n")
    }

    /// Live rows first, oldest first; then history.
    static func ordered(_ rows: [ServerRecord]) -> [ServerRecord] {
        rows.sorted { a, b in
            let aLive = a.state.status != .deleted
            let bLive = b.state.status != .deleted
            if aLive != bLive { return aLive }
            return a.createdAt < b.createdAt
        }
    }

    /// The servers table as an operator reads it: live rows first, newest last, then history.
    /// `wide` adds the image, the agent's id, attempts and the next retry, and the full id.
    public static func status(_ rows: [ServerRecord], now: Date = Date(), wide: Bool = false) -> String {
        var header = ["ID", "NAME", "STATUS", "REGION", "SIZE", "DROPLET", "IPV4", "IPV6", "AGE", "AGENT"]
        if wide { header += ["IMAGE", "AGENT ID", "ATTEMPTS", "NEXT RETRY"] }
        header.append("LAST ERROR / DRIFT")
        let table = ordered(rows).map { row -> [String] in
            var status = row.state.status.rawValue
            if let note = liveNote(row.state) { status += " (\(note))" }
            if row.deleteRequestedAt != nil, row.state.status != .deleted, row.state.status != .deleting {
                status += " (delete requested)"
            }
            let id = row.id.uuidString.lowercased()
            var cells = [
                wide ? id : String(id.prefix(8)),
                beside(row.name, row.state.observed?.name),
                status,
                beside(row.region, row.state.observed?.region),
                beside(row.size, row.state.observed?.size),
                row.state.dropletID.map(String.init) ?? "-",
                row.state.ipv4 ?? "-",
                row.state.ipv6 ?? "-",
                age(from: row.createdAt, to: now),
                agent(of: row, now: now),
            ]
            if wide {
                cells += [
                    beside(row.image, row.state.observed?.image), row.state.agentID?.uuidString.lowercased() ?? "-",
                    String(row.state.createAttempts),
                    row.state.nextAttemptAt.map { $0 > now ? "in \(age(from: now, to: $0))" : "due" } ?? "-",
                ]
            }
            cells.append(
                [row.state.lastError, row.state.drift.map { "drift: \($0)" }].compactMap { $0.map(escaped) }
                    .joined(separator: "; ")
            )
            return cells
        }
        var counts: [ServerStatus: Int] = [:]
        for row in rows { counts[row.state.status, default: 0] += 1 }
        let summary = ServerStatus.allCases.compactMap { s in counts[s].map { "\($0) \(s.rawValue)" } }.joined(
            separator: ", "
        )
        let drifted = rows.filter { $0.state.drift != nil && $0.state.status != .deleted }.count
        let changing = rows.filter { $0.state.change != nil && $0.state.status != .deleted }.count
        return render([header] + table) + "\n\(rows.count) server\(rows.count == 1 ? "" : "s")"
            + (summary.isEmpty ? "" : ": \(summary)")
            + (drifted + changing == 0 ? "" : "; \(drifted) drifted, \(changing) changing")
    }

    /// "-" without an agent, "not connected" before its first connection, else how long since the
    /// hub last saw it.
    static func agent(of row: ServerRecord, now: Date) -> String {
        guard row.state.agentID != nil else { return "-" }
        guard let seenAt = row.agent?.seenAt else { return "not connected" }
        return "seen \(age(from: seenAt, to: now)) ago"
    }

    static func age(from: Date, to: Date) -> String {
        let seconds = max(0, Int(to.timeIntervalSince(from)))
        switch seconds {
        case ..<120: return "\(seconds)s"
        case ..<7200: return "\(seconds / 60)m"
        case ..<172_800: return "\(seconds / 3600)h"
        default: return "\(seconds / 86400)d"
        }
    }

    /// Left-aligned columns; the last column is not padded.
    static func render(_ table: [[String]]) -> String {
        guard let columns = table.first?.count else { return "" }
        let widths = (0..<columns).map { c in table.map { $0[c].count }.max() ?? 0 }
        return table.map { row in
            row.enumerated().map { c, cell in
                c == columns - 1 ? cell : cell + String(repeating: " ", count: widths[c] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
