import Foundation

/// An SSH key of the account (`resources/ssh_keys/models/sshKeys.yml`): a create names it in
/// `ssh_keys` by its id or its fingerprint.
public struct SimulatedSSHKey: Sendable, Codable, Equatable {
    public var id: Int64
    /// MD5, as DigitalOcean shows it: `3b:16:bf:e4:…`.
    public var fingerprint: String
    public var name: String

    public init(id: Int64, fingerprint: String, name: String) {
        self.id = id
        self.fingerprint = fingerprint
        self.name = name
    }

    /// The key every simulated account starts with (the spec's example id and fingerprint).
    public static let standard = SimulatedSSHKey(
        id: 512_189,
        fingerprint: "3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa",
        name: "citrus-simulator"
    )
}

/// A VPC (`resources/vpcs/models/vpc.yml`): it belongs to one region, and every region has a
/// default one, where a droplet created without `vpc_uuid` goes.
public struct SimulatedVPC: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var region: String
    public var isDefault: Bool

    public init(id: String, name: String, region: String, isDefault: Bool) {
        self.id = id
        self.name = name
        self.region = region
        self.isDefault = isDefault
    }

    enum CodingKeys: String, CodingKey {
        case id, name, region
        case isDefault = "default"
    }

    /// The id of `region`'s default VPC, fixed so tests can name it; nil for a region the
    /// simulator does not have.
    public static func defaultID(region: String) -> String? {
        guard let index = Catalog.regions.firstIndex(where: { $0.slug == region }) else { return nil }
        return "5a4981aa-9653-4bd1-bef5-d6bff52000" + String(format: "%02x", index)
    }
}

/// A project (`resources/projects/models/project.yml`): every droplet is in exactly one, the
/// account's default one until it is assigned elsewhere.
public struct SimulatedProject: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var isDefault: Bool

    public init(id: String, name: String, isDefault: Bool) {
        self.id = id
        self.name = name
        self.isDefault = isDefault
    }

    enum CodingKeys: String, CodingKey {
        case id, name
        case isDefault = "is_default"
    }

    /// The account's default project (the spec's example id).
    public static let standard = SimulatedProject(
        id: "4e1bfbc3-dc3e-41f2-a18f-1b4d7ba71679",
        name: "citrus-simulator",
        isDefault: true
    )
}

/// What the account holds besides droplets and actions: kept in the state file.
struct SimulatedResources: Sendable, Codable, Equatable {
    var sshKeys: [SimulatedSSHKey]
    var vpcs: [SimulatedVPC]
    var projects: [SimulatedProject]
    /// Every tag made so far, by a create's `tags` or `POST /v2/tags`, in the order made.
    var tags: [String]

    init(sshKeys: [SimulatedSSHKey]) {
        self.sshKeys = sshKeys
        vpcs = Catalog.regions.map { region in
            SimulatedVPC(
                id: SimulatedVPC.defaultID(region: region.slug) ?? "",
                name: "default-\(region.slug)",
                region: region.slug,
                isDefault: true
            )
        }
        projects = [.standard]
        tags = []
    }

    enum CodingKeys: String, CodingKey {
        case vpcs, projects, tags
        case sshKeys = "ssh_keys"
    }

    func sshKey(id: Int64) -> SimulatedSSHKey? { sshKeys.first { $0.id == id } }
    func sshKey(fingerprint: String) -> SimulatedSSHKey? { sshKeys.first { $0.fingerprint == fingerprint } }
    func vpc(id: String) -> SimulatedVPC? { vpcs.first { $0.id.lowercased() == id.lowercased() } }
    func defaultVPC(region: String) -> SimulatedVPC? { vpcs.first { $0.region == region && $0.isDefault } }
    func project(id: String) -> SimulatedProject? { projects.first { $0.id.lowercased() == id.lowercased() } }
    var defaultProject: SimulatedProject { projects.first { $0.isDefault } ?? .standard }
    func hasTag(_ name: String) -> Bool { tags.contains(name) }

    mutating func makeTags(_ names: [String]) {
        for name in names where !hasTag(name) { tags.append(name) }
    }
}
