#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import TerminalText

// Machine-readable renderings (`--output json`) and what terminals are shown of untrusted text.

extension Reports {
    /// `text` as a terminal may safely show it (`TerminalText.escaped`): a row's name or an
    /// API's error text cannot move the cursor, rewrite earlier lines or forge a log line.
    public static func escaped(_ text: String) -> String {
        TerminalText.escaped(text)
    }

    /// Whether a plan changes anything (what `plan --detailed-exitcode` reports as 2). Orphans
    /// seen are reports, not changes.
    public static func hasChanges(_ plan: Plan) -> Bool {
        plan.actions.contains { action in
            switch action {
            case .update, .create, .destroy, .dropletAction, .assign, .note(.adopted): true
            case .note(.orphanSeen): false
            }
        }
    }

    // MARK: JSON

    /// One action of `plan --output json`.
    struct PlannedAction: Encodable {
        var action: String
        var serverID: String?
        var serverName: String?
        var dropletID: Int64?
        var reason: String?
        var changes: [String: Change]?
        var region: String?
        var size: String?
        var image: String?
        var tags: [String]?
        var userData: String?
        var problem: String?
        /// A rename's new name.
        var name: String?
        /// A resize's `disk`.
        var disk: Bool?
        /// A create's keys, VPC and options; a backups change's new setting.
        var sshKeys: [String]?
        var vpcUUID: String?
        var ipv6: Bool?
        var monitoring: Bool?
        var backups: Bool?
        var withDropletAgent: Bool?
        var projectID: String?

        struct Change: Encodable {
            var from: String?
            var to: String?
        }

        enum CodingKeys: String, CodingKey {
            case action, reason, changes, region, size, image, tags, problem, name, disk, ipv6, monitoring, backups
            case sshKeys = "ssh_keys"
            case vpcUUID = "vpc_uuid"
            case withDropletAgent = "with_droplet_agent"
            case projectID = "project_id"
            case serverID = "server_id"
            case serverName = "server_name"
            case dropletID = "droplet_id"
            case userData = "user_data"
        }
    }

    struct PlanDocument: Encodable {
        var changes: Bool
        var actions: [PlannedAction]
    }

    /// `plan --output json`: `{"changes": bool, "actions": [...]}`, in the order a pass would act.
    public static func planJSON(
        _ plan: Plan,
        rows: [ServerRecord],
        problems: [UUID: String] = [:],
        agentBootstrap: Bool = false
    ) -> String {
        // Every row: besides the plan's actions, drift lines name rows that have none.
        let byID = Dictionary(rows.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        func planned(_ action: String, row id: UUID?) -> PlannedAction {
            PlannedAction(
                action: action,
                serverID: id?.uuidString.lowercased(),
                serverName: id.flatMap { byID[$0]?.name }
            )
        }
        var actions: [PlannedAction] = []
        for action in plan.actions {
            switch action {
            case let .update(id, _, from, to):
                var entry = planned("update", row: id)
                var changes: [String: PlannedAction.Change] = [:]
                func note(_ key: String, _ a: String?, _ b: String?) {
                    if a != b { changes[key] = .init(from: a, to: b) }
                }
                note("status", from.status.rawValue, to.status.rawValue)
                note("droplet_id", from.dropletID.map(String.init), to.dropletID.map(String.init))
                note("ipv4", from.ipv4, to.ipv4)
                note("ipv6", from.ipv6, to.ipv6)
                note("last_error", from.lastError, to.lastError)
                note("drift", from.drift, to.drift)
                note("change", from.change?.progress, to.change?.progress)
                entry.changes = changes
                actions.append(entry)
            case let .create(order, _, _):
                if let problem = problems[order.rowID] {
                    var entry = planned("fail", row: order.rowID)
                    entry.problem = problem
                    actions.append(entry)
                } else {
                    var entry = planned("create", row: order.rowID)
                    (entry.region, entry.size, entry.image, entry.tags) = (
                        order.region, order.size, order.image, order.tags
                    )
                    let specification = order.specification
                    (entry.sshKeys, entry.vpcUUID, entry.projectID) = (
                        specification.sshKeys, specification.vpcUUID, specification.projectID
                    )
                    (entry.ipv6, entry.monitoring, entry.backups, entry.withDropletAgent) = (
                        specification.ipv6, specification.monitoring, specification.backups,
                        specification.withDropletAgent
                    )
                    entry.userData = agentBootstrap ? "cloud-init with a new agent key" : nil
                    actions.append(entry)
                }
            case let .destroy(droplet, reason):
                var entry: PlannedAction
                switch reason {
                case .deleteRequested(let id):
                    entry = planned("destroy", row: id)
                    entry.reason = "delete_requested"
                case let .duplicate(id, _, _, _):
                    entry = planned("destroy", row: id)
                    entry.reason = "duplicate"
                case .orphan:
                    entry = planned("destroy", row: nil)
                    entry.reason = "orphan"
                }
                entry.dropletID = droplet
                actions.append(entry)
            case .note(.orphanSeen(let droplet)):
                var entry = planned("orphan", row: nil)
                entry.dropletID = droplet.id
                entry.serverName = droplet.name
                actions.append(entry)
            case let .note(.adopted(id, droplet)):
                var entry = planned("adopt", row: id)
                entry.dropletID = droplet
                actions.append(entry)
            case .assign(let assignment):
                for member in assignment.members {
                    var entry = planned("assign", row: member.rowID)
                    (entry.dropletID, entry.projectID) = (member.dropletID, assignment.projectID)
                    actions.append(entry)
                }
            case let .dropletAction(order, _, _, state):
                var entry = planned(order.kind.type, row: order.rowID)
                entry.dropletID = order.dropletID
                entry.reason = state.change?.progress
                switch order.kind {
                case .rename(let name): entry.name = name
                case .resize(let size, let disk): (entry.size, entry.disk) = (size, disk)
                case .powerOff, .powerOn, .shutdown: break
                case .tag(let tag), .untag(let tag): entry.tags = [tag]
                case .backups(let on): entry.backups = on
                }
                actions.append(entry)
            }
        }
        for (row, drift) in drift(after: plan, rows: rows) {
            var entry = planned("drift", row: row.id)
            entry.dropletID = row.state.dropletID
            entry.reason = drift
            actions.append(entry)
        }
        return json(PlanDocument(changes: hasChanges(plan), actions: actions))
    }

    /// One row of `status --output json`.
    struct ServerEntry: Encodable {
        var id: String
        var name: String
        var status: String
        var region: String
        var size: String
        var image: String
        var dropletID: Int64?
        var ipv4: String?
        var ipv6: String?
        var lastError: String?
        var deleteRequested: Bool
        var createdAt: Date
        var createAttempts: Int
        var nextAttemptAt: Date?
        var agentID: String?
        var agentConnectedAt: Date?
        var agentLastSeenAt: Date?
        /// What DigitalOcean last showed: {name, region, size, image}.
        var droplet: Facts?
        var drift: String?
        var driftSince: Date?
        var change: String?
        var refused: String?

        struct Facts: Encodable {
            var name: String
            var region: String?
            var size: String?
            var image: String?
        }

        enum CodingKeys: String, CodingKey {
            case id, name, status, region, size, image, ipv4, ipv6, droplet, drift, change, refused
            case driftSince = "drift_since"
            case dropletID = "droplet_id"
            case lastError = "last_error"
            case deleteRequested = "delete_requested"
            case createdAt = "created_at"
            case createAttempts = "create_attempts"
            case nextAttemptAt = "next_attempt_at"
            case agentID = "agent_id"
            case agentConnectedAt = "agent_connected_at"
            case agentLastSeenAt = "agent_last_seen_at"
        }
    }

    /// `status --output json`: an array of servers, live rows first (the table's order).
    public static func statusJSON(_ rows: [ServerRecord]) -> String {
        json(
            ordered(rows).map { row in
                ServerEntry(
                    id: row.id.uuidString.lowercased(),
                    name: row.name,
                    status: row.state.status.rawValue,
                    region: row.region,
                    size: row.size,
                    image: row.image,
                    dropletID: row.state.dropletID,
                    ipv4: row.state.ipv4,
                    ipv6: row.state.ipv6,
                    lastError: row.state.lastError,
                    deleteRequested: row.deleteRequestedAt != nil,
                    createdAt: row.createdAt,
                    createAttempts: row.state.createAttempts,
                    nextAttemptAt: row.state.nextAttemptAt,
                    agentID: row.state.agentID?.uuidString.lowercased(),
                    agentConnectedAt: row.agent?.connectedAt,
                    agentLastSeenAt: row.agent?.lastSeenAt,
                    droplet: row.state.observed.map {
                        ServerEntry.Facts(name: $0.name, region: $0.region, size: $0.size, image: $0.image)
                    },
                    drift: row.state.drift,
                    driftSince: row.state.driftSince,
                    change: row.state.change?.progress,
                    refused: row.state.refused.map { "\($0.column) \($0.value): \($0.reason)" }
                )
            }
        )
    }

    struct EventEntry: Encodable {
        var at: Date
        var kind: String
        var fromStatus: String?
        var toStatus: String?
        var dropletID: Int64?
        var requestID: String?
        var message: String

        enum CodingKeys: String, CodingKey {
            case at, kind, message
            case fromStatus = "from_status"
            case toStatus = "to_status"
            case dropletID = "droplet_id"
            case requestID = "do_request_id"
        }
    }

    /// `events --output json`: one server's audit trail, oldest first.
    public static func eventsJSON(_ events: [AuditEvent]) -> String {
        json(
            events.map {
                EventEntry(
                    at: $0.at,
                    kind: $0.kind.rawValue,
                    fromStatus: $0.fromStatus?.rawValue,
                    toStatus: $0.toStatus?.rawValue,
                    dropletID: $0.dropletID,
                    requestID: $0.requestID,
                    message: $0.message
                )
            }
        )
    }

    /// One server's audit trail as a table, oldest first (newest last, like `kubectl describe`).
    public static func events(_ events: [AuditEvent], of row: ServerRecord) -> String {
        let header = ["TIME", "EVENT", "STATUS", "DROPLET", "MESSAGE"]
        let table = events.map { event -> [String] in
            let status: String
            switch (event.fromStatus, event.toStatus) {
            case let (from?, to?) where from != to: status = "\(from.rawValue) → \(to.rawValue)"
            case let (_, to?): status = to.rawValue
            default: status = "-"
            }
            return [
                event.at.formatted(.iso8601), event.kind.rawValue, status, event.dropletID.map(String.init) ?? "-",
                escaped(event.message),
            ]
        }
        let title = "\(escaped(row.name)) (\(row.id.uuidString.lowercased())): \(row.state.status.rawValue)"
        guard !table.isEmpty else { return title + "\nno events recorded" }
        return title + "\n" + render([header] + table)
    }

    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        // Encoding these plain values cannot fail.
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "null"
    }
}
