import Foundation
import Timekeeping

/// How the simulator behaves. Durations are wall-clock.
public struct SimulatorConfiguration: Sendable {
    /// Accepted bearer tokens. Each has its own rate-limit windows.
    public var tokens: Set<String> = [SimulatorConfiguration.developmentToken]
    /// `new` → `active` after this long.
    public var bootTime: Duration = .seconds(5)
    /// Each droplet boots for up to this long more than `bootTime`, drawn per droplet.
    public var bootTimeSpread: Duration = .zero
    /// Keep what each request did (``SimulatorEffect``) for ``SimulatedDigitalOcean/takeEffects()``:
    /// the deterministic simulation checks its invariants on them. Off by default: nobody drains them.
    public var recordsEffects = false
    /// A deleted droplet still lists (and reads) for this long, then disappears.
    public var deleteTime: Duration = .seconds(3)
    /// How long droplet actions (rename, power_off, power_on, resize) run.
    public var actionTiming = SimulatorActionTiming()
    /// The simulator's time: droplet lifecycles, actions, rate windows and the stand-in agents'
    /// boot delays follow it. Tests pass a clock they move (CitrusTestKit's `ManualClock`) to end
    /// an action or a boot without waiting for it; connections and latency still take real time.
    public var clock: any DaemonClock = SystemClock()
    public var rateLimits = SimulatorRateLimits()
    public var faults = SimulatorFaults()
    /// Makes ids, addresses, request ids and fault draws repeatable.
    public var seed: UInt64?
    /// Persist droplets here (JSON) and reload them on start.
    public var stateDirectory: String?
    /// The request log keeps at most this many entries (oldest dropped); counts are kept for all.
    public var requestLogLimit: Int = 100_000
    /// The account's SSH keys to begin with; more through `POST /_sim/ssh-keys`.
    public var sshKeys: [SimulatedSSHKey] = [.standard]
    /// Agents (droplets created with `user_data` carrying the agent's three values): from active to
    /// cloud-init starting the agent, the heartbeat period and the reconnect backoff.
    public var agentBootDelay: Duration = .seconds(1)
    public var agentHeartbeatInterval: Duration = .seconds(10)
    /// Reconnect backoff: starts here and doubles up to ``agentReconnectMaximumDelay``.
    public var agentReconnectInitialDelay: Duration = .seconds(1)
    public var agentReconnectMaximumDelay: Duration = .seconds(10)

    /// The agent timings as the admin API shows them.
    public var agentTiming: SimulatorAgentTiming {
        get {
            SimulatorAgentTiming(
                bootDelaySeconds: agentBootDelay.timeInterval,
                heartbeatIntervalSeconds: agentHeartbeatInterval.timeInterval,
                reconnectInitialSeconds: agentReconnectInitialDelay.timeInterval,
                reconnectMaximumSeconds: agentReconnectMaximumDelay.timeInterval
            )
        }
        set {
            agentBootDelay = .seconds(newValue.bootDelaySeconds)
            agentHeartbeatInterval = .seconds(newValue.heartbeatIntervalSeconds)
            agentReconnectInitialDelay = .seconds(newValue.reconnectInitialSeconds)
            agentReconnectMaximumDelay = .seconds(newValue.reconnectMaximumSeconds)
        }
    }

    /// The token `citrus-do-sim` accepts when none is given. For development only.
    public static let developmentToken = "dop_v1_simulator_development_token"

    public init() {}
}

/// Per-token sliding windows. DigitalOcean: 250 per minute and 5,000 per hour.
public struct SimulatorRateLimits: Sendable, Codable, Equatable {
    public var perMinute: Int = 250
    public var perHour: Int = 5000
    /// The "minute" window; shorter in tests so a 429's `retry-after` is short.
    public var minuteWindowSeconds: Double = 60
    /// The "hour" window.
    public var hourWindowSeconds: Double = 3600

    public init(
        perMinute: Int = 250,
        perHour: Int = 5000,
        minuteWindowSeconds: Double = 60,
        hourWindowSeconds: Double = 3600
    ) {
        self.perMinute = perMinute
        self.perHour = perHour
        self.minuteWindowSeconds = minuteWindowSeconds
        self.hourWindowSeconds = hourWindowSeconds
    }

    enum CodingKeys: String, CodingKey {
        case perMinute = "per_minute"
        case perHour = "per_hour"
        case minuteWindowSeconds = "minute_window_seconds"
        case hourWindowSeconds = "hour_window_seconds"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SimulatorRateLimits()
        perMinute = try c.decodeIfPresent(Int.self, forKey: .perMinute) ?? d.perMinute
        perHour = try c.decodeIfPresent(Int.self, forKey: .perHour) ?? d.perHour
        minuteWindowSeconds = try c.decodeIfPresent(Double.self, forKey: .minuteWindowSeconds) ?? d.minuteWindowSeconds
        hourWindowSeconds = try c.decodeIfPresent(Double.self, forKey: .hourWindowSeconds) ?? d.hourWindowSeconds
    }
}

/// Everything the simulator knows about one droplet, including its whole lifecycle. Kept after the
/// droplet is gone, for introspection.
public struct SimulatedDroplet: Sendable, Codable, Equatable {
    public var id: Int64
    public var name: String
    public var region: String
    public var size: String
    public var image: String
    public var tags: [String]
    public var ipv6: Bool
    public var monitoring: Bool
    public var backups: Bool
    public var publicNetworking: Bool
    public var hasUserData: Bool
    /// The VPC asked for, else the region's default one.
    public var vpcUUID: String
    /// The ids of the SSH keys `ssh_keys` named (nil: none).
    public var sshKeyIDs: [Int64]?
    /// `with_droplet_agent` as asked (nil: not said, and the agent is installed).
    public var withDropletAgent: Bool?
    /// The project it was assigned to; nil: the account's default project.
    public var projectID: String?
    /// Made through `/_sim/droplets` rather than the API.
    public var injected: Bool
    /// Id of the create action returned in `links.actions`.
    public var actionID: Int64

    public var createdAt: Date
    /// When it became (or, for a future time, will become) active. Nil if it vanished first.
    public var activeAt: Date?
    /// When list results start to include it (list lag).
    public var listVisibleAt: Date
    /// Set when it is doomed to vanish before becoming active.
    public var vanishesAt: Date?
    public var vanishedAt: Date?
    public var deleteRequestedAt: Date?
    /// When it stopped being visible after a delete.
    public var deletedAt: Date?

    public var publicIPv4: String?
    public var privateIPv4: String?
    public var publicIPv6: String?

    /// When a `power_off` (or an operator) turned it off; nil while it is on.
    public var poweredOffAt: Date?
    /// Its disk in GB when that differs from its size's: after a resize without `disk: true`.
    public var disk: Int64?

    /// The status the API reports at `now`, or nil when the API no longer knows the droplet.
    public func apiStatus(at now: Date) -> String? {
        if createdAt > now { return nil }  // a late create, not carried out yet
        if let deletedAt, deletedAt <= now { return nil }
        if let vanishesAt, vanishesAt <= now { return nil }
        if let activeAt, activeAt <= now { return poweredOffAt == nil ? "active" : "off" }
        return "new"
    }

    enum CodingKeys: String, CodingKey {
        case id, name, region, size, image, tags, ipv6, monitoring, backups, injected
        case publicNetworking = "public_networking"
        case hasUserData = "has_user_data"
        case vpcUUID = "vpc_uuid"
        case sshKeyIDs = "ssh_key_ids"
        case withDropletAgent = "with_droplet_agent"
        case projectID = "project_id"
        case actionID = "action_id"
        case createdAt = "created_at"
        case activeAt = "active_at"
        case listVisibleAt = "list_visible_at"
        case vanishesAt = "vanishes_at"
        case vanishedAt = "vanished_at"
        case deleteRequestedAt = "delete_requested_at"
        case deletedAt = "deleted_at"
        case publicIPv4 = "public_ipv4"
        case privateIPv4 = "private_ipv4"
        case publicIPv6 = "public_ipv6"
        case poweredOffAt = "powered_off_at"
        case disk
    }
}

/// One request as received.
public struct SimulatorRequestRecord: Sendable, Codable, Equatable {
    public var sequence: Int
    public var time: Date
    public var method: String
    /// Path with query string.
    public var path: String
    /// The route, with ids replaced: `/v2/droplets/{droplet_id}`.
    public var route: String
    /// The status sent, or nil when the connection was closed without an answer.
    public var status: Int?
    public var requestID: String
    /// POST bodies and DELETE bodies (up to 64 KiB + 1 KiB), to check what clients actually send, with the value of
    /// `user_data` replaced by a note of its size (`"<present, 1234 bytes>"`): it carries the agent's
    /// key. Nil for a body that is not JSON (then only ``bodyBytes`` is kept).
    public var body: String?
    /// The size of a POST (or DELETE) body as received.
    public var bodyBytes: Int?

    enum CodingKeys: String, CodingKey {
        case sequence, time, method, path, route, status, body
        case requestID = "request_id"
        case bodyBytes = "body_bytes"
    }
}

/// Request counts by method and route.
public struct SimulatorRequestCount: Sendable, Codable, Equatable, Hashable {
    public var method: String
    public var route: String
    public var count: Int
}

/// A droplet to put into the simulator directly (orphan and adoption tests).
public struct SimulatorDropletInjection: Sendable, Codable {
    public var name: String
    public var tags: [String] = []
    public var region: String = "sfo3"
    public var size: String = "s-1vcpu-512mb-10gb"
    public var image: String = "ubuntu-22-04-x64"
    public var ipv6: Bool = true
    /// Already active (with addresses) rather than `new` and booting.
    public var active: Bool = true
    /// Backdate the creation time by this many seconds.
    public var ageSeconds: Double = 0

    public init(
        name: String,
        tags: [String] = [],
        region: String = "sfo3",
        size: String = "s-1vcpu-512mb-10gb",
        image: String = "ubuntu-22-04-x64",
        ipv6: Bool = true,
        active: Bool = true,
        ageSeconds: Double = 0
    ) {
        self.name = name
        self.tags = tags
        self.region = region
        self.size = size
        self.image = image
        self.ipv6 = ipv6
        self.active = active
        self.ageSeconds = ageSeconds
    }

    enum CodingKeys: String, CodingKey {
        case name, tags, region, size, image, ipv6, active
        case ageSeconds = "age_seconds"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SimulatorDropletInjection(name: "")
        name = try c.decode(String.self, forKey: .name)
        tags = try c.decodeIfPresent([String].self, forKey: .tags) ?? d.tags
        region = try c.decodeIfPresent(String.self, forKey: .region) ?? d.region
        size = try c.decodeIfPresent(String.self, forKey: .size) ?? d.size
        image = try c.decodeIfPresent(String.self, forKey: .image) ?? d.image
        ipv6 = try c.decodeIfPresent(Bool.self, forKey: .ipv6) ?? d.ipv6
        active = try c.decodeIfPresent(Bool.self, forKey: .active) ?? d.active
        ageSeconds = try c.decodeIfPresent(Double.self, forKey: .ageSeconds) ?? d.ageSeconds
    }
}
