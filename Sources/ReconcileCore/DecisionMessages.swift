#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Timekeeping

/// The lastError texts the decision writes. Operators read them, so each says what to do.
public enum DecisionMessages {
    public static func vanished(droplet: Int64) -> String {
        "droplet \(droplet) vanished at DigitalOcean (404); set delete_requested_at or recreate the row"
    }

    public static func placementFailed(droplet: Int64, failed: Int, of maximum: Int) -> String {
        "droplet \(droplet) was accepted but its placement failed (404 before it was ever active); the server is created again (placement \(failed + 1) of \(maximum))"
    }

    public static func placementsExhausted(droplet: Int64, failed: Int) -> String {
        "the placement of \(failed) droplets failed, the last \(droplet) (404 before it was ever active); the server's placement_failed events list each; retry the row (citrus-reconciler retry) or set delete_requested_at"
    }

    public static let protectedFromDeletion =
        "deletion requested, but the row is protected: its droplet is not destroyed while servers.protected is true; set it to false to let the deletion proceed, or clear delete_requested_at"

    public static func archived(droplet: Int64) -> String {
        "droplet \(droplet) is archived at DigitalOcean and will not become active; set delete_requested_at or recreate the row"
    }

    public static func untaggedNotDestroyed(droplet: Int64) -> String {
        "deletion requested, but droplet \(droplet) has no citrus-host tag and the daemon never destroys untagged droplets; destroy it at DigitalOcean yourself (the row then becomes deleted), or add the citrus-host tag"
    }

    public static func agentTimedOut(agent: UUID, droplet: Int64, address: String?, timeout: Duration) -> String {
        "\(agentTimeoutPrefix) \(DurationText.format(timeout)) of droplet \(droplet) becoming active"
            + (address.map { " at \($0)" } ?? "")
            + " (agent \(agent.uuidString.lowercased())); the droplet is left running for inspection: check /var/log/cloud-init-output.log and `journalctl -u citrus-agent` on it, then set delete_requested_at"
    }

    /// How an agent-timeout `lastError` begins (the audit trail tells it from other failures by it).
    public static let agentTimeoutPrefix = "the server's agent did not connect to the Engine Hub within"

    public static func agentUnreachable(agent: UUID, seenAt: Date, staleAfter: Duration) -> String {
        "agent \(agent.uuidString.lowercased()) last seen by the Engine Hub at \(seenAt.formatted(.iso8601)), more than \(DurationText.format(staleAfter)) ago; the server or its agent may be down"
    }

    public static func noDroplet(status: ServerStatus) -> String {
        "row is \(status.rawValue) but records no droplet and DigitalOcean shows none tagged with its identity; set delete_requested_at or recreate the row"
    }
}
