#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import Timekeeping

// The order every request that must not go out late follows (a create, a droplet action); it is
// the heart of exactly-once, and `sendOnce` is it, in four lines:
//   1. a permit from the rate budget (nothing is written yet: a crash here leaves no trace to
//      settle);
//   2. the intent (the database's time), written through the leading session;
//   3. the last check: this replica still may act and the intent is still fresh (its write began
//      no longer ago than the send window), asked by the client synchronously right before the
//      request leaves, with nothing in between that could suspend;
//   4. the send; the caller then records what came of it, by the core's rules.
// A long wait in the budget therefore never shortens a settle period, and a deposed or resumed
// leader sends nothing.

extension FleetReconciler {
    /// What a gated request came to.
    struct GatedSend<Accepted: Sendable>: Sendable {
        var result: Result<Accepted, CloudFailure>
        /// The intent as written and the row's revision after it; nil when none was written,
        /// and then nothing was sent.
        var written: (state: DaemonState, revision: Int64)? = nil

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

    /// Sends one request in the order above.
    /// - Parameters:
    ///   - intent: the intent to write, given the database's time once the permit is held.
    ///   - agentKeySHA256: a new agent key's hash, written with the intent (creates with bootstrap).
    ///   - what: how the withdrawal warning names the request.
    ///   - send: sends the request on the permit, asking the last check right before it leaves.
    func sendOnce<Accepted: Sendable>(
        row: ServerRecord,
        revision: Int64,
        from state: DaemonState,
        intent: (Date) -> DaemonState,
        agentKeySHA256: String? = nil,
        what: String,
        announce: Announcement,
        send: (_ permit: any SendPermit, _ lastCheck: @escaping @Sendable () -> Bool) async throws -> Accepted
    ) async -> GatedSend<Accepted> {
        let permit: any SendPermit
        do { permit = try await cloud.permit() } catch { return GatedSend(result: .failure(Self.noPermit(error))) }
        let started = clock.uptime()
        let written = await recordIntent(row, revision, from: state, intent, agentKeySHA256, announce: announce)
        guard let written, stillFresh(since: started, what: what, row: row) else {
            await cloud.giveBack(permit)
            return GatedSend(result: .failure(Self.withdrawn(what)), written: written)
        }
        let (clock, decider, mayAct) = (self.clock, self.decider, self.mayAct)
        let lastCheck: @Sendable () -> Bool = { decider.maySend(intentAge: clock.uptime() - started) && mayAct() }
        do {
            return GatedSend(result: .success(try await send(permit, lastCheck)), written: written)
        } catch {
            return GatedSend(result: .failure(Self.cloudFailure(error)), written: written)
        }
    }

    static func cloudFailure(_ error: any Error) -> CloudFailure {
        error as? CloudFailure ?? CloudFailure(kind: .outcomeUnknown, message: "\(error)")
    }

    /// A permit that was not given: nothing was written or sent, so whatever stopped it (the
    /// budget's refusal, a cancelled wait) is only a reason to try again later.
    static func noPermit(_ error: any Error) -> CloudFailure {
        error as? CloudFailure
            ?? CloudFailure(kind: .transient, message: "not sent, no permit from the rate budget: \(error)")
    }

    static func withdrawn(_ what: String) -> CloudFailure {
        CloudFailure(kind: .withdrawn, message: "\(what) withdrawn before sending; nothing was sent")
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

    /// Writes the intent, with its announcement, over the row as it was read. Returns the intent
    /// as written and the row's revision after it; nil when it could not be written (the row
    /// changed, or this replica no longer may act).
    private func recordIntent(
        _ row: ServerRecord,
        _ revision: Int64,
        from state: DaemonState,
        _ makeIntent: (Date) -> DaemonState,
        _ agentKeySHA256: String?,
        announce: Announcement
    ) async -> (state: DaemonState, revision: Int64)? {
        guard mayAct() else { return nil }
        let intent = makeIntent(databaseNow())
        // The intent's write carries the announcement: the trail tells of the request exactly
        // when the row records it.
        var change = transition(row: row, from: state, to: intent)
        change.append(announce.kind, droplet: announce.droplet, statuses: true, message: announce.message(intent))
        guard let intentRevision = await write(change, expectedRevision: revision, agentKeySHA256: agentKeySHA256)
        else { return nil }
        if intent.createAttemptedAt != state.createAttemptedAt,
            let sent = CreateIntent(of: intent, configuration: configuration.decision)
        {
            createsSent[row.id] = sent
        }
        return (intent, intentRevision)
    }

    /// Whether an intent whose write began at `started` (uptime) may still be sent, by a replica
    /// that still may act; a warning says why not.
    private func stillFresh(since started: Duration, what: String, row: ServerRecord) -> Bool {
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
