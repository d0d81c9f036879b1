#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Postgres
import ReconcileCore
import Reconciler
import ServerStore

/// `ServerRepository` over the Postgres store, bound to a session supplied per call: the leader's
/// session in the daemon (so a lost session cannot write), a plain connection for `plan`/`status`.
public struct PostgresServerRepository: ServerRepository {
    public struct NotLeading: Error, CustomStringConvertible {
        public var description: String { "this replica does not lead; it does not touch rows" }
    }

    let session: @Sendable () throws -> PostgresConnection
    let sessionFailed: @Sendable (any Error, PostgresConnection) -> Void

    /// Writes through the leading session only; a session error ends leadership at once.
    public init(leadership: Leadership<PostgresConnection>) {
        self.session = {
            guard let session = leadership.leadingSession else { throw NotLeading() }
            return session
        }
        self.sessionFailed = { leadership.sessionFailed($0, on: $1) }
    }

    /// Uses one connection (read-only tools).
    public init(connection: PostgresConnection) {
        self.session = { connection }
        self.sessionFailed = { _, _ in }
    }

    private func withStore<T>(_ body: (ServerStore) async throws -> T) async throws -> T {
        let connection = try session()
        do {
            return try await body(ServerStore(connection: connection))
        } catch {
            sessionFailed(error, connection)
            throw error
        }
    }

    public func fetchServers() async throws -> [ServerRecord] {
        try await withStore { try await $0.fetchLiveServers() }
    }

    public func fetchServers(expectedCount: Int) async throws -> [ServerRecord] {
        try await withStore { try await $0.fetchLiveServers(expectedCount: expectedCount) }
    }

    public func fetchUnattemptedServers() async throws -> [ServerRecord] {
        try await withStore { try await $0.fetchUnattemptedServers() }
    }

    public func fetchClaimants(of dropletID: Int64, identity: UUID?) async throws -> [ServerRecord] {
        try await withStore { try await $0.fetchClaimants(of: dropletID, identity: identity) }
    }

    public func update(
        id: UUID,
        expectedRevision: Int64,
        to state: DaemonState,
        agentKey: AgentKeyChange?,
        events: [AuditEvent]
    ) async throws -> Int64? {
        try await withStore { store in
            try await Self.mappingLockTimeout(of: id, in: store) {
                try await store.update(
                    id: id,
                    expectedRevision: expectedRevision,
                    to: state,
                    agentKey: agentKey,
                    events: events
                )
            }
        }
    }

    /// A write that gave up waiting for row `id` (the session's `lock_timeout`) becomes `RowLocked`,
    /// with whom the row names as its locker when that can be read at once.
    private static func mappingLockTimeout<T>(
        of id: UUID,
        in store: ServerStore,
        _ write: () async throws -> T
    ) async throws -> T {
        do {
            return try await write()
        } catch let error as PostgresError where error.isLockNotAvailable {
            throw RowLocked(holder: try? await store.lockHolder(of: id))
        }
    }

    public func record(_ event: AuditEvent) async throws {
        try await withStore { try await $0.record(event) }
    }

    public func recordBacklog(_ line: String?) async throws {
        try await withStore { try await $0.recordBacklog(line) }
    }

    public func recordFullView(_ record: FullViewRecord) async throws {
        try await withStore { try await $0.recordFullView(record) }
    }

    public func destroyLedger() async throws -> DestroyLedger {
        try await withStore { try await $0.destroyLedger() }
    }

    public func now() async throws -> Date {
        try await withStore { try await $0.now() }
    }
}
