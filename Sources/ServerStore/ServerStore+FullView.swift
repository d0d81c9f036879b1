#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Postgres
import ReconcileCore

// The last full view of DigitalOcean (migration 9's one-row `fleet_view`), for `status`.

extension ServerStore {
    /// Records the last full list of the fleet, replacing the one before: the table holds one row.
    public func recordFullView(_ record: FullViewRecord) async throws {
        let (seconds, attoseconds) = record.took.components
        // Whole milliseconds are plenty for an operator, and bigint keeps any duration.
        let tookMilliseconds = max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        try await connection.query(
            """
            INSERT INTO fleet_view (id, listed_at, pages, droplets, took_ms, next_list_at, recorded_at)
            VALUES (true, \(record.listedAt), \(record.pages), \(record.droplets), \(tookMilliseconds),
                    \(record.nextListAt), now())
            ON CONFLICT (id) DO UPDATE SET
                listed_at = EXCLUDED.listed_at,
                pages = EXCLUDED.pages,
                droplets = EXCLUDED.droplets,
                took_ms = EXCLUDED.took_ms,
                next_list_at = EXCLUDED.next_list_at,
                recorded_at = EXCLUDED.recorded_at
            """
        )
    }

    /// Records what the leader's last pass left waiting (nil: nothing), with the database's time.
    public func recordBacklog(_ line: String?) async throws {
        try await connection.query(
            """
            INSERT INTO fleet_view (id, backlog, backlog_at) VALUES (true, \(line), now())
            ON CONFLICT (id) DO UPDATE SET backlog = EXCLUDED.backlog, backlog_at = EXCLUDED.backlog_at
            """
        )
    }

    /// What the leader's last pass left waiting and when it said so; nil when nothing waited (or
    /// no leader has said, or this database predates migration 11).
    public func backlog() async throws -> (line: String, at: Date)? {
        let rows = try await connection.query("SELECT backlog, backlog_at FROM fleet_view WHERE id")
        guard let row = rows.first, let line = try row.decode(String?.self, "backlog"),
            let at = try row.decode(Date?.self, "backlog_at")
        else { return nil }
        return (line, at)
    }

    /// The last full list of the fleet recorded, or nil when none was (a new installation, or a
    /// leader that has not finished one yet).
    public func fullView() async throws -> FullViewRecord? {
        let rows = try await connection.query(
            "SELECT listed_at, pages, droplets, took_ms, next_list_at FROM fleet_view WHERE id AND listed_at IS NOT NULL"
        )
        guard let row = rows.first else { return nil }
        return FullViewRecord(
            listedAt: try row.decode(Date.self, "listed_at"),
            pages: try row.decode(Int.self, "pages"),
            droplets: try row.decode(Int.self, "droplets"),
            took: .milliseconds(try row.decode(Int64.self, "took_ms")),
            nextListAt: try row.decode(Date?.self, "next_list_at")
        )
    }
}
