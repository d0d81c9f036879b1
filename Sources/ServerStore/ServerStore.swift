#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import Postgres
import ReconcileCore
import TerminalText

/// A row of `servers` as read, with what was wrong with it if it could not be read faithfully.
public struct FetchedServer: Sendable, Hashable {
    public var record: ServerRecord
    /// Set when a daemon-owned column held something this daemon cannot interpret (an unknown
    /// status, a non-numeric `digital_ocean_id`). The record is then presented as `failed` with
    /// this text as `lastError`, so the loop leaves it alone and an operator sees why; persisting
    /// it (with `update`) is the loop's call.
    public var problem: String?
}

/// The reconciler's reads and writes of `servers` and `server_events`. Plain, parameterised SQL.
public struct ServerStore: Sendable {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// A row with its agent as the hub records it (`FROM servers s LEFT JOIN agents a`).
    static let columns = """
        s.id, s.revision, s.name, s.region, s.size, s.image, s.delete_requested_at, s.protected, s.created_at, s.status,
        s.digital_ocean_id, s.ip_address, s.ipv6_address, s.last_error, s.create_attempted_at, s.create_reachable_until,
        s.create_attempts, s.failed_placements, s.transient_failures, s.next_attempt_at, s.agent_id, s.agent_awaited_since,
        a.connected_at AS agent_connected_at, a.last_seen_at AS agent_last_seen_at,
        i.attempted_at AS intent_attempted_at, i.reachable_until AS intent_reachable_until,
        i.attempt AS intent_attempt, i.agent_id AS intent_agent_id,
        \(liveChangeColumns), \(specificationColumns)
        """
    /// The row, its agent, and, for a row bound to no droplet, the latest create recorded for its
    /// identity in `create_intents` (which outlives the row: see `DaemonState.remembering`). A bound
    /// row's lookup stops at the one-time filter, so the join costs nothing on a settled fleet.
    static let source = """
        servers s LEFT JOIN agents a ON a.id = s.agent_id
        LEFT JOIN LATERAL (
            SELECT attempted_at, reachable_until, attempt, agent_id FROM create_intents
            WHERE s.digital_ocean_id IS NULL AND server_id = s.id
            ORDER BY attempted_at DESC LIMIT 1
        ) i ON true
        """

    /// Every row, oldest first. Rows the daemon cannot interpret come back as `failed` records
    /// (see `FetchedServer.problem`) rather than failing the whole read.
    public func fetchServers() async throws -> [ServerRecord] {
        try await read(Self.allServersQuery) { $0.record }
    }

    /// Like `fetchServers()`, with the problem found in each row, if any.
    public func fetchServerRows() async throws -> [FetchedServer] {
        try await read(Self.allServersQuery) { $0 }
    }

    static let allServersQuery = PostgresQuery(
        unsafeSQL: "SELECT \(columns) FROM \(source) ORDER BY s.created_at, s.id"
    )

    /// Every row that is not `deleted`, oldest first: what a pass decides about. Deleted rows are
    /// history that only grows, and the decision ignores them, so the reconciler does not read
    /// them. Rows the daemon cannot interpret come back as `failed` records, as in `fetchServers()`.
    /// - Parameter expectedCount: room is made for this many rows at once (a guess is fine).
    public func fetchLiveServers(expectedCount: Int = 0) async throws -> [ServerRecord] {
        try await read(PostgresQuery(unsafeSQL: Self.liveServersQuery), expectedCount: expectedCount) { $0.record }
    }

    /// Like `fetchLiveServers()`, with the problem found in each row, if any.
    public func fetchLiveServerRows() async throws -> [FetchedServer] {
        try await read(PostgresQuery(unsafeSQL: Self.liveServersQuery)) { $0 }
    }

    /// The live rows' read, as one constant so a test can EXPLAIN exactly it. The WHERE clause is
    /// the predicate of migration 9's partial index `servers_live_by_age` (written as a literal,
    /// not a parameter, so the planner can match the two), and the order is its key: the planner
    /// reads the index in order and never touches the deleted rows.
    static let liveServersQuery =
        "SELECT \(columns) FROM \(source) WHERE s.status <> 'deleted' ORDER BY s.created_at, s.id"

    /// Rows that wait for their first create and nothing else: no create was ever sent for them,
    /// so deciding about them needs no fresh list (the loop's quick path after a NOTIFY).
    public func fetchUnattemptedServers() async throws -> [ServerRecord] {
        try await read(
            """
            SELECT \(unsafeSQL: Self.columns) FROM \(unsafeSQL: Self.source)
            WHERE s.status = 'creating' AND s.create_attempted_at IS NULL AND s.digital_ocean_id IS NULL
              AND s.delete_requested_at IS NULL AND i.attempted_at IS NULL
            ORDER BY s.created_at, s.id
            """
        ) { $0.record }
    }

    /// The live rows that could claim a droplet: the one its identity tag names, and any that
    /// records its id (read right before a destroy leaves; migration 10 indexes digital_ocean_id).
    public func fetchClaimants(of dropletID: Int64, identity: UUID?) async throws -> [ServerRecord] {
        try await read(
            """
            SELECT \(unsafeSQL: Self.columns) FROM \(unsafeSQL: Self.source)
            WHERE s.status <> 'deleted' AND (s.id = \(identity) OR s.digital_ocean_id = \(String(dropletID)))
            ORDER BY s.created_at, s.id
            """
        ) { $0.record }
    }

    /// Reads rows one at a time (see `PostgresConnection.query(_:reservingCapacity:eachRow:)`) and
    /// keeps of each what `keep` takes; the read shares one pool of repeated strings.
    private func read<Value: Sendable>(
        _ query: PostgresQuery,
        expectedCount: Int = 0,
        _ keep: @escaping @Sendable (FetchedServer) -> Value
    ) async throws -> [Value] {
        let pool = StringPool()
        return try await connection.query(query, reservingCapacity: expectedCount) {
            keep(try Self.server(from: $0, pool: pool))
        }
    }

    /// Writes the daemon's part of a row if, and only if, the row is still at `expectedRevision`.
    /// Returns the row's new revision, or nil when someone changed (or deleted) the row meanwhile:
    /// nothing was written; re-read and decide again.
    public func update(id: UUID, expectedRevision: Int64, to state: DaemonState) async throws -> Int64? {
        try await write(id: id, expectedRevision: expectedRevision, to: state, agentKey: nil)
    }

    /// Like `update`, and in the same statement makes or re-keys the row's agent
    /// (`state.agentID`): its `key_sha256` becomes `keySHA256`, and what the hub recorded of an
    /// earlier key (`connected_at`, `last_seen_at`, the hub's credential) is cleared, so only the
    /// new key works. When the row changed since `expectedRevision`, nothing is written, the agent
    /// included.
    public func update(
        id: UUID,
        expectedRevision: Int64,
        to state: DaemonState,
        agentKeySHA256 keySHA256: String
    ) async throws -> Int64? {
        guard state.agentID != nil else {
            throw PostgresError(code: .decoding, message: "an agent key needs the row's agent id")
        }
        return try await write(id: id, expectedRevision: expectedRevision, to: state, agentKey: .set(sha256: keySHA256))
    }

    /// `update`, with what the write does to the agent's bootstrap key (`AgentKeyChange`), and
    /// the audit entries, all in one statement.
    public func update(
        id: UUID,
        expectedRevision: Int64,
        to state: DaemonState,
        agentKey: AgentKeyChange?,
        events: [AuditEvent]
    ) async throws -> Int64? {
        if agentKey != nil, state.agentID == nil {
            throw PostgresError(code: .decoding, message: "an agent key needs the row's agent id")
        }
        return try await write(
            id: id,
            expectedRevision: expectedRevision,
            to: state,
            agentKey: agentKey,
            events: events
        )
    }

    /// One statement, not a transaction: the leader's session is shared by concurrent writes, and
    /// a BEGIN … COMMIT on it would take theirs in (and a rollback would undo them). The row is
    /// locked and checked first; the agent is written only with a key change and only if the row
    /// matched; the foreign key on servers.agent_id is checked at the end of the statement, after it.
    /// A re-key also clears the hub's credential (`hub_credential_sha256`, migration 17), so a
    /// droplet of an earlier attempt can no longer get in; a clear touches only an agent whose
    /// first connection the hub has recorded, whatever this daemon believed when it decided.
    /// The lock is the one the UPDATE takes anyway (FOR NO KEY UPDATE: no key column changes), not
    /// FOR UPDATE, which would also wait for every transaction that inserted a row referring to
    /// this one through a foreign key (those hold FOR KEY SHARE until they end). A row another
    /// transaction holds harder is not waited for (SKIP LOCKED): nothing is written, and the write
    /// throws `lockNotAvailable` (55P03), as NOWAIT would, so one locked row costs its writer no
    /// time at all. Whether the row was locked or changed is told by the statement's snapshot: a
    /// row still at `expectedRevision` that could not be locked was locked.
    private func write(
        id: UUID,
        expectedRevision: Int64,
        to state: DaemonState,
        agentKey: AgentKeyChange?,
        events: [AuditEvent] = []
    ) async throws -> Int64? {
        var keySHA256: String?
        var clearsKey = false
        switch agentKey {
        case .set(let sha256): keySHA256 = sha256
        case .clearBootstrapKey: clearsKey = true
        case nil: break
        }
        let dropletID = state.dropletID.map(String.init)
        let entries = try Self.json(events)
        let goal = state.change?.goal.columns
        let rows = try await connection.query(
            """
            WITH target AS (
                SELECT id FROM servers WHERE id = \(id) AND revision = \(expectedRevision)
                FOR NO KEY UPDATE SKIP LOCKED
            ), agent AS (
                INSERT INTO agents (id, key_sha256) SELECT \(state.agentID), \(keySHA256) FROM target
                WHERE \(keySHA256)::text IS NOT NULL
                ON CONFLICT (id) DO UPDATE SET key_sha256 = EXCLUDED.key_sha256, connected_at = NULL, last_seen_at = NULL,
                    hub_credential_sha256 = NULL
            ), key_cleared AS (
                UPDATE agents SET key_sha256 = NULL
                WHERE \(clearsKey) AND id = \(state.agentID) AND EXISTS (SELECT 1 FROM target)
                    AND connected_at IS NOT NULL AND key_sha256 IS NOT NULL
            ), updated AS (
                UPDATE servers SET
                    status = \(state.status.rawValue),
                    digital_ocean_id = \(dropletID),
                    ip_address = \(state.ipv4),
                    ipv6_address = \(state.ipv6),
                    last_error = \(state.lastError),
                    create_attempted_at = \(state.createAttemptedAt),
                    create_reachable_until = \(state.createReachableUntil),
                    create_attempts = \(state.createAttempts),
                    failed_placements = \(state.failedPlacements),
                    transient_failures = \(state.transientFailures),
                    next_attempt_at = \(state.nextAttemptAt),
                    agent_id = \(state.agentID),
                    agent_awaited_since = \(state.agentAwaitedSince),
                    droplet_name = \(state.observed?.name),
                    droplet_region = \(state.observed?.region),
                    droplet_size = \(state.observed?.size),
                    droplet_image = \(state.observed?.image),
                    drift = \(state.drift),
                    drift_since = \(state.driftSince),
                    created_with = \(state.createdWith),
                    project_assigned = \(state.projectAssigned),
                    change_goal = \(goal?.goal),
                    change_target = \(goal?.target),
                    change_step = \(state.change?.stepIndex),
                    change_action_id = \(state.change?.actionID),
                    change_sent_at = \(state.change?.sentAt),
                    change_failure = \(state.change?.failure),
                    refused_change = \(state.refused?.column),
                    refused_value = \(state.refused?.value),
                    refused_reason = \(state.refused?.reason),
                    updated_at = now()
                WHERE id = (SELECT id FROM target) AND revision = \(expectedRevision)
                RETURNING revision
            ), audited AS (
                INSERT INTO server_events
                    (server_id, server_name, kind, message, droplet_id, from_status, to_status, do_request_id, created_at)
                SELECT (e->>'server_id')::uuid, e->>'server_name', e->>'kind', e->>'message', (e->>'droplet_id')::bigint,
                       e->>'from_status', e->>'to_status', e->>'do_request_id', to_timestamp((e->>'at')::double precision)
                FROM jsonb_array_elements(\(entries)::jsonb) WITH ORDINALITY AS entry(e, n)
                WHERE EXISTS (SELECT 1 FROM updated)
                ORDER BY n
            )
            SELECT (SELECT revision FROM updated) AS revision,
                   NOT EXISTS (SELECT 1 FROM target)
                       AND EXISTS (SELECT 1 FROM servers WHERE id = \(id) AND revision = \(expectedRevision)) AS locked
            """
        )
        let row = try rows.single()
        if try row.decode(Bool.self, "locked") {
            throw PostgresError(
                code: .server,
                message: "the row is locked by another transaction",
                sqlState: PostgresError.SQLState.lockNotAvailable
            )
        }
        return try row.decode(Int64?.self, "revision")
    }

    /// Who holds row `id` locked, as far as the server says cheaply: the open transaction whose id
    /// the row carries as its locker (`xmax`), with its process, application, role and start.
    /// Nil when no transaction can be named: none holds it any more, or the lock is on the row's
    /// agent. Several lockers at once leave a multixact id in `xmax`, not a transaction id: then
    /// usually no one is named, so callers say whom the row records, not whom the server blames.
    /// Asked after a write gave up waiting, so an operator can see whom to ask.
    public func lockHolder(of id: UUID) async throws -> String? {
        let rows = try await connection.query(
            """
            SELECT a.pid::bigint AS pid, a.application_name, a.usename::text AS role, a.xact_start,
                   host(a.client_addr) AS client
            FROM servers s
            JOIN pg_locks l ON l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
                AND l.transactionid = s.xmax
            JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE s.id = \(id) AND a.pid <> pg_backend_pid()
            """
        )
        guard let row = rows.first else { return nil }
        var parts = ["process \(try row.decode(Int64.self, "pid"))"]
        if let application = try row.decode(String?.self, "application_name"), !application.isEmpty {
            parts.append("application \(application)")
        }
        if let role = try row.decode(String?.self, "role") { parts.append("role \(role)") }
        if let client = try row.decode(String?.self, "client") { parts.append("from \(client)") }
        if let since = try row.decode(Date?.self, "xact_start") {
            parts.append("in a transaction open since \(since.formatted(.iso8601))")
        }
        return parts.joined(separator: ", ")
    }

    /// The database's clock: settle periods and backoffs are stamped and compared on it, so that
    /// replicas whose own clocks disagree still agree on them.
    public func now() async throws -> Date {
        let rows = try await connection.query("SELECT clock_timestamp() AS now")
        guard let now = try rows.first?.decode(Date.self, "now") else {
            throw PostgresError(code: .decoding, message: "SELECT clock_timestamp() returned no row")
        }
        return now
    }

    /// - Parameter pool: keeps one copy of the strings many rows repeat, for a read of many rows.
    static func server(from row: PostgresRow, pool: StringPool) throws -> FetchedServer {
        var problems: [String] = []
        let rawStatus = try row.decode(String.self, "status")
        let status = ServerStatus(rawValue: rawStatus)
        if status == nil {
            problems.append("servers.status '\(rawStatus)' is not a state this daemon knows")
        }
        // An empty or blank digital_ocean_id means "none"; anything else must be a droplet id.
        let rawDroplet = try row.decode(String?.self, "digital_ocean_id")?.trimmingSpaces()
        var dropletID: Int64?
        if let rawDroplet, !rawDroplet.isEmpty {
            dropletID = Int64(rawDroplet)
            if dropletID == nil {
                problems.append("servers.digital_ocean_id '\(rawDroplet)' is not a DigitalOcean droplet id")
            }
        }
        let options = try readOptions(from: row, pool: pool, problems: &problems)
        let problem =
            problems.isEmpty
            ? nil
            : problems.joined(separator: "; ")
                + "; fix the row, then set status to 'creating' (or clear the id) to retry"
        let storedError = try row.decode(String?.self, "last_error")
        var state = DaemonState(
            status: problem == nil ? status ?? .failed : .failed,
            dropletID: dropletID,
            ipv4: try row.decode(String?.self, "ip_address"),
            ipv6: try row.decode(String?.self, "ipv6_address"),
            lastError: problem ?? storedError,
            createAttemptedAt: try row.decode(Date?.self, "create_attempted_at"),
            createReachableUntil: try row.decode(Date?.self, "create_reachable_until"),
            createAttempts: try row.decode(Int.self, "create_attempts"),
            failedPlacements: try row.decode(Int.self, "failed_placements"),
            transientFailures: try row.decode(Int.self, "transient_failures"),
            nextAttemptAt: try row.decode(Date?.self, "next_attempt_at"),
            agentID: try row.decode(UUID?.self, "agent_id"),
            agentAwaitedSince: try row.decode(Date?.self, "agent_awaited_since")
        )
        try readLiveChange(from: row, into: &state, pool: pool)
        state.createdWith = pool.shared(try row.decode(String?.self, "created_with"))
        state.projectAssigned = try row.decode(String?.self, "project_assigned")
        // A create recorded for this identity after the row's own (a row deleted and inserted
        // again, or restored): the row waits on it as on its own.
        if let attemptedAt = try row.decode(Date?.self, "intent_attempted_at") {
            state = state.remembering(
                CreateIntent(
                    attemptedAt: attemptedAt,
                    reachableUntil: try row.decode(Date.self, "intent_reachable_until"),
                    attempt: try row.decode(Int.self, "intent_attempt"),
                    agentID: try row.decode(UUID?.self, "intent_agent_id")
                )
            )
        }
        // What the row holds, as near as a DaemonState can say it: when it differs from `state`,
        // the decision writes `state` down, so the row says why it failed in the database too.
        var stored = state
        if problem != nil {
            stored.status = status ?? .failed
            stored.lastError = storedError
        }
        let record = ServerRecord(
            id: try row.decode(UUID.self, "id"),
            revision: try row.decode(Int64.self, "revision"),
            name: try row.decode(String.self, "name"),
            region: pool.shared(try row.decode(String.self, "region")),
            size: pool.shared(try row.decode(String.self, "size")),
            image: pool.shared(try row.decode(String.self, "image")),
            deleteRequestedAt: try row.decode(Date?.self, "delete_requested_at"),
            isProtected: try row.decode(Bool.self, "protected"),
            options: options,
            createdAt: try row.decode(Date.self, "created_at"),
            state: state,
            agent: state.agentID == nil
                ? nil
                : AgentPresence(
                    connectedAt: try row.decode(Date?.self, "agent_connected_at"),
                    lastSeenAt: try row.decode(Date?.self, "agent_last_seen_at")
                ),
            storedState: problem == nil ? nil : stored
        )
        return FetchedServer(record: record, problem: problem)
    }
}
