import Foundation
import ReconcileCore
import Reconciler

/// Postgres as the daemon relies on it: rows with revisions and compare-and-set, sessions that
/// hold a session-level lock, that the server ends after a silence, that die, and whose answers
/// can be lost after the statement took effect; the database's clock; restores from a snapshot.
final class SimulatedDatabase: @unchecked Sendable {
    struct SessionState {
        var owner: String
        var alive = true
        var lastActivity: Date
    }

    struct SessionLost: Error, CustomStringConvertible {
        var description: String { "the database session ended" }
    }

    struct StatementFailed: Error, CustomStringConvertible {
        var description: String { "the statement failed (simulated)" }
    }

    unowned let world: SimulationWorld
    private(set) var rows: [UUID: ServerRecord] = [:]
    private var sessions: [Int: SessionState] = [:]
    private var nextSession = 0
    private(set) var lockHolder: Int?
    /// Ends sessions silent for longer than this (`idle_session_timeout`).
    let silenceLimit: TimeInterval
    var auditEvents = 0
    /// The last full view of the fleet the leader recorded (`fleet_view`).
    var fullView: FullViewRecord?

    init(world: SimulationWorld, silenceLimit: TimeInterval) {
        self.world = world
        self.silenceLimit = silenceLimit
    }

    // MARK: Sessions

    func openSession(owner: String) -> Int {
        nextSession += 1
        sessions[nextSession] = SessionState(owner: owner, lastActivity: world.time.now)
        return nextSession
    }

    func isAlive(_ session: Int) -> Bool { sessions[session]?.alive == true }

    func owner(of session: Int) -> String? { sessions[session]?.owner }

    func kill(_ session: Int, why: String) {
        guard var state = sessions[session], state.alive else { return }
        state.alive = false
        sessions[session] = state
        if lockHolder == session {
            lockHolder = nil
            world.trace("db: session \(session) of \(state.owner) ended (\(why)); leadership lock released")
        }
    }

    /// Kills every session of a process (it crashed: the kernel closed its sockets).
    func killSessions(of owner: String, why: String) {
        // In order: a dictionary's order changes from one process to the next (hash seeding),
        // and a replay must be the run it replays.
        for id in sessions.keys.sorted() where sessions[id]!.owner == owner && sessions[id]!.alive {
            kill(id, why: why)
        }
    }

    /// `idle_session_timeout`: ends sessions that have been silent too long.
    func endSilentSessions() {
        let limit = world.time.now.addingTimeInterval(-silenceLimit)
        for id in sessions.keys.sorted() where sessions[id]!.alive && sessions[id]!.lastActivity < limit {
            kill(id, why: "silent for more than \(Int(silenceLimit)) s")
        }
    }

    /// One statement on `session`: a trip there, the statement at the database, a trip back. The
    /// seed decides whether it fails, kills the session, or loses the answer after the effect.
    func statement<T>(_ session: Int, _ body: () throws -> T) async throws -> T {
        try await world.pause(world.faults.databaseLatency())
        guard isAlive(session) else { throw SessionLost() }
        if world.faults.databaseSessionDies() {
            kill(session, why: "connection broke")
            throw SessionLost()
        }
        if world.faults.databaseStatementFails() { throw StatementFailed() }
        sessions[session]?.lastActivity = world.time.now
        let result = try body()
        try await world.pause(world.faults.databaseLatency())
        guard isAlive(session) else { throw SessionLost() }  // the answer was lost with the session
        sessions[session]?.lastActivity = world.time.now
        return result
    }

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

    // MARK: Rows

    func insert(_ row: ServerRecord) {
        rows[row.id] = row
    }

    func remove(_ id: UUID) {
        rows.removeValue(forKey: id)
    }

    func update(_ id: UUID, _ change: (inout ServerRecord) -> Void) {
        guard var row = rows[id] else { return }
        change(&row)
        row.revision += 1
        rows[id] = row
    }

    /// The daemon's compare-and-set write; the writer must hold the lock (checked as an invariant).
    func write(session: Int, id: UUID, expectedRevision: Int64, state: DaemonState) -> Int64? {
        if lockHolder != session {
            world.violation(
                "row \(world.label(id)) written by session \(session) of \(sessions[session]?.owner ?? "?"), which does not hold leadership"
            )
        }
        guard var row = rows[id], row.revision == expectedRevision else { return nil }
        world.observeWrite(from: row.state, to: state, row: row)
        row.state = state
        row.revision += 1
        rows[id] = row
        return row.revision
    }

    /// A restore from a snapshot: every session ends (the server restarted), rows go back.
    func restore(_ snapshot: [UUID: ServerRecord]) {
        for id in sessions.keys.sorted() { kill(id, why: "database restored from a backup") }
        rows = snapshot
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
        database.kill(id, why: "closed")
    }

    func isSessionLoss(_ error: any Error) -> Bool { error is SimulatedDatabase.SessionLost }
}

/// The rows, through the leading session only: what `PostgresServerRepository` is to Postgres.
struct SimulatedRepository: ServerRepository {
    struct NotLeading: Error {}

    let leadership: Leadership<SimulatedSession>

    private func withSession<T>(_ body: (SimulatedSession) async throws -> T) async throws -> T {
        guard let session = leadership.leadingSession else { throw NotLeading() }
        do {
            return try await body(session)
        } catch {
            leadership.sessionFailed(error, on: session)
            throw error
        }
    }

    /// Live rows only, as the store reads them: `deleted` rows are history the daemon never reads.
    func fetchServers() async throws -> [ServerRecord] {
        try await withSession { session in
            try await session.database.statement(session.id) {
                session.database.rows.values.filter { $0.state.status != .deleted }.sorted {
                    ($0.createdAt, $0.id.uuidString) < ($1.createdAt, $1.id.uuidString)
                }
            }
        }
    }

    func fetchUnattemptedServers() async throws -> [ServerRecord] {
        try await fetchServers().filter {
            $0.state.status == .creating && $0.state.createAttemptedAt == nil && $0.state.dropletID == nil
                && $0.deleteRequestedAt == nil
        }
    }

    func update(id: UUID, expectedRevision: Int64, to state: DaemonState) async throws -> Int64? {
        try await withSession { session in
            try await session.database.statement(session.id) {
                session.database.write(session: session.id, id: id, expectedRevision: expectedRevision, state: state)
            }
        }
    }

    /// The simulated database keeps no agents table: the row's write is all there is to it.
    func update(
        id: UUID,
        expectedRevision: Int64,
        to state: DaemonState,
        agentKeySHA256 keySHA256: String
    ) async throws -> Int64? {
        try await update(id: id, expectedRevision: expectedRevision, to: state)
    }

    func record(_ event: AuditEvent) async throws {
        try await withSession { session in
            try await session.database.statement(session.id) { session.database.auditEvents += 1 }
        }
    }

    /// Kept in memory, as the one row of `fleet_view` is: a write through the leading session.
    func recordFullView(_ record: FullViewRecord) async throws {
        try await withSession { session in
            try await session.database.statement(session.id) { session.database.fullView = record }
        }
    }

    func now() async throws -> Date {
        try await withSession { session in
            try await session.database.statement(session.id) { session.database.world.time.now }
        }
    }
}
