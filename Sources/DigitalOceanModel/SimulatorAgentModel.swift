import Foundation

/// When agents start, beat and retry. Seconds, for the admin API (`GET|PUT /_sim/agent-settings`).
public struct SimulatorAgentTiming: Sendable, Codable, Equatable {
    /// From the droplet becoming active to cloud-init starting the agent.
    public var bootDelaySeconds: Double = 1
    public var heartbeatIntervalSeconds: Double = 10
    /// The reconnect backoff starts here and doubles up to ``reconnectMaximumSeconds``.
    public var reconnectInitialSeconds: Double = 1
    public var reconnectMaximumSeconds: Double = 10

    public init(
        bootDelaySeconds: Double = 1,
        heartbeatIntervalSeconds: Double = 10,
        reconnectInitialSeconds: Double = 1,
        reconnectMaximumSeconds: Double = 10
    ) {
        self.bootDelaySeconds = bootDelaySeconds
        self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
        self.reconnectInitialSeconds = reconnectInitialSeconds
        self.reconnectMaximumSeconds = reconnectMaximumSeconds
    }

    enum CodingKeys: String, CodingKey {
        case bootDelaySeconds = "boot_delay_seconds"
        case heartbeatIntervalSeconds = "heartbeat_interval_seconds"
        case reconnectInitialSeconds = "reconnect_initial_seconds"
        case reconnectMaximumSeconds = "reconnect_maximum_seconds"
    }

    /// Decodes a partial update: absent keys keep the values of `base`; negative values are refused.
    static func patched(_ json: JSONValue, base: SimulatorAgentTiming) throws -> SimulatorAgentTiming {
        var timing = base
        func seconds(_ key: CodingKeys, minimum: Double) throws -> Double? {
            try json.seconds(key.rawValue, minimum: minimum)
        }
        if let v = try seconds(.bootDelaySeconds, minimum: 0) { timing.bootDelaySeconds = v }
        if let v = try seconds(.heartbeatIntervalSeconds, minimum: 0.01) { timing.heartbeatIntervalSeconds = v }
        if let v = try seconds(.reconnectInitialSeconds, minimum: 0.01) { timing.reconnectInitialSeconds = v }
        if let v = try seconds(.reconnectMaximumSeconds, minimum: 0.01) { timing.reconnectMaximumSeconds = v }
        timing.reconnectMaximumSeconds = max(timing.reconnectMaximumSeconds, timing.reconnectInitialSeconds)
        return timing
    }
}

/// What one droplet's stand-in agent is doing. Never carries the key.
public struct SimulatedAgentStatus: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable {
        /// The droplet is booting, cloud-init has not started the agent yet, or (never-connect fault)
        /// it never will.
        case waiting
        /// Dialling, saying hello, or between attempts.
        case connecting
        /// Welcomed by the hub.
        case connected
        /// The hub refused its key; it retries with backoff.
        case refused
        /// The droplet is gone or being deleted, the agent was disconnected through the admin API, or
        /// its `ENGINE_WS_URL` is not one the simulator dials (see ``note``).
        case stopped
    }

    public var dropletID: Int64
    public var agentID: String
    public var state: State
    /// The hub as the agent dials it (scheme, host, port, path), or nil when the URL does not parse.
    public var engine: String?
    public var heartbeatsSent: Int = 0
    /// Refusals received from the hub.
    public var refusals: Int = 0
    /// Welcomes received (the first connection and every reconnection).
    public var connections: Int = 0
    /// Admin control: `false` keeps the connection but sends no heartbeats.
    public var heartbeatsEnabled: Bool = true
    /// Admin control: `false` disconnects and stays away.
    public var connectEnabled: Bool = true
    /// The faults drawn for this droplet: `never_connect`, `wrong_key`, `late`.
    public var faults: [String] = []
    /// Why it is not dialling, or the last connection error.
    public var note: String?

    enum CodingKeys: String, CodingKey {
        case state, engine, refusals, connections, faults, note
        case dropletID = "droplet_id"
        case agentID = "agent_id"
        case heartbeatsSent = "heartbeats_sent"
        case heartbeatsEnabled = "heartbeats_enabled"
        case connectEnabled = "connect_enabled"
    }
}

/// One droplet's agent as the simulator keeps it: in memory only (never persisted, never logged).
struct AgentRecord: Sendable {
    var credentials: AgentCredentials
    /// The key the agent presents (differs from the script's under the wrong-key fault).
    var presentedKey: String
    var neverConnects: Bool
    var lateBy: Double
    var status: SimulatedAgentStatus
}

/// What an agent task needs to know about its droplet right now (``SimulatedDigitalOcean/agentAssignment(dropletID:)``).
package struct AgentAssignment: Sendable {
    package var dropletID: Int64
    package var agentID: String
    package var presentedKey: String
    package var engineURL: String
    package var activeAt: Date
    package var neverConnects: Bool
    package var lateBy: Double
    package var heartbeatsEnabled: Bool
    package var connectEnabled: Bool
    package var timing: SimulatorAgentTiming
}
