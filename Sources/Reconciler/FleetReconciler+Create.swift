#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import Synchronization
import Timekeeping

// The act layer of a create: sent through `sendOnce` (its intent recorded first, the settle bound
// counting from it), and what came of it recorded by the core's rules (`Decider.afterCreate`).

extension FleetReconciler {
    func create(_ order: CreateOrder, row: ServerRecord, revision: Int64, state: DaemonState) async -> DaemonState? {
        if let problem = order.specification.problem ?? cloud.problem(with: order) {
            var failed = state
            failed.status = .failed
            failed.lastError = CreateMessages.invalid(problem)
            failed.nextAttemptAt = nil
            failed.transientFailures = 0
            return await write(row: row, expectedRevision: revision, from: state, to: failed) != nil ? failed : nil
        }
        guard mayAct() else { return nil }
        // Agent bootstrap: this attempt's agent (the row's, re-keyed, or a new one) and its key,
        // which from here on exists only in `userData` and, as a hash, in the intent's write.
        let enrollment = configuration.enrollment.map { enrollment in
            let agent = state.agentID ?? UUID()
            let key = AgentEnrollment.newKey()
            return (
                agent: agent, keySHA256: AgentEnrollment.keySHA256(key),
                userData: enrollment.userData(agent: agent, key: key)
            )
        }

        let (decider, agent) = (self.decider, enrollment?.agent)
        let sent = await sendOnce(
            row: row,
            revision: revision,
            from: state,
            intent: { now in decider.intent(from: state, at: now, agent: agent, order: order) },
            agentKeySHA256: enrollment?.keySHA256,
            what: "create for server \(row.name)",
            announce: Announcement(kind: .createRequested, droplet: nil) { intent in
                "creating droplet \(order.name) in \(order.region) (\(order.size), \(order.image)), "
                    + "\(order.specification.creationOnly), tags [\(order.tags.joined(separator: ", "))], attempt \(intent.createAttempts)"
                    + (agent.map { ", with a new key for agent \($0.uuidString.lowercased())" } ?? "")
            }
        ) { permit, lastCheck in
            try await cloud.create(order, userData: enrollment?.userData, permit: permit, lastCheck: lastCheck)
        }
        let (outcome, requestID): (CreateOutcome, String?) = sent.outcome { (.accepted($0.droplet), $0.requestID) }
        ReconcilerMetrics.create(outcome)
        // A withdrawal (lost leadership, a changed row) leaves the row as it is.
        let backsOff = if case .transient = outcome { true } else { false }
        let after = await writeOutcome(
            of: sent.written,
            row: row,
            revision: revision,
            from: state,
            backsOff: backsOff,
            requestID: requestID,
            entry: { next, recorded in Transition.entry(of: outcome, server: row.name, next: next, recorded: recorded) }
        ) { intent in
            decider.afterCreate(outcome, before: state, intent: intent ?? state, at: databaseNow(), jitter: jitter())
        }
        return after
    }
}
