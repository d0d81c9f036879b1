extension Migration {
    /// Single-use bootstrap keys (design.md, "Agent bootstrap and health").
    static let agentKeys: [Migration] = [
        Migration(
            version: 17,
            name: "hub credentials for agents",
            sql: """
                -- The Engine Hub's own credential for an agent, which it gives the agent at its first
                -- authenticated connection and checks from then on (docs/agent-protocol.md): the
                -- lowercase hex SHA-256 of it, never the credential. The hub writes it; the daemon
                -- clears it with a re-key, so a droplet of an earlier create attempt cannot get in,
                -- and clears key_sha256 once connected_at is set (the bootstrap key is single-use).
                -- Agents that connected before this migration keep their key until their row is
                -- created again: their agents may hold no credential yet.
                ALTER TABLE agents ADD COLUMN IF NOT EXISTS hub_credential_sha256 TEXT;
                -- Every role that may re-key agents (deploy/database-role.sql grants the columns one
                -- by one) may clear this one too: an upgraded daemon does with each re-key.
                \(Migration.grant("GRANT UPDATE (hub_credential_sha256) ON TABLE agents", toWritersOf: "key_sha256", in: "agents"))
                """
        )
    ]
}
