import DigitalOcean
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import Synchronization
import Timekeeping

// The order every request that must not go out late follows (a create, a droplet action); it is
// the heart of exactly-once:
//   1. wait for the rate budget (nothing is written yet: a crash here leaves no trace to settle);
//   2. once it lets the request go, write the intent (the database's time) through the leading
//      session;
//   3. send only if this replica still may act and the intent is still fresh (its write began no
//      longer ago than the send window), checked once after the write and once more right before
//      the request leaves, with nothing in between that could suspend: otherwise withdraw it;
//   4. the caller records what came of it, by the core's rules.
// A long wait in the budget therefore never shortens a settle period, and a deposed or resumed
// leader sends nothing.

extension FleetReconciler {
    /// What the gate recorded: when the intent's write began (uptime), the intent as written and
    /// the row's revision after it.
    final class IntentRecord: Sendable {
        let started = Mutex<Duration?>(nil)
        let written = Mutex<(state: DaemonState, revision: Int64)?>(nil)
    }

    /// What a gated request came to.
    struct GatedSend<Accepted: Sendable>: Sendable {
        var result: Result<Accepted, CloudFailure>
        /// The intent as written and the row's revision after it; nil when none was written,
        /// and then nothing was sent.
        var written: (state: DaemonState, revision: Int64)?

        /// The core's outcome and DigitalOcean's request id, given what an acceptance means.
        func outcome<Outcome: GatedOutcome>(
            accepted: (Accepted) -> (Outcome, String?)
        ) -> (outcome: Outcome, requestID: String?) {
            switch result {
            case .success(let value):
                return accepted(value)
            case .failure(let failure):
                let outcome: Outcome =
                    switch failure.kind {
                    case .permanent: .refused(reason: failure.message)
                    case .transient: .transient(reason: failure.message, retryAfter: failure.retryAfter)
                    case .outcomeUnknown: .unknown(reason: failure.message)
                    case .withdrawn: .withdrawn(reason: failure.message)
                    }
                return (outcome, failure.requestID)
            }
        }
    }

    /// The audit entry the intent's write carries: the request about to leave.
    struct Announcement: Sendable {
        var kind: AuditKind
        var droplet: Int64?
        var message: @Sendable (_ intent: DaemonState) -> String
    }

    /// Sends one request through a `SendGate` that records its intent first (see above).
    /// - Parameters:
    ///   - intent: the intent to write, given the database's time when the budget let it go.
    ///   - agentKeySHA256: a new agent key's hash, written with the intent (creates with bootstrap).
    ///   - what: how the withdrawal warning names the request.
    func sendGated<Accepted: Sendable>(
        row: ServerRecord,
        revision: Int64,
        from state: DaemonState,
        intent: @escaping @Sendable (Date) -> DaemonState,
        agentKeySHA256: String? = nil,
        what: String,
        announce: Announcement,
        send: (SendGate) async throws -> Accepted
    ) async -> GatedSend<Accepted> {
        let record = IntentRecord()
        let (clock, decider, mayAct) = (self.clock, self.decider, self.mayAct)
        let gate = SendGate(
            prepare: {
                await self.recordIntent(
                    row: row,
                    revision: revision,
                    from: state,
                    intent: intent,
                    agentKeySHA256: agentKeySHA256,
                    what: what,
                    announce: announce,
                    into: record
                )
            },
            stillMaySend: {
                guard let started = record.started.withLock({ $0 }) else { return false }
                return decider.maySend(intentAge: clock.uptime() - started) && mayAct()
            }
        )
        let result: Result<Accepted, CloudFailure>
        do {
            result = .success(try await send(gate))
        } catch {
            result = .failure(error as? CloudFailure ?? CloudFailure(kind: .outcomeUnknown, message: "\(error)"))
        }
        return GatedSend(result: result, written: record.written.withLock { $0 })
    }

    /// Writes what came of a gated request and returns the row as it now stands (nil: as it was).
    /// Without an intent nothing was sent: only a refusal by the budget (`backsOff`) is written,
    /// over the row as it was. With one, `next(intent)` is written over the intent, with the
    /// outcome's entry (`entry`); when that write fails the intent stands, the next leader settles
    /// the row from it, and the entry is recorded on its own (the request happened either way).
    func writeOutcome(
        of sent: (state: DaemonState, revision: Int64)?,
        row: ServerRecord,
        revision: Int64,
        from: DaemonState,
        backsOff: Bool,
        requestID: String?,
        entry: (_ next: DaemonState, _ recorded: Bool) -> OutcomeEntry?,
        next: (_ intent: DaemonState?) -> DaemonState
    ) async -> DaemonState? {
        guard let sent else {
            guard backsOff else { return nil }
            let after = next(nil)
            return await write(row: row, expectedRevision: revision, from: from, to: after) != nil ? after : nil
        }
        let after = next(sent.state)
        var change = transition(row: row, from: sent.state, to: after, requestID: requestID)
        change.append(entry(after, true))
        let stored = await write(change, expectedRevision: sent.revision) != nil
        if !stored, let alone = entry(sent.state, false) {
            await audit.emit(
                event(
                    alone.kind,
                    row: row,
                    droplet: alone.droplet,
                    from: alone.statuses ? from.status : nil,
                    to: alone.statuses ? sent.state.status : nil,
                    requestID: requestID,
                    message: alone.message
                )
            )
        }
        return stored ? after : sent.state
    }

    /// Runs once the budget lets the request go: writes the intent, then says whether to send.
    private func recordIntent(
        row: ServerRecord,
        revision: Int64,
        from state: DaemonState,
        intent makeIntent: @Sendable (Date) -> DaemonState,
        agentKeySHA256: String?,
        what: String,
        announce: Announcement,
        into record: IntentRecord
    ) async -> Bool {
        let started = clock.uptime()
        record.started.withLock { $0 = started }
        guard mayAct() else { return false }
        let intent = makeIntent(databaseNow())
        // The intent's write carries the announcement: the trail tells of the request exactly
        // when the row records it.
        var change = transition(row: row, from: state, to: intent)
        change.append(announce.kind, droplet: announce.droplet, statuses: true, message: announce.message(intent))
        guard let intentRevision = await write(change, expectedRevision: revision, agentKeySHA256: agentKeySHA256)
        else { return false }
        record.written.withLock { $0 = (intent, intentRevision) }
        if intent.createAttemptedAt != state.createAttemptedAt,
            let sent = CreateIntent(of: intent, configuration: configuration.decision)
        {
            createsSent[row.id] = sent
        }
        let age = clock.uptime() - started
        guard decider.maySend(intentAge: age), mayAct() else {
            logger.warning(
                "\(what) withdrawn: its intent took \(age) to record or leadership lapsed",
                metadata: ["SERVER_ID": "\(row.id.uuidString.lowercased())"]
            )
            return false
        }
        return true
    }
}
