#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Projects: `POST /v2/projects/{project_id}/resources` (`resources/projects`).
extension DigitalOceanClient {
    /// `POST /v2/projects/{project_id}/resources` `{"resources": [urn, …]}`: moves each resource
    /// into the project (a resource is in exactly one project; new droplets start in the
    /// account's default one). One request for a batch of new droplets, not one per droplet.
    ///
    /// Sent once, like an action (see ``SendClearance``): a lost answer or a 5xx throws
    /// `.outcomeUnknown`. `.notFound`: no such project. Returns what DigitalOcean says of each
    /// resource asked for (its answer lists every resource of the project; the rest are left out).
    @discardableResult
    public func assignResources(
        projectID: String,
        urns: [String],
        clearance: SendClearance? = nil
    ) async throws(DigitalOceanError) -> (resources: [AssignedResource], requestID: String?) {
        let body = try await beforeSending(clearance) { () throws(DigitalOceanError) -> Data in
            try Self.validateProjectID(projectID)
            guard !urns.isEmpty else { throw .localValidation("no resource to assign to project \(projectID)") }
            guard urns.count <= Self.maximumAssignedResources else {
                throw .localValidation(
                    "\(urns.count) resources in one project request; at most \(Self.maximumAssignedResources) are sent at once"
                )
            }
            for urn in urns { try Self.validateURN(urn) }
            return try Self.encoded(ProjectAssignmentBody(resources: urns), what: "project assignment")
        }
        let operation = "POST /v2/projects/\(projectID)/resources"
        let response = try await perform(
            .POST,
            "/v2/projects/\(projectID)/resources",
            body: body,
            kind: .update,
            clearance: clearance
        )
        let asked = Set(urns)
        let decoded = try decode(AssignedResourcesResponse.self, from: response) { error in
            var failure = Self.acceptedButUnreadable(
                "the project assignment",
                response: response,
                advice: "the resources are most likely in the project; read the project before sending it again"
            )
            failure.operation = operation
            failure.underlying = ErrorText.capped(scrubbed(String(describing: error), secrets: []))
            return failure
        }
        return ((decoded.resources ?? []).filter { asked.contains($0.urn) }, response.requestID)
    }

    /// The most resources one assignment names.
    public static let maximumAssignedResources = 200

    /// A droplet's uniform resource name, as a project assignment names it: `do:droplet:<id>`.
    public static func dropletURN(_ dropletID: Int64) -> String { "do:droplet:\(dropletID)" }

    /// A project's id is a UUID (`resources/projects/parameters.yml`).
    public static func validateProjectID(_ projectID: String) throws(DigitalOceanError) {
        guard DropletCreateRequest.isUUID(projectID) else {
            throw .localValidation(
                "project id \(DropletCreateRequest.quoted(String(projectID.prefix(80)))) is not a UUID "
                    + "(such as 4e1bfbc3-dc3e-41f2-a18f-1b4d7ba71679)"
            )
        }
    }

    /// `shared/attributes/urn.yml`: `^do:(dbaas|domain|droplet|…):.*`; for a droplet, its id.
    public static func validateURN(_ urn: String) throws(DigitalOceanError) {
        let parts = urn.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "do", urnTypes.contains(String(parts[1])), !parts[2].isEmpty else {
            throw .localValidation(
                "\(DropletCreateRequest.quoted(String(urn.prefix(80)))) is not a resource name (such as do:droplet:13457723)"
            )
        }
        if parts[1] == "droplet" {
            guard let id = Int64(parts[2]) else {
                throw .localValidation("\(DropletCreateRequest.quoted(urn)) does not end with a droplet id")
            }
            try validateID(id, "droplet")
        }
    }

    static let urnTypes: Set<String> = [
        "dbaas", "domain", "droplet", "floatingip", "loadbalancer", "space", "volume", "kubernetes", "vpc",
    ]
}

/// What a project assignment says of one resource (`resources/projects/models/resource.yml`).
public struct AssignedResource: Decodable, Sendable, Equatable {
    public var urn: String
    /// `ok`, `assigned`, `already_assigned`, `not_found`, `service_down`; nil when absent.
    public var status: String?
    public var assignedAt: Date?

    public init(urn: String, status: String? = nil, assignedAt: Date? = nil) {
        self.urn = urn
        self.status = status
        self.assignedAt = assignedAt
    }

    enum CodingKeys: String, CodingKey {
        case urn, status
        case assignedAt = "assigned_at"
    }
}

/// `resources/projects/models/project_assignment.yml`.
struct ProjectAssignmentBody: Encodable {
    var resources: [String]
}

/// `resources/projects/responses/assigned_resources_list.yml`.
struct AssignedResourcesResponse: Decodable {
    var resources: [AssignedResource]?
}
