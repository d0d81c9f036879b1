import Foundation
import Reconciler

/// Sessions as Postgres runs them: one statement at a time per session (the client queues the
/// rest behind it, as `PostgresConnection`'s actor does), statements that wait for a row lock
/// another transaction holds or for a slow disk, `lock_timeout` and `statement_timeout` when the
/// session set them, cancel requests, the session-level leadership lock, `idle_session_timeout`
/// for sessions that are silent (not for one busy in a statement), and a backend that outlives
/// its client while it waits (`client_connection_check_interval` is off by default).
extension SimulatedDatabase {
    /// What a session set for itself (`SET lock_timeout`, `SET statement_timeout`); nil is
    /// Postgres's default: no limit.
    struct SessionSettings: Equatable {
        var lockTimeout: TimeInterval?
        var statementTimeout: TimeInterval?
    }

    struct SessionState {
        var owner: String
        var alive = true
        var lastActivity: Date
        var settings = SessionSettings()
        /// A statement is at the server (running or waiting): the session is not idle.
        var busy = false
        /// Statements the client holds back until the one at the server is answered.
        var queued: [Resumer] = []
        /// The statement at the server while it waits (for a row lock, a slow disk), and what it
        /// waits for: ended early by a timeout, a cancel request or the session's end.
        var waiting: Resumer?
        var waitingFor: String?
        /// The client went away (its process died) while the backend waited: the backend keeps
        /// the session, and its locks, until its wait ends.
        var clientGone = false
    }

    /// A row lock another transaction holds.
    struct RowLock {
        /// What holds it, in words ("an operator's UPDATE, not yet committed").
        var holder: String
        /// `FOR KEY SHARE` (an insert elsewhere that references the row): it conflicts with a
        /// lock `FOR UPDATE`, not with the daemon's `FOR NO KEY UPDATE`.
        var keyShare = false
        /// The sessions whose statements wait for it.
        var waiters: [(session: Int, resumer: Resumer)] = []
    }

    // MARK: Sessions

    /// A new session; throws while a failover is under way (nothing answers).
    func openSession(owner: String) throws -> Int {
        if let until = unavailableUntil, world.time.now < until { throw SessionLost() }
        nextSession += 1
        sessions[nextSession] = SessionState(owner: owner, lastActivity: world.time.now)
        return nextSession
    }

    func isAlive(_ session: Int) -> Bool { sessions[session]?.alive == true && sessions[session]?.clientGone == false }

    func owner(of session: Int) -> String? { sessions[session]?.owner }

    func configure(_ session: Int, _ settings: SessionSettings) {
        sessions[session]?.settings = settings
    }

    /// Ends a session at the server: its locks are released, its statements end with an error.
    func kill(_ session: Int, why: String) {
        guard var state = sessions[session], state.alive else { return }
        state.alive = false
        let waiting = state.waiting
        let queued = state.queued
        state.waiting = nil
        state.queued = []
        sessions[session] = state
        if lockHolder == session {
            lockHolder = nil
            world.trace("db: session \(session) of \(state.owner) ended (\(why)); leadership lock released")
        }
        waiting?.resume(with: .failure(SessionLost()))
        for statement in queued { statement.resume(with: .failure(SessionLost())) }
    }

    /// The client's end of a session closed (its process died, or it closed the session). A backend
    /// that is waiting does not notice until its wait ends, and keeps its locks until then.
    func clientClosed(_ session: Int, why: String) {
        guard var state = sessions[session], state.alive else { return }
        guard state.waiting != nil else {
            kill(session, why: why)
            return
        }
        state.clientGone = true
        let queued = state.queued
        state.queued = []
        sessions[session] = state
        for statement in queued { statement.resume(with: .failure(SessionLost())) }
        world.trace(
            "db: \(state.owner) closed session \(session) (\(why)); its backend waits on (\(state.waitingFor ?? "?")) and keeps its locks"
        )
    }

    /// Kills every session of a process (it crashed: the kernel closed its sockets).
    func killSessions(of owner: String, why: String) {
        // In order: a dictionary's order changes from one process to the next (hash seeding),
        // and a replay must be the run it replays.
        for id in sessions.keys.sorted() where sessions[id]!.owner == owner && sessions[id]!.alive {
            clientClosed(id, why: why)
        }
    }

    /// The server restarts (a restore, a failover): every session ends, and every row lock with
    /// the transactions that held them.
    func endEverySession(why: String) {
        for id in sessions.keys.sorted() { kill(id, why: why) }
        for id in rowLocks.keys.sorted(by: { $0.uuidString < $1.uuidString }) {
            releaseRowLock(id, why: "the server restarted")
        }
    }

    /// `idle_session_timeout`: ends sessions that have been silent too long. A session with a
    /// statement waiting at the server is not idle, however long the statement waits; one whose
    /// statement the server has finished is, even while its client (frozen) has not read the answer.
    func endSilentSessions() {
        let limit = world.time.now.addingTimeInterval(-silenceLimit)
        for id in sessions.keys.sorted()
        where sessions[id]!.alive && sessions[id]!.waiting == nil && sessions[id]!.lastActivity < limit {
            kill(id, why: "silent for more than \(Int(silenceLimit)) s")
        }
    }

    /// What the session's statement at the server waits for, if it waits.
    func waiting(_ session: Int) -> String? { sessions[session]?.waitingFor }

    // MARK: Statements

    /// One statement on `session`: a trip there, its turn on the session, the statement at the
    /// database (which may wait for a lock on `row`, or for a slow disk), a trip back. The seed
    /// decides whether it fails, kills the session, or loses the answer after the effect.
    /// With `skippingLocked`, the row is locked as the daemon's write locks it (`FOR NO KEY UPDATE
    /// SKIP LOCKED`): a key-share lock does not stand in its way, any other ends the statement at
    /// once with `LockNotAvailable`, as the store reports it.
    func statement<T>(
        _ session: Int,
        writing row: UUID? = nil,
        skippingLocked: Bool = false,
        _ body: () throws -> T
    ) async throws -> T {
        try await world.pause(world.faults.databaseLatency())
        try await takeTurn(session)
        let result: T
        do {
            if skippingLocked, let row, let lock = rowLocks[row], !lock.keyShare {
                throw LockNotAvailable(holder: lock.holder)
            }
            result = try await atServer(session, writing: skippingLocked ? nil : row, body)
            endTurn(session)
        } catch {
            endTurn(session)
            throw error
        }
        if world.faults.databaseAnswerLost() {
            // Committed, and the connection broke before the answer came back.
            kill(session, why: "connection broke after the statement took effect")
            throw SessionLost()
        }
        try await world.pause(world.faults.databaseLatency())
        guard isAlive(session) else { throw SessionLost() }  // the answer was lost with the session
        sessions[session]?.lastActivity = world.time.now
        return result
    }

    private func atServer<T>(_ session: Int, writing row: UUID?, _ body: () throws -> T) async throws -> T {
        guard isAlive(session) else { throw SessionLost() }
        if world.faults.databaseSessionDies() {
            kill(session, why: "connection broke")
            throw SessionLost()
        }
        if world.faults.databaseStatementFails() { throw StatementFailed() }
        let started = world.time.now
        sessions[session]?.lastActivity = started
        if let slow = world.faults.slowStatement() {
            try await wait(session, startedAt: started, for: "a slow statement (\(Int(slow)) s)") { resumer in
                let handle = world.time.schedule(at: started.addingTimeInterval(slow)) { [unowned self] in
                    endWait(session, resumer, .success(()))
                }
                return { [world] in world.time.cancel(handle) }
            }
        }
        if let row {
            let lockWaitStarted = world.time.now
            while let lock = rowLocks[row] {
                let what = "a lock on \(world.label(row)) (\(lock.holder))"
                try await wait(session, startedAt: started, for: what) { resumer in
                    rowLocks[row]?.waiters.append((session, resumer))
                    guard let timeout = sessions[session]?.settings.lockTimeout else { return {} }
                    let handle = world.time.schedule(at: lockWaitStarted.addingTimeInterval(timeout)) {
                        [unowned self] in
                        endWait(session, resumer, .failure(LockNotAvailable()))
                    }
                    return { [world] in world.time.cancel(handle) }
                }
            }
        }
        guard sessions[session]?.alive == true else { throw SessionLost() }
        return try body()
    }

    /// Waits at the server until `arm`'s resumer is resumed, the statement times out, a cancel
    /// request comes, or the session ends. `arm` sets up what ends the wait, and returns how to
    /// take that down.
    private func wait(
        _ session: Int,
        startedAt: Date,
        for what: String,
        arm: (Resumer) -> () -> Void
    ) async throws {
        guard isAlive(session) || sessions[session]?.clientGone == true else { throw SessionLost() }
        let resumer = Resumer()
        sessions[session]?.waiting = resumer
        sessions[session]?.waitingFor = what
        let disarm = arm(resumer)
        var timeoutHandle: UInt64?
        if let timeout = sessions[session]?.settings.statementTimeout {
            timeoutHandle = world.time.schedule(at: startedAt.addingTimeInterval(timeout)) { [unowned self] in
                endWait(session, resumer, .failure(QueryCanceled(reason: "statement timeout")))
            }
        }
        defer {
            disarm()
            if let timeoutHandle { world.time.cancel(timeoutHandle) }
            if sessions[session]?.waiting === resumer {
                sessions[session]?.waiting = nil
                sessions[session]?.waitingFor = nil
            }
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                resumer.set(continuation)
            }
        } onCancel: {
            // `PostgresConnection` sends a cancel request when its caller is cancelled; the server
            // cancels whatever the session is running then.
            resumer.resume(with: .failure(QueryCanceled(reason: "user request")))
        }
    }

    /// Ends a statement's wait at the server. A backend whose client has gone ends with it: it
    /// would carry the statement out and then find the socket closed; here the statement is
    /// dropped (its task belongs to a dead process and runs no more), and the session ends.
    private func endWait(_ session: Int, _ resumer: Resumer, _ result: Result<Void, any Error>) {
        let clientGone = sessions[session]?.clientGone == true && sessions[session]?.waiting === resumer
        resumer.resume(with: result)
        // The wait is over at the server now, whenever its client gets to run again (a frozen one
        // only when it thaws): the session is no longer busy there.
        if sessions[session]?.waiting === resumer {
            sessions[session]?.waiting = nil
            sessions[session]?.waitingFor = nil
            sessions[session]?.lastActivity = world.time.now
        }
        if clientGone { kill(session, why: "its client had gone; the backend noticed once its wait ended") }
    }

    /// The client sends one statement at a time on a session: a statement waits here until the
    /// one before it is answered. The session's end fails every statement waiting.
    private func takeTurn(_ session: Int) async throws {
        guard let state = sessions[session], state.alive, !state.clientGone else { throw SessionLost() }
        guard state.busy else {
            sessions[session]?.busy = true
            return
        }
        let resumer = Resumer()
        sessions[session]?.queued.append(resumer)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            resumer.set(continuation)
        }
    }

    private func endTurn(_ session: Int) {
        guard var state = sessions[session] else { return }
        state.lastActivity = world.time.now
        if state.clientGone {
            sessions[session] = state
            kill(session, why: "its client had gone; the backend noticed once its statement ended")
            return
        }
        if state.queued.isEmpty {
            state.busy = false
            sessions[session] = state
        } else {
            let next = state.queued.removeFirst()
            sessions[session] = state
            next.resume(with: .success(()))
        }
    }

    // MARK: Locks

    func tryLock(_ session: Int) -> Bool {
        if lockHolder == nil {
            lockHolder = session
            world.leadershipTaken(by: sessions[session]?.owner ?? "?")
        }
        return lockHolder == session
    }

    func unlock(_ session: Int) {
        if lockHolder == session { lockHolder = nil }
    }

    /// Another transaction takes a lock on a row; the daemon's writes of it wait until released.
    func takeRowLock(_ id: UUID, holder: String, keyShare: Bool = false) {
        guard rowLocks[id] == nil else { return }
        rowLocks[id] = RowLock(holder: holder, keyShare: keyShare)
        world.trace("db: \(holder) holds a lock on \(world.label(id))")
    }

    func releaseRowLock(_ id: UUID, why: String) {
        guard let lock = rowLocks.removeValue(forKey: id) else { return }
        world.trace("db: lock on \(world.label(id)) released (\(why)); \(lock.waiters.count) statements waited")
        for waiter in lock.waiters { endWait(waiter.session, waiter.resumer, .success(())) }
    }
}

/// A simulated session, as the leadership code sees one.
final class SimulatedSession: LeaderSession, @unchecked Sendable {
    let id: Int
    unowned let database: SimulatedDatabase

    init(id: Int, database: SimulatedDatabase) {
        self.id = id
        self.database = database
    }

    /// `SET lock_timeout = …; SET statement_timeout = …` on this session: one statement.
    func set(_ settings: SimulatedDatabase.SessionSettings) async throws {
        try await database.statement(id) { database.configure(id, settings) }
    }

    func tryLock(_ key: Int64) async throws -> Bool {
        try await database.statement(id) { database.tryLock(id) }
    }

    func unlock(_ key: Int64) async {
        _ = try? await database.statement(id) { database.unlock(id) }
    }

    func ping() async throws {
        try await database.statement(id) {}
    }

    var isOpen: Bool { get async { database.isAlive(id) } }

    func close() async {
        database.clientClosed(id, why: "closed")
    }

    func isSessionLoss(_ error: any Error) -> Bool { error is SimulatedDatabase.SessionLost }
}
