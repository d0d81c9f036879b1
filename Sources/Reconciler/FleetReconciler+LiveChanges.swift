import DigitalOcean
import Foundation
import ReconcileCore
import Timekeeping

// The act layer of a live change's step (a rename, power off, resize or power on). Its order is a
// create's: wait for the budget, record the step's intent (`change_sent_at`) through the leading
// session, send only if this replica still may act and the intent is fresh, then record what came
// of it by the core's rules (`Decider.afterAction`). An answer that never came leaves the intent:
// the next passes read the droplet, and nothing is sent again before it shows the step undone.

extension FleetReconciler {
    func send(
        _ order: DropletActionOrder,
        row: ServerRecord,
        revision: Int64,
        from: DaemonState,
        state: DaemonState
    ) async -> DaemonState? {
        if let problem = cloud.problem(with: order) {
            let next = decider.afterAction(
                .refused(reason: problem),
                intent: state,
                at: databaseNow(),
                jitter: jitter()
            )
            return await write(row: row, expectedRevision: revision, from: from, to: next) != nil ? next : nil
        }
        guard mayAct() else { return nil }
        let record = IntentRecord()
        let outcome: ActionOutcome
        var requestID: String?
        do {
            let (clock, decider, mayAct) = (self.clock, self.decider, self.mayAct)
            let gate = SendGate(
                prepare: {
                    await self.recordActionIntent(
                        order,
                        row: row,
                        revision: revision,
                        from: from,
                        state: state,
                        into: record
                    )
                },
                stillMaySend: {
                    guard let started = record.started.withLock({ $0 }) else { return false }
                    return decider.maySend(intentAge: clock.uptime() - started) && mayAct()
                }
            )
            let accepted = try await cloud.perform(order, gate: gate)
            requestID = accepted.requestID
            outcome = .accepted(actionID: accepted.actionID)
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

        guard let written = record.written.withLock({ $0 }) else {
            // Nothing was written, so nothing was sent: only a refusal by the budget backs off.
            guard case .transient = outcome else { return nil }
            let next = decider.afterAction(outcome, intent: state, at: databaseNow(), jitter: jitter())
            return await write(row: row, expectedRevision: revision, from: from, to: next) != nil ? next : nil
        }
        let next = decider.afterAction(outcome, intent: written.state, at: databaseNow(), jitter: jitter())
        let stored =
            await write(
                row: row,
                expectedRevision: written.revision,
                from: written.state,
                to: next,
                requestID: requestID
            ) != nil
        await recordActionOutcome(
            outcome,
            order: order,
            row: row,
            intent: written.state,
            next: next,
            requestID: requestID
        )
        return stored ? next : written.state
    }

    /// Runs once the budget lets the step go: writes its intent, then says whether to send.
    private func recordActionIntent(
        _ order: DropletActionOrder,
        row: ServerRecord,
        revision: Int64,
        from: DaemonState,
        state: DaemonState,
        into record: IntentRecord
    ) async -> Bool {
        let started = clock.uptime()
        record.started.withLock { $0 = started }
        guard mayAct() else { return false }
        let intent = decider.actionIntent(from: state, at: databaseNow())
        guard let intentRevision = await write(row: row, expectedRevision: revision, from: from, to: intent) else {
            return false
        }
        record.written.withLock { $0 = (intent, intentRevision) }
        let age = clock.uptime() - started
        guard decider.maySend(intentAge: age), mayAct() else {
            logger.warning(
                "\(order.kind.type) of droplet \(order.dropletID) withdrawn: its intent took \(age) to record or leadership lapsed",
                metadata: ["SERVER_ID": "\(row.id.uuidString.lowercased())"]
            )
            return false
        }
        await audit.emit(
            event(
                .actionRequested,
                row: row,
                droplet: order.dropletID,
                message:
                    "server \(row.name): sending \(Self.describe(order.kind)) to droplet \(order.dropletID) (\(intent.change?.progress ?? order.kind.type))"
            )
        )
        return true
    }

    private func recordActionOutcome(
        _ outcome: ActionOutcome,
        order: DropletActionOrder,
        row: ServerRecord,
        intent: DaemonState,
        next: DaemonState,
        requestID: String?
    ) async {
        let what = "\(Self.describe(order.kind)) of droplet \(order.dropletID)"
        switch outcome {
        case .accepted(let actionID):
            await audit.emit(
                event(
                    .actionAccepted,
                    row: row,
                    droplet: order.dropletID,
                    requestID: requestID,
                    message:
                        "server \(row.name): DigitalOcean accepted \(what) as action \(actionID); following it to completion"
                )
            )
        case .refused:
            break  // the write's change_failed entry says why
        case .transient:
            await audit.emit(
                event(
                    .retrying,
                    row: row,
                    droplet: order.dropletID,
                    requestID: requestID,
                    message: "server \(row.name): \(next.lastError ?? what)"
                )
            )
        case .unknown(let reason):
            await audit.emit(
                event(
                    .actionUncertain,
                    row: row,
                    droplet: order.dropletID,
                    requestID: requestID,
                    message:
                        "server \(row.name): \(what) may or may not have been carried out (\(reason)); the droplet is read again before anything is repeated"
                )
            )
        case .withdrawn(let reason):
            logger.info(
                "\(what) withdrawn before it was sent (\(reason)); the row is decided again",
                metadata: ["SERVER_ID": "\(row.id.uuidString.lowercased())"]
            )
        }
    }

    /// The audit entries of a write's change to a row's live change and drift.
    func auditLiveChange(row: ServerRecord, from: DaemonState, to: DaemonState, requestID: String?) async {
        let droplet = to.dropletID ?? from.dropletID
        if let before = from.change {
            let after = to.change
            if after == nil, let refused = to.refused, refused != from.refused {
                await audit.emit(
                    event(
                        .changeFailed,
                        row: row,
                        droplet: droplet,
                        requestID: requestID,
                        message:
                            "server \(row.name): \(before.goal.description) of droplet \(droplet.map(String.init) ?? "?") did not happen: \(refused.reason)"
                    )
                )
            } else if after == nil {
                await audit.emit(
                    event(
                        before.failure == nil ? .changeCompleted : .changeFailed,
                        row: row,
                        droplet: droplet,
                        message: before.failure.map {
                            "server \(row.name): \($0); droplet \(droplet.map(String.init) ?? "?") is powered on again"
                        }
                            ?? "server \(row.name): \(before.goal.description) of droplet \(droplet.map(String.init) ?? "?") completed"
                    )
                )
            } else if let after, after.failure != nil, before.failure == nil {
                await audit.emit(
                    event(
                        .changeFailed,
                        row: row,
                        droplet: droplet,
                        requestID: requestID,
                        message:
                            "server \(row.name): \(after.failure ?? "the change failed"); powering droplet \(droplet.map(String.init) ?? "?") back on"
                    )
                )
            } else if let after, after.stepIndex > before.stepIndex {
                await audit.emit(
                    event(
                        .actionCompleted,
                        row: row,
                        droplet: droplet,
                        message:
                            "server \(row.name): \(before.step.type) of droplet \(droplet.map(String.init) ?? "?") done; \(after.progress)"
                    )
                )
            }
        } else if to.change == nil, let refused = to.refused, refused != from.refused {
            await audit.emit(
                event(
                    .changeFailed,
                    row: row,
                    droplet: droplet,
                    message:
                        "server \(row.name): the \(refused.column) \(refused.value) was not applied: \(refused.reason)"
                )
            )
        }
        switch (from.drift, to.drift) {
        case (nil, let drift?):
            await audit.emit(
                event(
                    .driftDetected,
                    row: row,
                    droplet: droplet,
                    message: "server \(row.name) drifts from its droplet: \(drift)"
                )
            )
        case (let old?, let drift?) where old != drift:
            await audit.emit(
                event(
                    .driftDetected,
                    row: row,
                    droplet: droplet,
                    message: "server \(row.name) drifts from its droplet: \(drift)"
                )
            )
        case (_?, nil):
            await audit.emit(
                event(
                    .driftCleared,
                    row: row,
                    droplet: droplet,
                    message: "server \(row.name) matches its droplet again"
                )
            )
        default:
            break
        }
    }

    /// Reads what live changes wait on: each action's progress, and the droplet itself (fresher
    /// than the list) when its action ended or its step's outcome is unknown. One request at a
    /// time, like every read of a pass.
    func observeLiveChanges(rows: [ServerRecord], into observation: inout Observation) async {
        let following = rows.compactMap { row -> (dropletID: Int64, change: LiveChange)? in
            guard let change = row.state.change, let dropletID = row.state.dropletID, row.deleteRequestedAt == nil,
                row.state.status != .failed, row.state.status != .deleted
            else { return nil }
            return (dropletID, change)
        }
        var fresh: [Int64: ObservedDroplet] = [:]
        for (dropletID, change) in following.prefix(configuration.maxLookupsPerPass) {
            guard leads() else { return }
            var readDroplet = change.actionID == nil
            if let actionID = change.actionID {
                do {
                    let progress = try await cloud.progress(ofAction: actionID)
                    observation.actions[actionID] = progress
                    readDroplet = progress != .inProgress
                } catch let failure as CloudFailure where failure.kind == .permanent {
                    // Unknown to DigitalOcean: the droplet itself says what became of the step.
                    observation.actions[actionID] = .unknown
                    readDroplet = true
                } catch {
                    logger.debug("progress of action \(actionID) could not be read; deciding without it: \(error)")
                }
            }
            guard readDroplet else { continue }
            do {
                if let droplet = try await cloud.droplet(id: dropletID) {
                    fresh[dropletID] = droplet
                } else {
                    observation.goneDropletIDs.insert(dropletID)
                }
            } catch {
                logger.debug("lookup of droplet \(dropletID) failed; deciding without it: \(error)")
            }
        }
        guard !fresh.isEmpty else { return }
        // The fresh reading replaces the listed one; a droplet the list did not show is added.
        let listed = Set(observation.droplets.map(\.id))
        observation.droplets = observation.droplets.map { fresh[$0.id] ?? $0 }
        observation.droplets += fresh.values.filter { !listed.contains($0.id) }
    }

    static func describe(_ kind: DropletActionKind) -> String {
        switch kind {
        case .rename(let name): "rename to \(name)"
        case .powerOff: "power off"
        case .resize(let size, let disk): "resize to \(size)" + (disk ? " with its disk" : " (CPU and memory only)")
        case .powerOn: "power on"
        }
    }
}
