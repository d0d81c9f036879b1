import Foundation
import ReconcileCore
import Reconciler
import Timekeeping

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
            try await session.database.statement(session.id) { session.database.liveRows(session: session.id) }
        }
    }

    func fetchUnattemptedServers() async throws -> [ServerRecord] {
        try await fetchServers().filter {
            $0.state.status == .creating && $0.state.createAttemptedAt == nil && $0.state.dropletID == nil
                && $0.deleteRequestedAt == nil
        }
    }

    /// Every write locks its row first, as the store's does (`FOR NO KEY UPDATE SKIP LOCKED`): a
    /// row another transaction holds is not waited for; the write is a miss, `RowLocked`, as
    /// `PostgresServerRepository` reports 55P03.
    func update(
        id: UUID,
        expectedRevision: Int64,
        to state: DaemonState,
        agentKey: AgentKeyChange?,
        events: [AuditEvent]
    ) async throws -> Int64? {
        do {
            return try await withSession { session in
                try await session.database.statement(session.id, writing: id, skippingLocked: true) {
                    let revision = session.database.write(
                        session: session.id,
                        id: id,
                        expectedRevision: expectedRevision,
                        state: state,
                        agentKey: agentKey,
                        events: events.count
                    )
                    // The entries land with the row, as the store's one statement writes them.
                    if revision != nil { session.database.note(events) }
                    return revision
                }
            }
        } catch let locked as SimulatedDatabase.LockNotAvailable {
            throw RowLocked(holder: locked.holder)
        }
    }

    func record(_ event: AuditEvent) async throws {
        try await withSession { session in
            try await session.database.statement(session.id) {
                session.database.auditEvents += 1
                session.database.note([event])
            }
        }
    }

    /// Kept in memory, as the one row of `fleet_view` is: a write through the leading session.
    func recordFullView(_ record: FullViewRecord) async throws {
        try await withSession { session in
            try await session.database.statement(session.id) { session.database.fullView = record }
        }
    }

    func recordBacklog(_ line: String?) async throws {
        try await withSession { session in
            try await session.database.statement(session.id) { session.database.backlog = line }
        }
    }

    /// What `ServerStore.destroyLedger` reads, by the database's clock.
    func destroyLedger() async throws -> DestroyLedger {
        try await withSession { session in
            try await session.database.statement(session.id) {
                let database = session.database
                let now = database.world.time.now
                let hourAgo = now.addingTimeInterval(-DestroyBudget.window.timeInterval)
                let allowed = database.destroyAllowances.filter { $0.from <= now && $0.until > now }.map(\.until).max()
                return DestroyLedger(
                    destroyedInHour: Set(database.destroysRecorded.filter { $0.at > hourAgo }.map(\.droplet)),
                    acceptedAt: database.destroysAccepted.filter { $0.value > hourAgo },
                    allowedUntil: allowed,
                    allowedBy: allowed.map { _ in "operator" },
                    brakedSince: database.brakedSince
                )
            }
        }
    }

    func now() async throws -> Date {
        try await withSession { session in
            try await session.database.statement(session.id) { session.database.world.time.now }
        }
    }
}
