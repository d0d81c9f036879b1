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
        let sent = await sendOnce(
            row: row,
            revision: revision,
            from: from,
            intent: { now in decider.actionIntent(from: state, at: now) },
            what: "\(order.kind.type) of droplet \(order.dropletID)",
            // A shutdown before a destroy begins the destroy: its entry, written with the intent
            // before the request leaves, is what the destroy budget counts, on every replica.
            announce: Announcement(
                kind: order.kind == .shutdown ? .destroySending : .actionRequested,
                droplet: order.dropletID
            ) { intent in
                "server \(row.name): sending \(order.kind.description) to droplet \(order.dropletID) (\(intent.change?.progress ?? order.kind.type))"
                    + (order.kind == .shutdown ? ", before destroying it: its deletion was requested" : "")
            }
        ) { permit, lastCheck in
            try await cloud.perform(order, permit: permit, lastCheck: lastCheck)
        }
        let (outcome, requestID): (ActionOutcome, String?) = sent.outcome {
            ($0.actionID.map { .accepted(actionID: $0) } ?? .carriedOut, $0.requestID)
        }
        let backsOff = if case .transient = outcome { true } else { false }
        if case .withdrawn(let reason) = outcome {
            logger.info(
                "\(order.kind.description) of droplet \(order.dropletID) withdrawn before it was sent (\(reason)); the row is decided again",
                metadata: ["SERVER_ID": "\(row.id.uuidString.lowercased())"]
            )
        }
        if case .carriedOut = outcome { remember(carriedOut: order.kind, on: order.dropletID, at: databaseNow()) }
        let after = await writeOutcome(
            of: sent.written,
            row: row,
            revision: revision,
            from: from,
            backsOff: backsOff,
            requestID: requestID,
            entry: { next, _ in
                Transition.entry(
                    of: outcome,
                    action: order.kind,
                    droplet: order.dropletID,
                    server: row.name,
                    next: next
                )
            }
        ) { intent in
            decider.afterAction(outcome, intent: intent ?? state, at: databaseNow(), jitter: jitter())
        }
        return after
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
                let sentAt = databaseNow()
                let droplet = try await cloud.droplet(id: dropletID)
                // Kept beyond this pass: a list read before the step ended must not undo it.
                remember(read: droplet, id: dropletID, sentAt: sentAt)
                if let droplet {
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
