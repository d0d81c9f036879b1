import Foundation
import Timekeeping

/// A droplet action the simulator performs (`rename`, `power_off`, `power_on`, `resize`,
/// `enable_backups`, `disable_backups`, `shutdown`), sent to
/// `POST /v2/droplets/{id}/actions`, or made out of band through `POST /_sim/droplets/{id}/actions`
/// (as a person in the control panel would). The droplet is locked while it runs; its effect lands
/// when it ends.
public struct SimulatedAction: Sendable, Codable, Equatable {
    public enum Ending: String, Sendable, Codable {
        case completed
        /// Ended without its effect (the `errored` fault).
        case errored
    }

    public var id: Int64
    public var dropletID: Int64
    public var type: String
    /// The droplet's region.
    public var region: String
    public var startedAt: Date
    /// When it ends: in the future while it is in progress.
    public var endsAt: Date
    /// How it ends, decided when it starts.
    public var ending: Ending
    /// `rename`: the new name.
    public var name: String?
    /// `resize`: the new size slug, and whether the disk grows with it.
    public var size: String?
    public var disk: Bool?
    /// Made through the admin API rather than the DigitalOcean API.
    public var outOfBand: Bool
    /// Whether it has ended and its effect (if any) is on the droplet.
    public var settled: Bool

    /// `in-progress`, `completed` or `errored`, as the API reports it at `now`.
    public func status(at now: Date) -> String { now < endsAt ? "in-progress" : ending.rawValue }

    enum CodingKeys: String, CodingKey {
        case id, type, region, ending, name, size, disk, settled
        case dropletID = "droplet_id"
        case startedAt = "started_at"
        case endsAt = "ends_at"
        case outOfBand = "out_of_band"
    }
}

/// How long each action runs. DigitalOcean's take seconds (a rename) to minutes (a resize that
/// copies the disk); tests set them to milliseconds.
public struct SimulatorActionTiming: Sendable, Equatable, Codable {
    public var rename: Duration = .seconds(2)
    public var powerOff: Duration = .seconds(8)
    public var powerOn: Duration = .seconds(8)
    /// A resize of CPU and memory only.
    public var resize: Duration = .seconds(45)
    /// Added to a resize with `disk: true`: the disk is copied.
    public var resizeDisk: Duration = .seconds(60)
    /// `enable_backups` and `disable_backups`.
    public var backups: Duration = .seconds(3)
    /// A graceful power-off: the system is asked to stop, and takes longer than a hard one.
    public var shutdown: Duration = .seconds(15)

    public init(
        rename: Duration = .seconds(2),
        powerOff: Duration = .seconds(8),
        powerOn: Duration = .seconds(8),
        resize: Duration = .seconds(45),
        resizeDisk: Duration = .seconds(60),
        backups: Duration = .seconds(3),
        shutdown: Duration = .seconds(15)
    ) {
        self.rename = rename
        self.powerOff = powerOff
        self.powerOn = powerOn
        self.resize = resize
        self.resizeDisk = resizeDisk
        self.backups = backups
        self.shutdown = shutdown
    }

    /// Every action takes `duration` (a resize with its disk twice that): for tests.
    public static func uniform(_ duration: Duration) -> SimulatorActionTiming {
        SimulatorActionTiming(
            rename: duration,
            powerOff: duration,
            powerOn: duration,
            resize: duration,
            resizeDisk: duration,
            backups: duration,
            shutdown: duration
        )
    }

    func duration(type: String, disk: Bool) -> Duration {
        switch type {
        case "rename": rename
        case "power_off": powerOff
        case "power_on": powerOn
        case "resize": resize + (disk ? resizeDisk : .zero)
        case "enable_backups", "disable_backups": backups
        case "shutdown": shutdown
        default: .zero
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case rename = "rename_seconds"
        case powerOff = "power_off_seconds"
        case powerOn = "power_on_seconds"
        case resize = "resize_seconds"
        case resizeDisk = "resize_disk_seconds"
        case backups = "backups_seconds"
        case shutdown = "shutdown_seconds"
    }

    private var byKey: [CodingKeys: Duration] {
        [
            .rename: rename, .powerOff: powerOff, .powerOn: powerOn, .resize: resize, .resizeDisk: resizeDisk,
            .backups: backups, .shutdown: shutdown,
        ]
    }

    private mutating func set(_ key: CodingKeys, _ value: Duration) {
        switch key {
        case .rename: rename = value
        case .powerOff: powerOff = value
        case .powerOn: powerOn = value
        case .resize: resize = value
        case .resizeDisk: resizeDisk = value
        case .backups: backups = value
        case .shutdown: shutdown = value
        }
    }

    /// In seconds, as the admin API shows them.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        for (key, value) in byKey { try c.encode(value.timeInterval, forKey: key) }
    }

    public init(from decoder: any Decoder) throws {
        self = try Self.patched(JSONValue(from: decoder), base: SimulatorActionTiming())
    }

    /// A partial update in seconds: absent keys keep the values of `base`; negative ones are refused.
    static func patched(_ json: JSONValue, base: SimulatorActionTiming) throws -> SimulatorActionTiming {
        var timing = base
        for key in CodingKeys.allCases {
            if let seconds = try json.seconds(key.rawValue, minimum: 0) { timing.set(key, .interval(seconds)) }
        }
        return timing
    }
}

/// A fault aimed at droplet actions: the next `count` actions that match `type` and `dropletID`
/// (nil matches any) and would be accepted. "Lose the answer to the next power_off" is
/// `SimulatorActionFault(.lostAnswer, type: "power_off")`.
public struct SimulatorActionFault: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Answered 500; nothing is done.
        case serverError = "server_error"
        /// Performed, then the connection is closed without an answer.
        case lostAnswer = "lost_answer"
        /// Performed, then answered 500.
        case serverErrorAfter = "server_error_after"
        /// Accepted (201, in progress), but it ends `errored`, without its effect.
        case errored
    }

    public var kind: Kind
    /// An action type (`power_off`, `enable_backups`, …); nil: any.
    public var type: String?
    /// Nil: any droplet.
    public var dropletID: Int64?
    /// Matching actions it strikes before it is spent.
    public var count: Int

    public init(_ kind: Kind, type: String? = nil, dropletID: Int64? = nil, count: Int = 1) {
        self.kind = kind
        self.type = type
        self.dropletID = dropletID
        self.count = count
    }

    func matches(type: String, dropletID: Int64) -> Bool {
        count > 0 && (self.type == nil || self.type == type) && (self.dropletID == nil || self.dropletID == dropletID)
    }

    enum CodingKeys: String, CodingKey {
        case kind, type, count
        case dropletID = "droplet_id"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(Kind.self, forKey: .kind)
        type = try c.decodeIfPresent(String.self, forKey: .type)
        dropletID = try c.decodeIfPresent(Int64.self, forKey: .dropletID)
        count = try c.decodeIfPresent(Int.self, forKey: .count) ?? 1
        guard count >= 1 else {
            throw DecodingError.dataCorruptedError(forKey: .count, in: c, debugDescription: "count must be 1 or more")
        }
    }
}
