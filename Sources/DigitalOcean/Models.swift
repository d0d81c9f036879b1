#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A droplet as `GET /v2/droplets` and `GET /v2/droplets/{id}` return it
/// (`specification/resources/droplets/models/droplet.yml`).
///
/// Fields the reconciler relies on are required; the rest decode leniently (absent or `null` become
/// empty) so that a harmless change on DigitalOcean's side cannot fail a whole list. Unknown fields
/// are ignored.
public struct Droplet: Decodable, Sendable, Equatable, Identifiable {
    /// The only stable identity. 64-bit: ids are already beyond 32 bits.
    public var id: Int64
    /// Not unique.
    public var name: String
    public var status: DropletStatus
    public var createdAt: Date
    public var locked: Bool
    public var memory: Int
    public var vcpus: Int
    public var disk: Int
    /// The features DigitalOcean lists that the daemon reads (backups on or off, and the rest of
    /// the droplet's options), one byte rather than an array of strings per droplet.
    public var features: DropletFeatures
    public var tags: [String]
    public var networks: Networks
    public var region: Region
    public var size: Size?
    public var sizeSlug: String
    public var image: Image
    public var vpcUUID: String?
    public var backupIDs: [Int64]
    public var snapshotIDs: [Int64]
    public var volumeIDs: [String]

    /// The first public IPv4 address, as godo's `PublicIPv4()` does; the spec does not promise one
    /// entry per type.
    public var publicIPv4: String? { networks.v4.first { $0.type == "public" }?.ipAddress }
    /// The first public IPv6 address.
    public var publicIPv6: String? { networks.v6.first { $0.type == "public" }?.ipAddress }
    /// The first private IPv4 address.
    public var privateIPv4: String? { networks.v4.first { $0.type == "private" }?.ipAddress }
    /// `region.slug`, e.g. `sfo3`.
    public var regionSlug: String { region.slug }
    /// The image as a create names it: its slug, or its id for an image without one (a snapshot,
    /// a backup or a custom image); nil when the answer carried neither.
    public var imageSlug: String? { image.slug ?? image.id.map { String($0) } }

    enum CodingKeys: String, CodingKey {
        case id, name, status, locked, memory, vcpus, disk, features, tags, networks, region, size, image
        case createdAt = "created_at"
        case sizeSlug = "size_slug"
        case vpcUUID = "vpc_uuid"
        case backupIDs = "backup_ids"
        case snapshotIDs = "snapshot_ids"
        case volumeIDs = "volume_ids"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(Int64.self, forKey: .id)
        name = try c.decode(String.self, forKey: .name)
        status = try c.decode(DropletStatus.self, forKey: .status)
        createdAt = try c.decode(Date.self, forKey: .createdAt)
        locked = try c.decodeIfPresent(Bool.self, forKey: .locked) ?? false
        memory = try c.decodeIfPresent(Int.self, forKey: .memory) ?? 0
        vcpus = try c.decodeIfPresent(Int.self, forKey: .vcpus) ?? 0
        disk = try c.decodeIfPresent(Int.self, forKey: .disk) ?? 0
        features = try c.decodeIfPresent(DropletFeatures.self, forKey: .features) ?? []
        // `tags` is nullable in the spec's shared tag arrays.
        tags = try c.decodeIfPresent([String].self, forKey: .tags) ?? []
        networks = try c.decodeIfPresent(Networks.self, forKey: .networks) ?? Networks(v4: [], v6: [])
        region = try c.decode(Region.self, forKey: .region)
        size = try c.decodeIfPresent(Size.self, forKey: .size)
        sizeSlug = try c.decode(String.self, forKey: .sizeSlug)
        image = try c.decode(Image.self, forKey: .image)
        vpcUUID = try c.decodeIfPresent(String.self, forKey: .vpcUUID)
        backupIDs = try c.decodeIfPresent([Int64].self, forKey: .backupIDs) ?? []
        snapshotIDs = try c.decodeIfPresent([Int64].self, forKey: .snapshotIDs) ?? []
        volumeIDs = try c.decodeIfPresent([String].self, forKey: .volumeIDs) ?? []
    }
}

/// A droplet's `features` (`["backups","ipv6","monitoring","droplet_agent","private_networking"]`),
/// as a set of the ones the daemon reads; any other name DigitalOcean lists is left out.
public struct DropletFeatures: OptionSet, Sendable, Hashable, Decodable, CustomStringConvertible {
    public let rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let backups = DropletFeatures(rawValue: 1 << 0)
    public static let ipv6 = DropletFeatures(rawValue: 1 << 1)
    public static let monitoring = DropletFeatures(rawValue: 1 << 2)
    /// The console agent (`with_droplet_agent`).
    public static let dropletAgent = DropletFeatures(rawValue: 1 << 3)
    public static let privateNetworking = DropletFeatures(rawValue: 1 << 4)

    static let names: [(String, DropletFeatures)] = [
        ("backups", .backups), ("ipv6", .ipv6), ("monitoring", .monitoring), ("droplet_agent", .dropletAgent),
        ("private_networking", .privateNetworking),
    ]

    /// The set the names in `features` make; unknown names are ignored.
    public init(names: some Sequence<String>) {
        self = []
        for name in names {
            if let feature = Self.names.first(where: { $0.0 == name })?.1 { insert(feature) }
        }
    }

    public init(from decoder: any Decoder) throws {
        self.init(names: try decoder.singleValueContainer().decode([String].self))
    }

    /// The names as DigitalOcean writes them, in a fixed order.
    public var description: String {
        Self.names.filter { contains($0.1) }.map(\.0).joined(separator: ",")
    }
}

/// `new`, `active`, `off`, `archive`; anything else is preserved rather than failing the decode.
public enum DropletStatus: Sendable, Hashable, Codable, CustomStringConvertible {
    case new, active, off, archive
    case unknown(String)

    public init(rawValue: String) {
        switch rawValue {
        case "new": self = .new
        case "active": self = .active
        case "off": self = .off
        case "archive": self = .archive
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: String {
        switch self {
        case .new: "new"
        case .active: "active"
        case .off: "off"
        case .archive: "archive"
        case .unknown(let value): value
        }
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

public struct Networks: Decodable, Sendable, Equatable {
    public var v4: [NetworkV4]
    public var v6: [NetworkV6]

    public init(v4: [NetworkV4], v6: [NetworkV6]) {
        self.v4 = v4
        self.v6 = v6
    }

    enum CodingKeys: String, CodingKey { case v4, v6 }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        v4 = try c.decodeIfPresent([NetworkV4].self, forKey: .v4) ?? []
        v6 = try c.decodeIfPresent([NetworkV6].self, forKey: .v6) ?? []
    }
}

/// `models/network_v4.yml`: the netmask is a dotted string; private interfaces have no gateway.
public struct NetworkV4: Decodable, Sendable, Equatable {
    public var ipAddress: String
    public var netmask: String?
    public var gateway: String?
    public var type: String

    enum CodingKeys: String, CodingKey {
        case ipAddress = "ip_address"
        case netmask, gateway, type
    }
}

/// `models/network_v6.yml`: the netmask is an integer prefix length.
public struct NetworkV6: Decodable, Sendable, Equatable {
    public var ipAddress: String
    public var netmask: Int?
    public var gateway: String?
    public var type: String

    enum CodingKeys: String, CodingKey {
        case ipAddress = "ip_address"
        case netmask, gateway, type
    }
}

public struct Region: Decodable, Sendable, Equatable {
    public var slug: String
    public var name: String?
    public var available: Bool?
    public var features: [String]?
    public var sizes: [String]?
}

public struct Size: Decodable, Sendable, Equatable {
    public var slug: String
    public var memory: Int?
    public var vcpus: Int?
    public var disk: Int?
    public var priceMonthly: Double?
    public var priceHourly: Double?

    enum CodingKeys: String, CodingKey {
        case slug, memory, vcpus, disk
        case priceMonthly = "price_monthly"
        case priceHourly = "price_hourly"
    }
}

public struct Image: Decodable, Sendable, Equatable {
    public var id: Int64?
    /// Nullable in the spec: private images have no slug.
    public var slug: String?
    public var name: String?
    public var distribution: String?
}

/// `shared/models/action_link.yml`.
public struct ActionLink: Decodable, Sendable, Equatable {
    public var id: Int64
    public var rel: String?
    public var href: String?
}

/// `shared/pages.yml`: every level may be absent.
struct PageLinks: Decodable, Sendable {
    struct Pages: Decodable, Sendable {
        var first: String?
        var prev: String?
        var next: String?
        var last: String?
    }

    var pages: Pages?
}

/// One page of a droplet list.
public struct DropletPage: Sendable {
    public var droplets: [Droplet]
    /// The next page's path and query; nil on the last page.
    public var next: String?
    /// The whole list's length, as DigitalOcean counted it for this page.
    public var total: Int?
    public var requestID: String?
}

struct DropletListResponse: Decodable, Sendable {
    struct Meta: Decodable, Sendable { var total: Int? }
    var droplets: [Droplet]?
    var links: PageLinks?
    var meta: Meta?
}

struct DropletResponse: Decodable, Sendable {
    var droplet: Droplet
}

struct DropletCreateResponse: Decodable, Sendable {
    struct Links: Decodable, Sendable { var actions: [ActionLink]? }
    var droplet: Droplet
    var links: Links?
}

/// `shared/models/error.yml`, or `shared/models/error_with_root_causes.yml` (the tag endpoints'
/// 400), whose words are in `error`.
struct APIErrorBody: Decodable, Sendable {
    var id: String?
    var message: String?
    var requestID: String?

    enum CodingKeys: String, CodingKey {
        case id, message, error
        case requestID = "request_id"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try? c.decodeIfPresent(String.self, forKey: .id)
        message =
            (try? c.decodeIfPresent(String.self, forKey: .message))
            ?? (try? c.decodeIfPresent(String.self, forKey: .error))
        requestID = try? c.decodeIfPresent(String.self, forKey: .requestID)
    }
}

enum DigitalOceanJSON {
    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            if let date = parseTimestamp(text) { return date }
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an ISO 8601 time: \(text)")
        }
        return decoder
    }

    static func parseTimestamp(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601) { return date }
        return try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
