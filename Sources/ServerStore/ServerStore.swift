import Foundation
import Postgres
import ReconcileCore

/// The `servers` and `server_events` tables as the reconciler reads and writes them. Every
/// statement is parameterised; every row write is compare-and-set on `revision`.
public struct ServerStore: Sendable {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    static let columns = """
        id, revision, name, region, size, image, delete_requested_at, created_at, status, digital_ocean_id,
        ip_address, ipv6_address, last_error, create_attempted_at, create_attempts, transient_failures, next_attempt_at
        """

    /// Every row, `deleted` ones included (they are history the decision needs).
    public func fetchServers() async throws -> [ServerRecord] {
        try await connection.query("SELECT \(unsafeSQL: Self.columns) FROM servers ORDER BY created_at, id").map(Self.record)
    }

    /// Rows that wait for their first create and nothing else (the quick path after a NOTIFY).
    public func fetchUnattemptedServers() async throws -> [ServerRecord] {
        try await connection.query("""
            SELECT \(unsafeSQL: Self.columns) FROM servers
            WHERE status = 'creating' AND create_attempted_at IS NULL AND digital_ocean_id IS NULL
              AND delete_requested_at IS NULL
            ORDER BY created_at, id
            """).map(Self.record)
    }

    /// Writes the daemon's columns if the row is still at `expectedRevision`. Returns the new
    /// revision, or nil when the row changed meanwhile (an operator's edit) or is gone: nothing
    /// was written then.
    public func update(id: UUID, expectedRevision: Int64, to state: DaemonState) async throws -> Int64? {
        let rows = try await connection.query("""
            UPDATE servers SET
                status = \(state.status.rawValue),
                digital_ocean_id = \(state.dropletID.map(String.init)),
                ip_address = \(state.ipv4),
                ipv6_address = \(state.ipv6),
                last_error = \(state.lastError),
                create_attempted_at = \(state.createAttemptedAt),
                create_attempts = \(state.createAttempts),
                transient_failures = \(state.transientFailures),
                next_attempt_at = \(state.nextAttemptAt),
                updated_at = now()
            WHERE id = \(id) AND revision = \(expectedRevision)
            RETURNING revision
            """)
        return try rows.first?.decode(Int64.self, "revision")
    }

    public func record(_ event: AuditEvent) async throws {
        try await connection.query("""
            INSERT INTO server_events (server_id, kind, message, droplet_id, from_status, to_status, do_request_id, created_at)
            VALUES (\(event.serverID), \(event.kind.rawValue), \(event.message), \(event.dropletID),
                    \(event.fromStatus?.rawValue), \(event.toStatus?.rawValue), \(event.requestID), \(event.at))
            """)
    }

    /// A row's audit trail, oldest first.
    public func events(serverID: UUID) async throws -> [AuditEvent] {
        try await connection.query("""
            SELECT kind, message, droplet_id, from_status, to_status, do_request_id, created_at
            FROM server_events WHERE server_id = \(serverID) ORDER BY id
            """).compactMap { row in
            guard let kind = AuditKind(rawValue: try row.decode(String.self, "kind")) else { return nil }
            return AuditEvent(
                kind: kind, at: try row.decode(Date.self, "created_at"), serverID: serverID,
                dropletID: try row.decode(Int64?.self, "droplet_id"),
                fromStatus: try row.decode(String?.self, "from_status").flatMap(ServerStatus.init(rawValue:)),
                toStatus: try row.decode(String?.self, "to_status").flatMap(ServerStatus.init(rawValue:)),
                requestID: try row.decode(String?.self, "do_request_id"),
                message: try row.decode(String.self, "message")
            )
        }
    }

    /// Maps a row. Values the daemon cannot work with do not stop the pass: such a row is
    /// presented as `failed` with a `last_error` saying what to fix, and no action follows from it
    /// (the decision never acts on failed rows unless deletion is asked).
    static func record(_ row: PostgresRow) throws -> ServerRecord {
        let rawStatus = try row.decode(String.self, "status")
        let rawDropletID = try row.decode(String?.self, "digital_ocean_id")
        var state = DaemonState(
            status: ServerStatus(rawValue: rawStatus) ?? .failed,
            dropletID: nil,
            ipv4: try row.decode(String?.self, "ip_address"),
            ipv6: try row.decode(String?.self, "ipv6_address"),
            lastError: try row.decode(String?.self, "last_error"),
            createAttemptedAt: try row.decode(Date?.self, "create_attempted_at"),
            createAttempts: try row.decode(Int.self, "create_attempts"),
            transientFailures: try row.decode(Int.self, "transient_failures"),
            nextAttemptAt: try row.decode(Date?.self, "next_attempt_at")
        )
        var stored = state
        stored.status = ServerStatus(rawValue: rawStatus) ?? .failed
        if ServerStatus(rawValue: rawStatus) == nil {
            state.lastError = "status \"\(rawStatus)\" is not one citrus-reconciler knows (creating, provisioning, initializing, active, failed, deleting, deleted); set it to one of them"
        }
        if let rawDropletID, !rawDropletID.isEmpty {
            if let id = Int64(rawDropletID.trimmingCharacters(in: .whitespaces)), id > 0 {
                state.dropletID = id
            } else {
                state.status = .failed
                state.lastError = "digital_ocean_id \"\(rawDropletID)\" is not a DigitalOcean droplet id (a positive integer); the row was failed and the value cleared: set digital_ocean_id to the droplet's id if it has one, then status to creating"
            }
        }
        let unusable = state.status != stored.status || state.lastError != stored.lastError
        return ServerRecord(
            id: try row.decode(UUID.self, "id"),
            revision: try row.decode(Int64.self, "revision"),
            name: try row.decode(String.self, "name"),
            region: try row.decode(String.self, "region"),
            size: try row.decode(String.self, "size"),
            image: try row.decode(String.self, "image"),
            deleteRequestedAt: try row.decode(Date?.self, "delete_requested_at"),
            createdAt: try row.decode(Date.self, "created_at"),
            state: state,
            storedState: unusable ? stored : nil
        )
    }
}
