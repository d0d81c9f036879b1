#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// The droplet a row asks for beyond its name, region, size and image (design.md, "The droplet the
// daemon asks for"): what the platform sets once (`DropletDefaults`, from flags and the environment
// file) and what a row may override (`DropletOptions`, its columns; NULL means the default).

/// A row's own choices; every nil field takes the configuration's default.
public struct DropletOptions: Sendable, Hashable {
    /// `ssh_keys`: ids or fingerprints of keys in the team.
    public var sshKeys: [String]?
    /// `vpc_uuid`: a VPC of the row's region.
    public var vpcUUID: String?
    /// `tags`: extra tags; the daemon's own two are always added.
    public var tags: [String]?
    public var ipv6: Bool?
    public var monitoring: Bool?
    public var backups: Bool?
    public var withDropletAgent: Bool?
    /// `project_id`: the project the droplet is assigned to after it is created.
    public var projectID: String?

    public init(
        sshKeys: [String]? = nil,
        vpcUUID: String? = nil,
        tags: [String]? = nil,
        ipv6: Bool? = nil,
        monitoring: Bool? = nil,
        backups: Bool? = nil,
        withDropletAgent: Bool? = nil,
        projectID: String? = nil
    ) {
        self.sshKeys = sshKeys
        self.vpcUUID = vpcUUID
        self.tags = tags
        self.ipv6 = ipv6
        self.monitoring = monitoring
        self.backups = backups
        self.withDropletAgent = withDropletAgent
        self.projectID = projectID
    }

    /// Every field is the default: a row stores no options then.
    public var isEmpty: Bool { self == DropletOptions() }
}

/// What the platform sets once for every droplet (flags and the environment file).
public struct DropletDefaults: Sendable, Hashable {
    public var sshKeys: [String]
    /// The VPC for each region (a VPC belongs to one); a region without one gets the account's
    /// default VPC there.
    public var vpcs: [String: String]
    public var tags: [String]
    public var ipv6: Bool
    public var monitoring: Bool
    public var backups: Bool
    /// Nil: DigitalOcean's own default (the console agent installed, its errors ignored).
    public var withDropletAgent: Bool?
    public var projectID: String?
    /// The SHA-256 of the user data template in use (agent bootstrap), its first 16 hex digits; nil
    /// without one. Only a new droplet runs user data, so a changed template is drift for the
    /// droplets made before.
    public var userDataDigest: String?

    /// The platform's standard droplet: IPv6 and monitoring on, backups off, no keys, no extra tags.
    public init(
        sshKeys: [String] = [],
        vpcs: [String: String] = [:],
        tags: [String] = [],
        ipv6: Bool = true,
        monitoring: Bool = true,
        backups: Bool = false,
        withDropletAgent: Bool? = nil,
        projectID: String? = nil,
        userDataDigest: String? = nil
    ) {
        self.userDataDigest = userDataDigest
        self.sshKeys = sshKeys
        self.vpcs = vpcs
        self.tags = tags
        self.ipv6 = ipv6
        self.monitoring = monitoring
        self.backups = backups
        self.withDropletAgent = withDropletAgent
        self.projectID = projectID
    }
}

/// What a row's droplet is made with: the row's options over the defaults.
public struct DropletSpecification: Sendable, Hashable {
    public var sshKeys: [String]
    public var vpcUUID: String?
    /// The extra tags, sorted, without duplicates and without the daemon's own two.
    public var tags: [String]
    public var ipv6: Bool
    public var monitoring: Bool
    public var backups: Bool
    public var withDropletAgent: Bool?
    public var projectID: String?
    public var userDataDigest: String?

    public init(options: DropletOptions?, defaults: DropletDefaults, region: String) {
        let options = options ?? DropletOptions()
        sshKeys = options.sshKeys ?? defaults.sshKeys
        vpcUUID = options.vpcUUID ?? defaults.vpcs[region]
        tags = Array(Set(options.tags ?? defaults.tags)).sorted()
        ipv6 = options.ipv6 ?? defaults.ipv6
        monitoring = options.monitoring ?? defaults.monitoring
        backups = options.backups ?? defaults.backups
        withDropletAgent = options.withDropletAgent ?? defaults.withDropletAgent
        projectID = options.projectID ?? defaults.projectID
        userDataDigest = defaults.userDataDigest
    }

    /// What no droplet of the daemon's may carry: a tag of the daemon's own namespace would make a
    /// droplet claim (or lose) a row. Nil when the specification may be sent.
    public var problem: String? {
        for tag in tags where tag == FleetTags.fleet || tag.hasPrefix(FleetTags.identityPrefix) {
            return
                "tags: \(tag) is the daemon's own (\(FleetTags.fleet) and \(FleetTags.identityPrefix)… are added by it and name a droplet's row); remove it from the row's tags"
        }
        if let projectID, projectID.isEmpty { return "project_id must not be empty" }
        return nil
    }

    /// The keys, VPC, options and user data a droplet is made with, which only a new droplet can take:
    /// a later change to them is drift, never applied. In one line, stable for comparison.
    public var creationOnly: String {
        var parts = ["ssh_keys [\(sshKeys.joined(separator: ", "))]"]
        parts.append("vpc \(vpcUUID ?? "the region's default")")
        parts.append("droplet agent \(withDropletAgent.map { $0 ? "required" : "off" } ?? "default")")
        parts.append("ipv6 \(ipv6 ? "on" : "off")")
        parts.append("monitoring \(monitoring ? "on" : "off")")
        if let userDataDigest { parts.append("user data template sha256 \(userDataDigest)…") }
        return parts.joined(separator: ", ")
    }
}

extension Decider {
    func order(for row: ServerRecord) -> CreateOrder {
        CreateOrder(
            rowID: row.id,
            name: row.name,
            region: row.region,
            size: row.size,
            image: row.image,
            specification: specification(of: row)
        )
    }

    /// What the row's droplet is made with: its own choices over the configuration's.
    public func specification(of row: ServerRecord) -> DropletSpecification {
        guard row.options == nil else {
            return DropletSpecification(options: row.options, defaults: configuration.droplets, region: row.region)
        }
        return defaultSpecifications[row.region].specification
    }

    /// `specification(of: row).creationOnly`, kept ready for rows without options of their own.
    func creationOnly(of row: ServerRecord) -> String {
        guard row.options == nil else { return specification(of: row).creationOnly }
        return defaultSpecifications[row.region].creationOnly
    }
}

/// The specification of every row that names no options of its own (nearly all, on most
/// platforms), made once with its decider: it depends on the row's region only through the VPC
/// configured for it. Every converged row is compared with its droplet each pass, and building
/// its specification (and the line of what it is made with) for each took the decision over
/// 10,000 rows from 8.7 ms to 23 ms.
struct DefaultSpecifications: Sendable {
    struct Made: Sendable {
        let specification: DropletSpecification
        let creationOnly: String

        init(_ defaults: DropletDefaults, region: String) {
            specification = DropletSpecification(options: nil, defaults: defaults, region: region)
            creationOnly = specification.creationOnly
        }
    }

    private let byRegion: [String: Made]
    /// Any region without a VPC of its own in the configuration.
    private let elsewhere: Made

    init(_ defaults: DropletDefaults) {
        byRegion = defaults.vpcs.keys.reduce(into: [:]) { $0[$1] = Made(defaults, region: $1) }
        elsewhere = Made(defaults, region: "")
    }

    subscript(region: String) -> Made { byRegion[region] ?? elsewhere }
}
