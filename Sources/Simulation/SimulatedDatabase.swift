import Foundation
import ReconcileCore
import Reconciler
import Timekeeping

/// Postgres as the daemon relies on it: rows with revisions and compare-and-set, the agents the
/// hub writes, sessions (see `SimulatedDatabase+Sessions`), the database's clock, restores from a
/// snapshot, and a failover to a standby that may have missed the last commits.
///
/// Every table is in `Tables`, and every change to one goes through `journal`, so that a restore
/// and a failover take all of them back together. A table added later (the lead's
/// `create_intents`) is one more field there and one more `journal` call per write.
final class SimulatedDatabase: @unchecked Sendable {
    /// The hub's record of one agent (`agents`): its key's hash (nil once the daemon cleared the
    /// single-use key), what the hub saw of it, and the credential the hub gave it.
    struct AgentRecord: Equatable {
        var keySHA256: String?
        var connectedAt: Date?
        var lastSeenAt: Date?
        /// `hub_credential_sha256`: stands for the hub's own credential; unique in the run.
        var hubCredential: UInt64?
    }

    /// Everything a backup holds and a restore or a failover brings back.
    struct Tables {
        var rows: [UUID: ServerRecord] = [:]
        var agents: [UUID: AgentRecord] = [:]
        /// `create_intents` (migration 10): the latest create recorded for each identity, written
        /// by the trigger with the row's intent. A DELETE of the row leaves it; a restore and a
        /// lossy failover take it back with the rows.
        var intents: [UUID: CreateIntent] = [:]
    }

    /// How the operator replicates this world's database: a failover to a synchronous standby
    /// loses nothing; to an asynchronous one it loses the commits of the last `lag` seconds.
    enum Replication: CustomStringConvertible {
        case standalone
        case synchronous
        case asynchronous(lag: TimeInterval)

        var description: String {
            switch self {
            case .standalone: "no standby"
            case .synchronous: "a synchronous standby"
            case .asynchronous(let lag): String(format: "an asynchronous standby %.2f s behind", lag)
            }
        }
    }

    struct SessionLost: Error, CustomStringConvertible {
        var description: String { "the database session ended" }
    }

    struct StatementFailed: Error, CustomStringConvertible {
        var description: String { "the statement failed (simulated)" }
    }

    /// SQLSTATE 55P03, as `lock_timeout` ends a statement that waited for a row lock too long.
    struct LockNotAvailable: Error, CustomStringConvertible {
        let sqlState = "55P03"
        /// What holds the row, when the statement knows (the daemon's write reads it, as the
        /// store reads the row's locker).
        var holder: String?
        var description: String { "canceling statement due to lock timeout (55P03)" }
    }

    /// SQLSTATE 57014: `statement_timeout`, or a cancel request, ended the statement.
    struct QueryCanceled: Error, CustomStringConvertible {
        let sqlState = "57014"
        var reason: String
        var description: String { "canceling statement due to \(reason) (57014)" }
    }

    unowned let world: SimulationWorld
    private(set) var tables = Tables()
    var rows: [UUID: ServerRecord] { tables.rows }
    var agents: [UUID: AgentRecord] { tables.agents }
    var sessions: [Int: SessionState] = [:]
    var nextSession = 0
    var lockHolder: Int?
    /// Row locks held by other transactions (an operator's open UPDATE, an insert elsewhere that
    /// references the row), with the daemon's statements waiting for each.
    var rowLocks: [UUID: RowLock] = [:]
    /// Ends sessions silent for longer than this (`idle_session_timeout`).
    let silenceLimit: TimeInterval
    var auditEvents = 0
    /// `destroy_requested` entries of `server_events` (droplet, database time), which the destroy
    /// budget counts, and `destroy_allowances` (from, until): the audit trail and the operators'
    /// records, which the world's restores leave alone.
    var destroysRecorded: [(droplet: Int64, at: Date)] = []
    var destroyAllowances: [(from: Date, until: Date)] = []
    var destroysBrakedEntries = 0
    /// The last `destroy_requested` entry of each droplet (DigitalOcean accepted the destroy).
    var destroysAccepted: [Int64: Date] = [:]
    /// When the last `destroys_braked` entry was written, while it is the brake's last word.
    var brakedSince: Date?
    /// The hub's credentials handed out so far: the next one is new, even after a restore.
    var hubCredentialsIssued: UInt64 = 0
    /// The last full view of the fleet the leader recorded (`fleet_view`).
    var fullView: FullViewRecord?
    /// The revision sequence's last value (`servers_revision_seq`).
    var lastRevision: Int64 = 0
    /// When each session last read the rows: a pass begins with that read.
    var rowsReadAt: [Int: Date] = [:]
    /// What the leader's last pass left waiting, as it recorded it (`fleet_view.backlog`).
    var backlog: String?
    var replication = Replication.standalone
    /// A failover in progress: no session can be opened before this.
    var unavailableUntil: Date?
    /// What each recent commit changed, to take back the ones an asynchronous standby had not
    /// received when it was promoted. Kept only with asynchronous replication, only as far back
    /// as the standby's lag.
    private var undoLog: [(at: Date, undo: (inout Tables) -> Void)] = []
    private var undoLogStart = 0

    init(world: SimulationWorld, silenceLimit: TimeInterval) {
        self.world = world
        self.silenceLimit = silenceLimit
    }

    // MARK: Writes

    /// Applies `change` to the tables as one commit, remembering how to take it back when a
    /// failover may lose it.
    private func journal(_ undo: @escaping (inout Tables) -> Void, _ change: (inout Tables) -> Void) {
        if case .asynchronous(let lag) = replication {
            let now = world.time.now
            undoLog.append((now, undo))
            while undoLogStart < undoLog.count, undoLog[undoLogStart].at < now.addingTimeInterval(-lag - 1) {
                undoLogStart += 1
            }
            if undoLogStart > 256 {
                undoLog.removeFirst(undoLogStart)
                undoLogStart = 0
            }
        }
        change(&tables)
    }

    private func replace(row id: UUID, with row: ServerRecord?) {
        let before = tables.rows[id]
        journal({ $0.rows[id] = before }) { $0.rows[id] = row }
    }

    /// Revisions come from one sequence, on every insert and update (migration 12): a row deleted
    /// and inserted again never meets a write decided on its earlier life.
    func insert(_ row: ServerRecord) {
        var row = row
        row.revision = nextRevision()
        replace(row: row.id, with: row)
    }

    private func nextRevision() -> Int64 {
        lastRevision += 1
        return lastRevision
    }

    func remove(_ id: UUID) {
        replace(row: id, with: nil)
    }

    func update(_ id: UUID, _ change: (inout ServerRecord) -> Void) {
        guard var row = tables.rows[id] else { return }
        change(&row)
        row.revision = nextRevision()
        replace(row: id, with: row)
    }

    /// The hub's write of an agent's presence.
    func updateAgent(_ id: UUID, _ change: (inout AgentRecord) -> Void) {
        guard var agent = tables.agents[id] else { return }
        let before = agent
        change(&agent)
        journal({ $0.agents[id] = before }) { $0.agents[id] = agent }
    }

    /// The daemon's compare-and-set write; the writer must hold the lock, and a binding must rest on
    /// a fresh read (`LeadershipChecks`, `IdentityChecks`; the world's `observeWrite` judges the rest).
    /// With `agentKey`, the row's agent is made, re-keyed or its key cleared in the same statement.
    func write(
        session: Int,
        id: UUID,
        expectedRevision: Int64,
        state: DaemonState,
        agentKey: AgentKeyChange? = nil,
        events: Int = 0
    )
        -> Int64?
    {
        LeadershipChecks.rowWritten(id, by: session, in: self)
        guard var row = tables.rows[id], row.revision == expectedRevision else { return nil }
        world.observeWrite(from: row.state, to: state, row: row)
        IdentityChecks.bindingIsFresh(row: id, from: row.state, to: state, passBegan: rowsReadAt[session], in: world)
        let newIntent = state.createAttemptedAt != nil && state.createAttemptedAt != row.state.createAttemptedAt
        row.state = state
        row.revision = nextRevision()
        replace(row: id, with: row)
        if newIntent, let intent = CreateIntent(of: state, configuration: DecisionConfiguration()) {
            let before = tables.intents[id]
            journal({ $0.intents[id] = before }) { $0.intents[id] = intent }
        }
        if let agentKey, let agent = state.agentID {
            let before = tables.agents[agent]
            switch agentKey {
            case .set(let sha256):
                journal({ $0.agents[agent] = before }) { $0.agents[agent] = AgentRecord(keySHA256: sha256) }
            case .clearBootstrapKey:
                // As the store's statement: only once the hub has recorded the first connection.
                if var cleared = before, cleared.connectedAt != nil {
                    cleared.keySHA256 = nil
                    journal({ $0.agents[agent] = before }) { $0.agents[agent] = cleared }
                }
            }
        }
        auditEvents += events
        if state.status == .deleted { world.rowGone(row) }
        return row.revision
    }

    /// The rows as the store reads them, with the hub's record of each row's agent and, for a row
    /// bound to no droplet, the latest create recorded for its identity.
    func liveRows(session: Int) -> [ServerRecord] {
        rowsReadAt[session] = world.time.now
        return tables.rows.values.filter { $0.state.status != .deleted }.map { row in
            var row = row
            row.state = row.state.remembering(tables.intents[row.id])
            guard let agent = row.state.agentID.flatMap({ tables.agents[$0] }) else { return row }
            row.agent = AgentPresence(connectedAt: agent.connectedAt, lastSeenAt: agent.lastSeenAt)
            return row
        }.sorted { $0.createdAt != $1.createdAt ? $0.createdAt < $1.createdAt : $0.id.uuidString < $1.id.uuidString }
    }

    /// What `server_events` entries tell the destroy budget's ledger, however they are written
    /// (on their own, or with a row's write): braking, releases, destroys sent and accepted.
    func note(_ events: [AuditEvent]) {
        let now = world.time.now
        for event in events {
            if event.kind == .destroysBraked {
                destroysBrakedEntries += 1
                brakedSince = now
            }
            if event.kind == .destroysReleased { brakedSince = nil }
            guard let droplet = event.dropletID else { continue }
            if event.kind == .destroyRequested { destroysAccepted[droplet] = now }
            if event.kind == .destroyRequested || event.kind == .destroySending {
                destroysRecorded.append((droplet, now))
            }
        }
    }

    // MARK: Restores and failovers

    /// A restore from a snapshot: every session ends (the server restarted), every lock with it,
    /// and the tables go back.
    func restore(_ snapshot: Tables, downtime: TimeInterval = 0) {
        endEverySession(why: "database restored from a backup")
        if downtime > 0 {
            unavailableUntil = max(unavailableUntil ?? world.time.now, world.time.now.addingTimeInterval(downtime))
        }
        journal({ _ in }) { $0 = snapshot }
        undoLog.removeAll()
        undoLogStart = 0
    }

    /// The primary stops and a standby is promoted: every session ends, no session can be opened
    /// for `downtime`, and with asynchronous replication the commits of the last `lag` seconds
    /// are lost. Returns the rows whose lost commits changed them (their state went back).
    func failOver(downtime: TimeInterval) -> Set<UUID> {
        endEverySession(why: "the primary stopped; a standby is promoted")
        // A failover during a restore's downtime does not bring the database back any sooner.
        unavailableUntil = max(unavailableUntil ?? world.time.now, world.time.now.addingTimeInterval(downtime))
        guard case .asynchronous(let lag) = replication else { return [] }
        let horizon = world.time.now.addingTimeInterval(-lag)
        let before = tables
        while undoLog.count > undoLogStart, let last = undoLog.last, last.at > horizon {
            last.undo(&tables)
            undoLog.removeLast()
        }
        var changed = Set<UUID>()
        for id in Set(before.rows.keys).union(tables.rows.keys) where before.rows[id] != tables.rows[id] {
            changed.insert(id)
        }
        return changed
    }
}
