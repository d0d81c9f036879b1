#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import ReconcileCore
import Synchronization
import Timekeeping

// Act: a plan's row writes and DigitalOcean calls, and their audit entries.

extension FleetReconciler {
    // MARK: Act

    /// Performs a plan: row writes first, then DigitalOcean calls with bounded concurrency.
    /// Returns each row's state after the pass (for the summary).
    func act(on plan: Plan, rows: [ServerRecord]) async -> [UUID: DaemonState] {
        let byID = plan.rowsActedOn(in: rows)
        var finalStates: [UUID: DaemonState] = [:]
        var calls: [Action] = []
        for action in urgentFirst(plan.actions, rows: byID) {
            switch action {
            case let .update(id, revision, from, to):
                guard let row = byID[id] else { continue }
                if await write(row: row, expectedRevision: revision, from: from, to: to) != nil {
                    finalStates[id] = to
                }
                // Thousands of writes in one pass (a fleet adopted, a migration's new columns
                // filled) are progress too, one by one.
                progress()
            case .note(let note):
                await record(note: note, rows: byID)
            case .create, .destroy, .dropletAction, .assign:
                calls.append(action)
            }
        }
        let pending = calls
        let results = await whileReportingThrottle {
            await Self.concurrently(pending, limit: self.configuration.maxConcurrentCalls) { action in
                let result = await self.perform(action, rows: byID)
                self.progress()
                return result
            }
        }
        for case let (id, state)? in results { finalStates[id] = state }
        return finalStates
    }

    /// The plan's actions with those of urgent rows first (ReadSchedule), each row's in their order:
    /// a new row's writes and requests never wait behind a backlog's (5,000 rows adopted from a
    /// slice of the list are 5,000 writes in one pass).
    private func urgentFirst(_ actions: [Action], rows: [UUID: ServerRecord]) -> [Action] {
        let now = databaseNow()
        var urgent: [Action] = []
        var rest: [Action] = []
        for action in actions {
            if let id = action.rowID, let row = rows[id], isUrgent(row, at: now) {
                urgent.append(action)
            } else {
                rest.append(action)
            }
        }
        return urgent.isEmpty ? actions : urgent + rest
    }

    /// Runs `body`; meanwhile, every few seconds, reports progress if (and only if) requests are
    /// being held back on purpose by the rate budget. A call that simply hangs reports nothing,
    /// so the watchdog still catches it.
    func whileReportingThrottle<T: Sendable>(_ body: @escaping @Sendable () async -> T) async -> T {
        guard let isThrottled = self.isThrottled else { return await body() }
        let progress = self.progress
        let clock = self.clock
        return await withTaskGroup(of: T?.self) { group in
            group.addTask { await body() }
            group.addTask {
                while !Task.isCancelled {
                    try? await clock.sleep(for: .seconds(2))
                    if Task.isCancelled { break }
                    if await isThrottled() { progress() }
                }
                return nil
            }
            var result: T?
            while let next = await group.next() {
                if let next {
                    result = next
                    group.cancelAll()
                }
            }
            return result!
        }
    }

    func perform(_ action: Action, rows: [UUID: ServerRecord]) async -> (UUID, DaemonState)? {
        switch action {
        case let .create(order, revision, state):
            guard let row = rows[order.rowID] else { return nil }
            return await create(order, row: row, revision: revision, state: state).map { (order.rowID, $0) }
        case let .destroy(dropletID, reason):
            await destroy(dropletID: dropletID, reason: reason, rows: rows)
            return nil
        case let .dropletAction(order, revision, from, state):
            guard let row = rows[order.rowID] else { return nil }
            return await send(order, row: row, revision: revision, from: from, state: state).map { (order.rowID, $0) }
        case .assign(let assignment):
            await assign(assignment, rows: rows)
            return nil
        case .update, .note:
            return nil
        }
    }

    /// Writes a row change (compare-and-set) with its audit entries. Returns the new revision.
    @discardableResult
    func write(
        row: ServerRecord,
        expectedRevision: Int64,
        from: DaemonState,
        to: DaemonState,
        requestID: String? = nil,
        agentKeySHA256: String? = nil
    ) async -> Int64? {
        await write(
            transition(row: row, from: from, to: to, requestID: requestID),
            expectedRevision: expectedRevision,
            agentKeySHA256: agentKeySHA256
        )
    }

    /// A row change and the entries the change itself calls for, stamped now.
    func transition(row: ServerRecord, from: DaemonState, to: DaemonState, requestID: String? = nil) -> Transition {
        Transition(
            row: row,
            from: from,
            to: to,
            at: databaseNow(),
            requestID: requestID,
            agentTimeout: configuration.decision.agentBootstrap?.timeout
        )
    }

    /// Writes a row change and its audit entries in one statement (compare-and-set: a miss writes
    /// neither), then puts the entries in the journal. Returns the new revision.
    @discardableResult
    func write(_ change: Transition, expectedRevision: Int64, agentKeySHA256: String? = nil) async -> Int64? {
        let row = change.row
        let connected = change.events.contains { $0.kind == .agentConnected }
        // A create's write carries a new key; the write that records the first connection clears
        // it (single-use). One write never does both: a create's row is not yet active.
        assert(!(connected && agentKeySHA256 != nil), "a write both re-keys and clears the agent's key")
        let agentKey: AgentKeyChange? =
            agentKeySHA256.map { .set(sha256: $0) } ?? (connected ? .clearBootstrapKey : nil)
        let revision: Int64?
        do {
            revision = try await repository.update(
                id: row.id,
                expectedRevision: expectedRevision,
                to: change.to,
                agentKey: agentKey,
                events: change.events
            )
        } catch let locked as RowLocked {
            logger.warning(
                "server \(row.name) (\(row.id.uuidString.lowercased())) not written: \(locked); leaving it to the next pass, the rest of the fleet goes on",
                metadata: ["SERVER_ID": "\(row.id.uuidString.lowercased())", "SERVER_NAME": "\(row.name)"]
            )
            return nil
        } catch {
            logger.error(
                "could not write row \(row.id.uuidString.lowercased()): \(error)",
                metadata: ["SERVER_ID": "\(row.id.uuidString.lowercased())"]
            )
            return nil
        }
        guard let revision else {
            logger.info(
                "row changed while deciding; leaving it to the next pass",
                metadata: ["SERVER_ID": "\(row.id.uuidString.lowercased())", "SERVER_NAME": "\(row.name)"]
            )
            return nil
        }
        if connected,
            let since = change.to.agentAwaitedSince ?? change.from.agentAwaitedSince
        {
            ReconcilerMetrics.agentBootstrap(.interval(change.at.timeIntervalSince(since)))
        }
        audit.journal(change.events)
        return revision
    }

    func record(note: AuditNote, rows: [UUID: ServerRecord]) async {
        switch note {
        case .orphanSeen(let droplet):
            guard orphansFirstSeen[droplet.id] == nil else { return }
            orphansFirstSeen[droplet.id] = databaseNow()
            orphanIdentities[droplet.id] = droplet.identity
            await audit.emit(
                AuditEvent(
                    kind: .orphanSeen,
                    at: databaseNow(),
                    dropletID: droplet.id,
                    message:
                        "droplet \(droplet.id) (\(droplet.name)) is tagged citrus-host but matches no server row; left alone unless --orphans delete"
                )
            )
        case let .adopted(id, dropletID):
            let row = rows[id]
            await audit.emit(
                event(
                    .adopted,
                    row: row,
                    serverID: id,
                    droplet: dropletID,
                    message: "server \(row?.name ?? id.uuidString.lowercased()) adopted existing droplet \(dropletID)"
                )
            )
        }
    }
}
