#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// Project assignment (design.md, "The droplet the daemon asks for"): a droplet goes into the
// project its row (or the configuration) names once it is up. Rows record the project their
// droplet was assigned to, so a crash between the create and the assignment loses nothing, and
// a pass sends one request per project for every droplet that waits, not one per droplet.

/// Droplets to assign to one project in one request.
public struct ProjectAssignment: Sendable, Hashable {
    public struct Member: Sendable, Hashable {
        public var rowID: UUID
        public var dropletID: Int64
        public var expectedRevision: Int64
        /// The row as it is; the loop writes it with `projectAssigned` set once DigitalOcean agreed.
        public var state: DaemonState
    }

    public var projectID: String
    public var members: [Member]

    /// DigitalOcean's answer lists each resource: a request stays well inside one page of it.
    public static let maximumMembers = 50

    /// What a row records once its droplet is assigned: the droplet and the project, so a new
    /// droplet for the row (made again, or another adopted) is assigned afresh.
    public static func record(dropletID: Int64, projectID: String) -> String {
        "\(dropletID) \(projectID)"
    }
}

extension Decider {
    /// The project `row`'s droplet waits to be assigned to, when this pass saw the droplet; nil
    /// when it waits for none.
    func pendingProject(of row: ServerRecord, index: ObservationIndex) -> String? {
        guard let dropletID = row.state.dropletID, index.byID[dropletID] != nil,
            waitsForProject(row, dropletID: dropletID)
        else { return nil }
        return specification(of: row).projectID
    }

    /// Whether the row's server is up and its droplet not yet assigned to the row's project.
    func waitsForProject(_ row: ServerRecord, dropletID: Int64) -> Bool {
        // Cheap first: nearly every platform names no project, or has assigned every droplet.
        guard row.options?.projectID != nil || configuration.droplets.projectID != nil,
            row.deleteRequestedAt == nil, row.state.status.isUp,
            let project = specification(of: row).projectID
        else { return false }
        return row.state.projectAssigned != ProjectAssignment.record(dropletID: dropletID, projectID: project)
    }

    /// One assignment per project (in requests of at most `maximumMembers`), in the projects' order.
    func assignProjects(_ waiting: [String: [ProjectAssignment.Member]], into plan: inout PlanBuilder) {
        for project in waiting.keys.sorted() {
            let members = waiting[project] ?? []
            for start in stride(from: 0, to: members.count, by: ProjectAssignment.maximumMembers) {
                let batch = Array(members[start..<min(start + ProjectAssignment.maximumMembers, members.count)])
                plan.actions.append(.assign(ProjectAssignment(projectID: project, members: batch)))
            }
        }
    }
}
