#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Tags on live droplets: `POST /v2/tags`, `POST|DELETE /v2/tags/{tag_id}/resources`
/// (`resources/tags`).
extension DigitalOceanClient {
    /// `POST /v2/tags` `{"name": …}`: makes the tag if the account has none by that name. Tagging
    /// a droplet (``tagResources(tag:dropletIDs:clearance:)``) needs the tag to exist first (the
    /// spec answers an unknown tag with 404); a create's `tags` make theirs by themselves.
    ///
    /// Making a tag twice changes nothing, so it is resent like a read on a transient failure;
    /// with a `clearance` (a caller that must look right before anything leaves, such as the
    /// daemon, which may send only while it leads) it is sent once, like an action.
    /// Tags are case-stable: the capitalisation of the first create is the tag's for good.
    public func createTag(name: String, clearance: SendClearance? = nil) async throws(DigitalOceanError) {
        let body = try await beforeSending(clearance) { () throws(DigitalOceanError) -> Data in
            try DropletCreateRequest.validateTag(name)
            return try Self.encoded(TagCreateBody(name: name), what: "tag create")
        }
        _ = try await perform(.POST, "/v2/tags", body: body, kind: .ensure, clearance: clearance)
    }

    /// `POST /v2/tags/{tag}/resources`: puts `tag` on each droplet (one already carrying it is left
    /// as it is). Sent once, like an action (see ``SendClearance``): a lost answer or a 5xx throws
    /// `.outcomeUnknown` (read the droplets before sending it again). `.notFound`: no such tag
    /// (``createTag(name:)`` first) or no such droplet. Returns the request id.
    @discardableResult
    public func tagResources(
        tag: String,
        dropletIDs: [Int64],
        clearance: SendClearance? = nil
    ) async throws(DigitalOceanError) -> String? {
        try await sendTagResources(.POST, tag: tag, dropletIDs: dropletIDs, clearance: clearance)
    }

    /// `DELETE /v2/tags/{tag}/resources`: takes `tag` off each droplet, as ``tagResources(tag:dropletIDs:clearance:)``
    /// puts it on. Returns the request id.
    @discardableResult
    public func untagResources(
        tag: String,
        dropletIDs: [Int64],
        clearance: SendClearance? = nil
    ) async throws(DigitalOceanError) -> String? {
        try await sendTagResources(.DELETE, tag: tag, dropletIDs: dropletIDs, clearance: clearance)
    }

    /// The most droplets one tag request names: a fleet's change is sent in batches of this many.
    public static let maximumTaggedResources = 200

    private func sendTagResources(
        _ method: RequestMethod,
        tag: String,
        dropletIDs: [Int64],
        clearance: SendClearance?
    ) async throws(DigitalOceanError) -> String? {
        let body = try await beforeSending(clearance) { () throws(DigitalOceanError) -> Data in
            try DropletCreateRequest.validateTag(tag)
            guard !dropletIDs.isEmpty else { throw .localValidation("no droplet to tag with \(tag)") }
            guard dropletIDs.count <= Self.maximumTaggedResources else {
                throw .localValidation(
                    "\(dropletIDs.count) droplets in one tag request; at most \(Self.maximumTaggedResources) are sent at once"
                )
            }
            for id in dropletIDs { try Self.validateID(id, "droplet") }
            return try Self.encoded(TagResourcesBody(dropletIDs: dropletIDs), what: "tag resources")
        }
        // The pattern allows only characters that need no escaping in a path.
        return try await perform(method, "/v2/tags/\(tag)/resources", body: body, kind: .update, clearance: clearance)
            .requestID
    }
}

/// `resources/tags/models/tags.yml`, as a create sends it.
struct TagCreateBody: Encodable {
    var name: String
}

/// `resources/tags/models/tags_resource.yml`: droplet ids are sent as strings.
struct TagResourcesBody: Encodable {
    struct Resource: Encodable {
        var resourceID: String
        var resourceType = "droplet"

        enum CodingKeys: String, CodingKey {
            case resourceID = "resource_id"
            case resourceType = "resource_type"
        }
    }

    var resources: [Resource]

    init(dropletIDs: [Int64]) {
        resources = dropletIDs.map { Resource(resourceID: String($0)) }
    }
}
