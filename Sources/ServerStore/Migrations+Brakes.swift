extension Migration {
    /// Migration 16: the destroy brake's records (issue 25, brakes). The destroys of the last hour
    /// are counted from `server_events` (the partial index keeps that one cheap range scan), and
    /// an operator's allowance to destroy past the budget is a row of `destroy_allowances`.
    static let destroyBrake = Migration(
        version: 16,
        name: "destroy brake",
        sql: """
            -- What `citrus-reconciler destroys allow --until` writes; while allowed_until is ahead,
            -- the destroy budget does not apply. Kept as history: who allowed what, when and why.
            CREATE TABLE IF NOT EXISTS destroy_allowances (
                id BIGSERIAL PRIMARY KEY,
                allowed_until TIMESTAMPTZ NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                created_by TEXT NOT NULL DEFAULT session_user,
                reason TEXT
            );
            CREATE INDEX IF NOT EXISTS idx_destroy_allowances_until ON destroy_allowances(allowed_until);
            -- The destroys sent in the last hour, read once per pass that has destroys to send.
            CREATE INDEX IF NOT EXISTS idx_server_events_destroys ON server_events(created_at)
                WHERE kind IN ('destroy_requested', 'destroy_sending');
            -- Every role that may write the daemon's columns may read the allowances: an upgraded
            -- daemon reads them each pass it has destroys to send.
            \(Migration.grant("GRANT SELECT ON TABLE destroy_allowances", toWritersOf: "create_attempts"))
            """
    )
}
