#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import Timekeeping

// The act layer of a live change's step (a rename, power off, resize or power on). Its order is a
// create's: wait for the budget, record the step's intent (`change_sent_at`) through the leading
// session, send only if this replica still may act and the intent is fresh, then record what came
// of it by the core's rules (`Decider.afterAction`). An answer that never came leaves the intent:
// the next passes read the droplet and its action history, and nothing is sent again before they
// show the step was not carried out.

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
        let decider = self.decider
        let sent = await sendGated(
            row: row,
            revision: revision,
            from: from,
            intent: { now in decider.actionIntent(from: state, at: now) },
            what: "\(order.kind.type) of droplet \(order.dropletID)",
            announce: Announcement(kind: .actionRequested, droplet: order.dropletID) { intent in
                "server \(row.name): sending \(order.kind.description) to droplet \(order.dropletID) (\(intent.change?.progress ?? order.kind.type))"
            }
        ) { gate in
            try await cloud.perform(order, gate: gate)
        }
        let (outcome, requestID): (ActionOutcome, String?) = sent.outcome {
            (.accepted(actionID: $0.actionID), $0.requestID)
        }
        let backsOff = if case .transient = outcome { true } else { false }
        let (after, _) = await writeOutcome(
            of: sent.written,
            row: row,
            revision: revision,
            from: from,
            backsOff: backsOff,
            requestID: requestID
        ) { intent in
            decider.afterAction(outcome, intent: intent ?? state, at: databaseNow(), jitter: jitter())
        }
        if let written = sent.written {
            await recordActionOutcome(
                outcome,
                order: order,
                row: row,
                intent: written.state,
                next: after ?? written.state,
                requestID: requestID
            )
        }
        return after
    }

    private func recordActionOutcome(
        _ outcome: ActionOutcome,
        order: DropletActionOrder,
        row: ServerRecord,
        intent: DaemonState,
        next: DaemonState,
        requestID: String?
    ) async {
        let what = "\(order.kind.description) of droplet \(order.dropletID)"
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
        for (kind, message) in Self.liveChangeEntries(row: row, droplet: droplet, from: from, to: to) {
            await audit.emit(event(kind, row: row, droplet: droplet, requestID: requestID, message: message))
        }
    }

    /// What a write's change to a row's live change and drift says in the audit trail.
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
            if change.actionID == nil, change.sentAt != nil {
                // A step whose answer was lost: the droplet's history says whether it arrived.
                do {
                    observation.actionHistory[dropletID] = try await cloud.actions(ofDroplet: dropletID)
                } catch {
                    logger.debug("history of droplet \(dropletID) could not be read; deciding without it: \(error)")
                }
            }
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
}
