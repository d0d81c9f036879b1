#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore

/// Where the rows live. The daemon uses the Postgres store; tests may use anything that behaves.
public protocol ServerRepository: Sendable {
    /// Every live row (status not `deleted`), oldest first. Deleted rows are history: the decision
    /// ignores them (a droplet that still carries a deleted row's identity is an orphan either
    /// way), and at a large fleet their history would cost each pass memory and time.
    func fetchServers() async throws -> [ServerRecord]
    /// `fetchServers()`, room made at once for about `expectedCount` rows (the last pass's count):
    /// at 50,000 rows, an array grown by doubling holds twice their size while it copies itself.
    func fetchServers(expectedCount: Int) async throws -> [ServerRecord]
    /// Rows that only wait for their first create: nothing has been sent for them yet, so their
    /// decision needs no fresh list (used by the quick pass that follows a NOTIFY).
    func fetchUnattemptedServers() async throws -> [ServerRecord]
    /// The live rows that could claim a droplet: the row its identity tag names (`identity`) and
    /// any row that records its id. Read right before a destroy leaves (`DestroyReason.withdrawal`).
    func fetchClaimants(of dropletID: Int64, identity: UUID?) async throws -> [ServerRecord]
    /// Compare-and-set write of the daemon-owned columns, and with it, in the same statement, the
    /// audit entries that describe the change (`events`). Returns the row's new revision, or nil
    /// when the row changed (or vanished) since `expectedRevision` was read: nothing was written,
    /// neither the row nor its entries.
    ///
    /// With `agentKey`, it also (atomically, compare-and-set on the row) writes the bootstrap key of
    /// the row's agent `state.agentID`: `.set` makes or re-keys it, so that only that key works
    /// for it afterwards and the hub's record of an earlier key is cleared; `.clearBootstrapKey`
    /// clears the key once the hub has recorded the agent's first connection. The key itself is
    /// never handed to a repository.
    func update(
        id: UUID,
        expectedRevision: Int64,
        to state: DaemonState,
        agentKey: AgentKeyChange?,
        events: [AuditEvent]
    ) async throws -> Int64?
    /// Append an entry to the durable audit trail.
    func record(_ event: AuditEvent) async throws
    /// Records the last full list of the fleet (replacing the one before), so that `status` can
    /// say how stale the daemon's full view of DigitalOcean is.
    func recordFullView(_ record: FullViewRecord) async throws
    /// Records what the leader's last pass left waiting (`ReadBacklog.what`; nil: nothing), so
    /// that `status` can say it too.
    func recordBacklog(_ line: String?) async throws
    /// The destroys sent in the last hour by the database's clock (`destroy_requested` entries,
    /// orphans' included, duplicates' not) and the operator's allowance in force, if any: what the
    /// destroy budget counts (DestroyBudget), read once per pass that has destroys to send.
    func destroyLedger() async throws -> DestroyLedger
    /// The database's clock, which every replica shares: settle and backoff times are stamped and
    /// compared on it, so that replicas whose own clocks disagree still agree on them.
    func now() async throws -> Date
}

extension ServerRepository {
    /// A write with no agent key and no audit entries.
    public func update(id: UUID, expectedRevision: Int64, to state: DaemonState) async throws -> Int64? {
        try await update(id: id, expectedRevision: expectedRevision, to: state, agentKey: nil, events: [])
    }

    /// A write that makes or re-keys the row's agent with `agentKeySHA256` (none: leaves it be).
    public func update(
        id: UUID,
        expectedRevision: Int64,
        to state: DaemonState,
        agentKeySHA256: String?,
        events: [AuditEvent]
    ) async throws -> Int64? {
        try await update(
            id: id,
            expectedRevision: expectedRevision,
            to: state,
            agentKey: agentKeySHA256.map { .set(sha256: $0) },
            events: events
        )
    }

    public func fetchServers(expectedCount: Int) async throws -> [ServerRecord] {
        try await fetchServers()
    }

    /// Nothing recorded: a repository that keeps no audit trail counts only what the reconciler
    /// itself remembers sending.
    public func destroyLedger() async throws -> DestroyLedger {
        DestroyLedger()
    }

    /// Every live row read, the claimants kept: right for repositories of a few rows.
    public func fetchClaimants(of dropletID: Int64, identity: UUID?) async throws -> [ServerRecord] {
        try await fetchServers().filter { $0.id == identity || $0.state.dropletID == dropletID }
    }
}

/// A row write gave up waiting for a lock another transaction holds on the row: nothing was
/// written, as with a compare-and-set miss, and the row is tried again next pass. Leadership and
/// the rest of the pass go on.
public struct RowLocked: Error, CustomStringConvertible, Sendable {
    /// The transaction that holds the row, as the database describes it, when it can say.
    public var holder: String?

    public init(holder: String?) {
        self.holder = holder
    }

    public var description: String {
        "the row is locked by another transaction"
            + (holder.map { " (the row records its locker: \($0))" } ?? "")
    }
}
