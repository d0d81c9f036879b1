#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import Postgres
import TerminalText

/// What the database does with a commit the daemon was told succeeded, as far as one session can
/// see: whether the server is a standby, how it replicates, and the session's synchronous_commit.
///
/// An intent the daemon recorded must survive a crash and a failover, or a row can get a second
/// droplet: that needs `synchronous_commit` at `on` (or `remote_apply`) on the leader's session,
/// which it sets itself, and, with standbys, a synchronous one (`synchronous_standby_names`).
/// The daemon cannot fix either from its side; it says so in the journal.
public struct DatabaseDurability: Sendable, Hashable {
    /// `pg_is_in_recovery()`: the server is a standby, read-only.
    public var inRecovery: Bool
    /// Standbys streaming from this server (logical subscribers, which hold a logical slot, left
    /// out: no failover goes to them).
    public var streamingStandbys: Int
    /// The server's `synchronous_standby_names`; empty means asynchronous replication.
    public var synchronousStandbyNames: String
    /// The session's `synchronous_commit`; nil when not judged (a session other than the leader's).
    public var synchronousCommit: String?

    public init(inRecovery: Bool, streamingStandbys: Int, synchronousStandbyNames: String, synchronousCommit: String?) {
        self.inRecovery = inRecovery
        self.streamingStandbys = streamingStandbys
        self.synchronousStandbyNames = synchronousStandbyNames
        self.synchronousCommit = synchronousCommit
    }

    /// Reads the facts on `connection`. Needs no privilege: an unprivileged role sees one row per
    /// WAL sender in pg_stat_replication (without details), and every replication slot's type.
    public static func read(on connection: PostgresConnection, checkingCommit: Bool) async throws -> Self {
        let row = try await connection.query(
            """
            SELECT pg_is_in_recovery() AS in_recovery,
                   (SELECT count(*) FROM pg_stat_replication r
                    WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots s
                                      WHERE s.active_pid = r.pid AND s.slot_type = 'logical')) AS standbys,
                   current_setting('synchronous_standby_names') AS standby_names,
                   current_setting('synchronous_commit') AS synchronous_commit
            """
        ).single()
        return Self(
            inRecovery: try row.decode(Bool.self, "in_recovery"),
            streamingStandbys: Int(try row.decode(Int64.self, "standbys")),
            synchronousStandbyNames: try row.decode(String.self, "standby_names"),
            synchronousCommit: checkingCommit ? try row.decode(String.self, "synchronous_commit") : nil
        )
    }

    /// What an operator must hear, one sentence each; empty when the promise holds as far as this
    /// session can tell.
    public var warnings: [String] {
        var warnings: [String] = []
        if inRecovery {
            warnings.append(
                "the database server is a standby (in recovery), read-only: this replica cannot record an intent or lead there; point --database-url at the primary (with several hosts, leave target_session_attrs unset, which means read-write)"
            )
        }
        let names = synchronousStandbyNames.trimmingWhitespace()
        if streamingStandbys > 0 && names.isEmpty {
            warnings.append(
                "replication is asynchronous: \(streamingStandbys) standby\(streamingStandbys == 1 ? "" : "s") stream\(streamingStandbys == 1 ? "s" : "") from this server but synchronous_standby_names is empty, so a commit is acknowledged before any standby has it; after a failover the last create intents can be missing and a row can get a second droplet: exactly once does not survive a failover (set synchronous_standby_names on the primary; see the README, The database: replication, durability and locks)"
            )
        }
        if !inRecovery && streamingStandbys == 0 && !names.isEmpty {
            warnings.append(
                "synchronous_standby_names is set ('\(names)') but no standby is connected: every commit of the daemon waits until one is, and the fleet waits with it"
            )
        }
        if let commit = synchronousCommit, !["on", "remote_apply"].contains(commit) {
            warnings.append(
                "synchronous_commit is '\(commit)' on the leader's session although the daemon sets it to on (a connection pooler in the way?): a recorded intent can be lost on a crash or failover"
            )
        }
        return warnings
    }

    /// Reads the facts on `connection` and logs each warning (`moment` says when: "at start", "on
    /// taking leadership"). A failed read is left to the loop, which meets the same database.
    public static func warn(
        on connection: PostgresConnection,
        moment: String,
        checkingCommit: Bool,
        logger: Logger
    ) async {
        let facts: Self
        do {
            facts = try await read(on: connection, checkingCommit: checkingCommit)
        } catch {
            logger.debug("could not read the database's replication settings: \(error)")
            return
        }
        let host = await connection.serverHost ?? "the default host"
        for warning in facts.warnings {
            logger.warning("\(warning) [checked \(moment) on \(host)]")
        }
        if facts.warnings.isEmpty {
            logger.debug(
                "database durability",
                metadata: [
                    "standbys": "\(facts.streamingStandbys)",
                    "synchronous_standby_names": "\(facts.synchronousStandbyNames)",
                    "synchronous_commit": "\(facts.synchronousCommit ?? "not checked")",
                ]
            )
        }
    }
}
