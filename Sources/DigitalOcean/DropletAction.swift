#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// An action as `POST /v2/droplets/{id}/actions`, `GET /v2/actions/{id}` and
/// `GET /v2/droplets/{id}/actions` return it (`specification/resources/actions/models/action.yml`).
///
/// The spec requires none of its fields; only `id`, `status` and `type` are required here, the
/// rest decode as nil when absent or `null`.
public struct DropletAction: Decodable, Sendable, Hashable, Identifiable {
    /// `in-progress`, `completed` or `errored`; any other value is kept as it came.
    public struct Status: RawRepresentable, Codable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String

        public init(rawValue: String) { self.rawValue = rawValue }

        /// Still running: the droplet is `locked`, and another action on it gets a 422.
        public static let inProgress = Status(rawValue: "in-progress")
        public static let completed = Status(rawValue: "completed")
        /// Ended without its effect.
        public static let errored = Status(rawValue: "errored")

        /// Completed or errored: it will not change again.
        public var isFinished: Bool { self == .completed || self == .errored }

        public var description: String { rawValue }
    }

    public var id: Int64
    public var status: Status
    /// `rename`, `power_off`, `power_on`, `resize`, `enable_backups`, `disable_backups`, `shutdown`,
    /// `create`, …: see ``DropletActionRequest/type``.
    public var type: String
    public var startedAt: Date?
    /// Nil while in progress.
    public var completedAt: Date?
    /// The droplet's id, for a droplet action.
    public var resourceID: Int64?
    /// `droplet` for a droplet action.
    public var resourceType: String?
    /// `region_slug`, else the `region` object's slug.
    public var regionSlug: String?

    public init(
        id: Int64,
        status: Status,
        type: String,
        startedAt: Date? = nil,
        completedAt: Date? = nil,
        resourceID: Int64? = nil,
        resourceType: String? = nil,
        regionSlug: String? = nil
    ) {
        self.id = id
        self.status = status
        self.type = type
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.resourceID = resourceID
        self.resourceType = resourceType
        self.regionSlug = regionSlug
    }

    enum CodingKeys: String, CodingKey {
        case id, status, type, region
        case startedAt = "started_at"
        case completedAt = "completed_at"
        case resourceID = "resource_id"
        case resourceType = "resource_type"
        case regionSlug = "region_slug"
    }

    private struct RegionSlug: Decodable { var slug: String? }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(Int64.self, forKey: .id)
        status = try c.decodeIfPresent(Status.self, forKey: .status) ?? .inProgress  // the spec's default
        type = try c.decode(String.self, forKey: .type)
        startedAt = try c.decodeIfPresent(Date.self, forKey: .startedAt)
        completedAt = try c.decodeIfPresent(Date.self, forKey: .completedAt)
        resourceID = try c.decodeIfPresent(Int64.self, forKey: .resourceID)
        resourceType = try c.decodeIfPresent(String.self, forKey: .resourceType)
        regionSlug =
            try c.decodeIfPresent(String.self, forKey: .regionSlug)
            ?? (try? c.decodeIfPresent(RegionSlug.self, forKey: .region))?.slug
    }
}

/// `resources/droplets/responses/droplet_action.yml`, `resources/actions/responses/action.yml`.
struct DropletActionResponse: Decodable, Sendable {
    var action: DropletAction
}

/// `resources/droplets/responses/all_droplet_actions.yml`.
struct DropletActionListResponse: Decodable, Sendable {
    var actions: [DropletAction]?
}
