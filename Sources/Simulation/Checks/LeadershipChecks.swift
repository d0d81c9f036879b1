import Foundation

/// Leadership: one replica acts, and only while it knows it may (docs/design.md, "The loop",
/// Leadership; rules 2, 7 and 8 of "Identity and idempotency").
///
/// - A row is written only through the session that holds the leadership lock (rule 2: the
///   intent is recorded in the session that holds leadership).
/// - A request that changes something at DigitalOcean (a create, an action, a destroy) leaves a
///   replica only while it holds the lease, checked again at the last moment (rule 8).
/// - A frozen, paused or partitioned leader is replaced within 30 s by a standby that was running
///   all the while; while the database is away (a restore, a failover) nobody can take over, so
///   the 30 s count from its return.
/// - A leader that is running and not frozen can act: one whose lease has lapsed for 30 s (its
///   renewals stuck behind a statement that waits) stalls the fleet and keeps every standby out
///   (rule 7: a row locked by another transaction delays that row, never the fleet); nor may a
///   dead leader's backend keep the lock for 30 s while it waits, with a standby ready.
enum LeadershipChecks {
    /// A row write the database accepts from `session`.
    static func rowWritten(_ id: UUID, by session: Int, in database: SimulatedDatabase) {
        guard database.lockHolder != session else { return }
        database.world.violation(
            "row \(database.world.label(id)) written by session \(session) of \(database.sessions[session]?.owner ?? "?"), which does not hold leadership"
        )
    }

    /// A request leaving `process`; `mutating` when it changes something.
    static func requestSent(_ what: String, mutating: Bool, by process: SimulatedProcess) {
        guard mutating, !process.leadership.mayAct else { return }
        process.world.violation(
            "\(process.name) sent \(what) without the lease ("
                + (process.leadership.isLeading ? "its lease lapsed" : "it no longer leads") + ")"
        )
    }

    /// Every second: a frozen leader is replaced within 30 s by a standby that was running all the
    /// while (a standby that froze or crashed meanwhile cannot be asked to), counted from the
    /// database's return if it was away.
    static func frozenLeaderReplaced(in world: SimulationWorld) {
        if let frozenAt = world.leaderFrozenAt, let back = world.database.unavailableUntil, back > frozenAt {
            world.leaderFrozenAt = back
        }
        guard let frozenAt = world.leaderFrozenAt, world.time.now.timeIntervalSince(frozenAt) > 30,
            let standby = world.slots.first(where: {
                $0 != nil && $0!.isAlive && !$0!.executor.frozen && $0!.runningSince < frozenAt
            }),
            let standby
        else { return }
        world.leaderFrozenAt = nil
        world.violation(
            "the leader froze at \(String(format: "%.1f", frozenAt.timeIntervalSince(world.time.origin))) s and \(standby.name) had not taken over 30 s later"
                + " (it thinks it leads: \(standby.leadership.isLeading); \(standby.executor.pending) jobs ready)"
        )
    }

    /// Every second: a replica that holds leadership, is running and not frozen, can act; a lock
    /// whose client is gone does not keep a ready standby out.
    static func leadersCanAct(in world: SimulationWorld) {
        let database = world.database!
        // A leader that died while its backend waited: the backend keeps the leadership lock
        // until its wait ends, and no standby can take over meanwhile.
        if let holder = database.lockHolder, database.sessions[holder]?.clientGone == true,
            let standby = world.slots.compactMap({ $0 }).first(where: { $0.isAlive && !$0.executor.frozen })
        {
            let since = world.orphanedLockSince ?? world.time.now
            world.orphanedLockSince = since
            if world.time.now.timeIntervalSince(since) > 30 {
                world.orphanedLockSince = nil
                world.violation(
                    "the leadership lock has been held for 30 s by a backend whose client \(database.owner(of: holder) ?? "?") is gone"
                        + " (it waits for \(database.waiting(holder) ?? "?")); \(standby.name) cannot take over"
                )
            }
        } else {
            world.orphanedLockSince = nil
        }
        for process in world.slots.compactMap({ $0 }) {
            let stuck =
                process.isAlive && !process.executor.frozen && process.leadership.isLeading
                && !process.leadership.mayAct
            guard stuck else {
                world.leaderStuckSince[process.name] = nil
                continue
            }
            let since = max(world.leaderStuckSince[process.name] ?? world.time.now, process.runningSince)
            world.leaderStuckSince[process.name] = since
            guard world.time.now.timeIntervalSince(since) > 30 else { continue }
            world.leaderStuckSince[process.name] = nil
            let session = process.leadership.leadingSession?.id
            let waits = session.flatMap { database.waiting($0) }.map { "its session waits for \($0)" }
            let standby = world.slots.compactMap { $0 }.first { $0 !== process && $0.isAlive && !$0.executor.frozen }
            world.violation(
                "\(process.name) has led for 30 s without being able to act (its lease lapsed; "
                    + (waits ?? "its session is busy") + ")"
                    + (standby.map { "; \($0.name) cannot take over" } ?? "; the fleet stalls")
            )
        }
    }
}
