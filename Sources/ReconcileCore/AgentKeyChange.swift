/// What a row's write does to its agent's bootstrap key, in the same statement as the row
/// (design.md, "Agent bootstrap and health"). The key itself never reaches a repository.
public enum AgentKeyChange: Sendable, Hashable {
    /// Makes or re-keys the row's agent before a create: its `key_sha256` becomes this digest, and
    /// everything the hub recorded for an earlier key (its connection times, its own credential)
    /// is cleared, so only the new key works.
    case set(sha256: String)
    /// The bootstrap key is single-use: once the hub has recorded the agent's first connection
    /// (`connected_at`), the key is cleared; the hub's own credential works from then on. A no-op
    /// while `connected_at` is unset (the hub has not let the agent in yet).
    case clearBootstrapKey
}
