import DigitalOcean
import Foundation
import ReconcileCore
import Synchronization
import Timekeeping

// The act layer of a create. Its order is the heart of exactly-once:
//   1. wait for the rate budget (nothing is written yet: a crash here leaves no trace to settle);
//   2. once it lets the request go, write the intent (the database's time, and the last instant
//      the request could reach DigitalOcean) through the leading session;
//   3. send only if this replica still may act and the intent is still fresh (its write began no
//      longer ago than the send window), checked once after the write and once more right before
//      the request leaves, with nothing in between that could suspend: otherwise withdraw it;
//   4. record what came of it, by the core's rules (`Decider.afterCreate`).
// A long wait in the budget therefore never shortens a settle period, and a deposed or resumed
// leader sends nothing.

extension FleetReconciler {
    /// What the gate recorded: when the intent's write began (uptime), the intent as written and
    /// the row's revision after it.
    final class IntentRecord: Sendable {
        let started = Mutex<Duration?>(nil)
        let written = Mutex<(state: DaemonState, revision: Int64)?>(nil)
    }

    func create(_ order: CreateOrder, row: ServerRecord, revision: Int64, state: DaemonState) async -> DaemonState? {
        if let problem = cloud.problem(with: order) {
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

        let record = IntentRecord()
        let outcome: CreateOutcome
        var requestID: String?
        do {
            let (clock, decider, mayAct) = (self.clock, self.decider, self.mayAct)
            let gate = SendGate(
                prepare: {
                    await self.recordIntent(
                        for: row,
                        revision: revision,
                        state: state,
                        order: order,
                        agent: enrollment.map { ($0.agent, $0.keySHA256) },
                        into: record
                    )
                },
                stillMaySend: {
                    guard let started = record.started.withLock({ $0 }) else { return false }
                    return decider.maySend(intentAge: clock.uptime() - started) && mayAct()
                }
            )
            let accepted = try await cloud.create(order, userData: enrollment?.userData, gate: gate)
            requestID = accepted.requestID
            outcome = .accepted(accepted.droplet)
        } catch {
            let failure = error as? CloudFailure ?? CloudFailure(kind: .outcomeUnknown, message: "\(error)")
            requestID = failure.requestID
            switch failure.kind {
            case .permanent: outcome = .refused(reason: failure.message)
            case .transient: outcome = .transient(reason: failure.message, retryAfter: failure.retryAfter)
            case .outcomeUnknown: outcome = .unknown(reason: failure.message)
            case .withdrawn: outcome = .withdrawn(reason: failure.message)
            }
        }
        ReconcilerMetrics.create(outcome)

        guard let written = record.written.withLock({ $0 }) else {
            // No intent was written, so nothing was sent: only a refusal by the budget is worth
            // a backoff; a withdrawal (lost leadership, a changed row) leaves the row as it is.
            guard case .transient = outcome else { return nil }
            let next = decider.afterCreate(outcome, before: state, intent: state, at: databaseNow(), jitter: jitter())
            return await write(row: row, expectedRevision: revision, from: state, to: next) != nil ? next : nil
        }
        let next = decider.afterCreate(
            outcome,
            before: state,
            intent: written.state,
            at: databaseNow(),
            jitter: jitter()
        )
        let stored =
            await write(
                row: row,
                expectedRevision: written.revision,
                from: written.state,
                to: next,
                requestID: requestID
            ) != nil
        // When the write fails, the intent stands: the next leader settles the row from it.
        await recordOutcome(
            outcome,
            row: row,
            before: state,
            next: stored ? next : written.state,
            recorded: stored,
            requestID: requestID
        )
        return stored ? next : written.state
    }

    /// Runs once the budget lets the create go: writes the intent, then says whether to send.
    private func recordIntent(
        for row: ServerRecord,
        revision: Int64,
        state: DaemonState,
        order: CreateOrder,
        agent: (id: UUID, keySHA256: String)?,
        into record: IntentRecord
    ) async -> Bool {
        let started = clock.uptime()
        record.started.withLock { $0 = started }
        guard mayAct() else { return false }
        let intent = decider.intent(from: state, at: databaseNow(), agent: agent?.id)
        guard
            let intentRevision = await write(
                row: row,
                expectedRevision: revision,
                from: state,
                to: intent,
                agentKeySHA256: agent?.keySHA256
            )
        else { return false }
        record.written.withLock { $0 = (intent, intentRevision) }
        let age = clock.uptime() - started
        guard decider.maySend(intentAge: age), mayAct() else {
            logger.warning(
                "create for server \(row.name) withdrawn: its intent took \(age) to record or leadership lapsed",
                metadata: ["SERVER_ID": "\(row.id.uuidString.lowercased())"]
            )
            return false
        }
        await audit.emit(
            event(
                .createRequested,
                row: row,
                from: state.status,
                to: state.status,
                message:
                    "creating droplet \(order.name) in \(order.region) (\(order.size), \(order.image)), attempt \(intent.createAttempts)"
                    + (agent.map { ", with a new key for agent \($0.id.uuidString.lowercased())" } ?? "")
            )
        )
        return true
    }

    /// The audit entry of a create's outcome (status changes are audited by the write).
    /// `next` is the row as it now stands; `recorded` says whether the outcome's write went through
    /// (it does not when the row changed meanwhile or this replica no longer leads).
    private func recordOutcome(
        _ outcome: CreateOutcome,
        row: ServerRecord,
        before: DaemonState,
        next: DaemonState,
        recorded: Bool,
        requestID: String?
    ) async {
        switch outcome {
        case .accepted(let droplet):
            let note =
                recorded
                ? ""
                : "; the row could not be updated (it changed, or this replica no longer leads): the next pass binds the droplet by its identity tag"
            await audit.emit(
                event(
                    .createAccepted,
                    row: row,
                    droplet: droplet.id,
                    from: before.status,
                    to: next.status,
                    requestID: requestID,
                    message: "DigitalOcean accepted droplet \(droplet.id) for server \(row.name)\(note)"
                )
            )
        case .refused:
            break  // the write's `failed` entry says why
        case .transient:
            await audit.emit(
                event(
                    .retrying,
                    row: row,
                    from: before.status,
                    to: next.status,
                    requestID: requestID,
                    message: "server \(row.name): \(next.lastError ?? "")"
                )
            )
        case .unknown(let reason):
            await audit.emit(
                event(
                    .createUncertain,
                    row: row,
                    from: before.status,
                    to: next.status,
                    requestID: requestID,
                    message:
                        "server \(row.name): the create may or may not have happened (\(reason)); no new create until a look a settle period after \(next.createReachableUntil?.formatted(.iso8601) ?? "the attempt") shows none"
                )
            )
        case .withdrawn(let reason):
            await audit.emit(
                event(
                    .createWithdrawn,
                    row: row,
                    from: before.status,
                    to: next.status,
                    message:
                        "server \(row.name): create withdrawn before it was sent (\(reason)); nothing was sent, the row is decided again"
                )
            )
        }
    }
}
