#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import Timekeeping

// The act layer of a project assignment: one request for a batch of droplets, then each row
// records it. A project DigitalOcean refuses (unknown, or the token may not use it) is tried
// again after a backoff of its own, so a wrong project id costs a request every few minutes,
// not one a pass, and delays nothing else.

extension FleetReconciler {
    func assign(_ assignment: ProjectAssignment, rows: [UUID: ServerRecord]) async {
        let project = assignment.projectID
        let now = databaseNow()
        if let retry = projectRetries[project], now < retry.at { return }
        guard mayAct() else { return }
        let droplets = assignment.members.map(\.dropletID)
        do {
            let permit = try await cloud.permit()
            try await cloud.assign(dropletIDs: droplets, toProject: project, permit: permit, lastCheck: mayAct)
        } catch let failure as CloudFailure where failure.kind == .withdrawn {
            return
        } catch {
            let failure = error as? CloudFailure ?? CloudFailure(kind: .transient, message: "\(error)")
            let failures = (projectRetries[project]?.failures ?? 0) + 1
            let delay = Backoff.delay(failures: failures, configuration: decider.configuration, jitter: jitter())
            projectRetries[project] = (failures, now.adding(delay))
            await audit.emit(
                event(
                    .retrying,
                    row: nil,
                    droplet: nil,
                    requestID: failure.requestID,
                    message:
                        "could not assign \(droplets.count) droplet(s) to project \(project) (\(droplets.map(String.init).joined(separator: ", "))): \(failure.message); trying again in \(DurationText.format(delay))"
                )
            )
            return
        }
        projectRetries[project] = nil
        for member in assignment.members {
            guard let row = rows[member.rowID] else { continue }
            var next = member.state
            next.projectAssigned = ProjectAssignment.record(dropletID: member.dropletID, projectID: project)
            await write(row: row, expectedRevision: member.expectedRevision, from: member.state, to: next)
        }
        await audit.emit(
            event(
                .projectAssigned,
                row: nil,
                droplet: nil,
                message:
                    "assigned \(droplets.count) droplet(s) to project \(project): \(assignment.members.map { "\(rows[$0.rowID]?.name ?? $0.rowID.uuidString.lowercased()) (\($0.dropletID))" }.joined(separator: ", "))"
            )
        )
    }
}
