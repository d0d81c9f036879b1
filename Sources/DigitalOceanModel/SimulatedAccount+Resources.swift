import Foundation

/// `POST /v2/tags`, `GET /v2/tags/{tag}`, `POST|DELETE /v2/tags/{tag}/resources`,
/// `GET|POST /v2/projects/{project_id}/resources`, and what the admin API adds (SSH keys, VPCs,
/// projects). Refusals not worded by the spec are the simulator's own words.
extension SimulatedAccount {
    /// 201 with the tag, whether it was made now or already was (making a tag twice changes
    /// nothing); an invalid name gets the spec's 400 (`tags_bad_request.yml`).
    mutating func createTag(body: [UInt8], _ context: ResponseContext) -> SimulatedDigitalOcean.Response {
        guard let document = try? JSONValue.parse(body), case .object = document else {
            return error(400, "bad_request", "error parsing request body", context)
        }
        guard let name = document["name"]?.stringValue, Self.isValidTag(name) else {
            let shown = document["name"]?.stringValue.map { String($0.prefix(300)) } ?? "(none)"
            let message = "Error validating resource tag: \"tag-name \\\"\(shown)\\\" contains invalid characters\""
            return json(
                400,
                ["error": .string(message), "messages": .null, "root_causes": .strings([message])],
                context
            )
        }
        resources.makeTags([name])
        dirty = true
        return json(201, ["tag": renderTag(name, droplets: [])], context)
    }

    func readTag(_ name: String, now: Date, _ context: ResponseContext) -> SimulatedDigitalOcean.Response {
        guard resources.hasTag(name) else { return notFound(context) }
        let tagged = order.compactMap { droplets[$0] }.filter { $0.apiStatus(at: now) != nil && $0.tags.contains(name) }
        return json(200, ["tag": renderTag(name, droplets: tagged)], context)
    }

    /// `resources/tags/models/tags.yml`, with `tags_metadata.yml` counts.
    func renderTag(_ name: String, droplets tagged: [SimulatedDroplet]) -> JSONValue {
        var droplets: [(String, JSONValue)] = [("count", .int(Int64(tagged.count)))]
        if let last = tagged.last {
            droplets.append(("last_tagged_uri", .string("https://api.digitalocean.com/v2/droplets/\(last.id)")))
        }
        var counts = droplets
        counts.append(("droplets", .object(droplets)))
        for other in ["images", "volumes", "volume_snapshots", "databases"] {
            counts.append((other, .object([("count", 0)])))
        }
        return .object([("name", .string(name)), ("resources", .object(counts))])
    }

    /// Tags (`adding`) or untags droplets: 204, or 404 for an unknown tag or droplet (nothing is
    /// changed then), 400/422 for a body the spec does not allow.
    mutating func tagResources(
        _ tag: String,
        body: [UInt8],
        adding: Bool,
        now: Date,
        _ context: ResponseContext
    ) -> SimulatedDigitalOcean.Response {
        guard resources.hasTag(tag) else { return notFound(context) }
        guard let document = try? JSONValue.parse(body), case .object = document else {
            return error(400, "bad_request", "error parsing request body", context)
        }
        func invalid(_ message: String) -> SimulatedDigitalOcean.Response {
            error(422, "unprocessable_entity", message, context)
        }
        guard let items = document["resources"]?.arrayValue, !items.isEmpty else {
            return invalid("resources must be a non-empty array of objects with resource_id and resource_type")
        }
        var ids: [Int64] = []
        for item in items {
            guard let type = item["resource_type"]?.stringValue else { return invalid("resource_type is required") }
            guard let text = item["resource_id"]?.stringValue else { return invalid("resource_id must be a string") }
            guard type == "droplet" else { return invalid("the simulator tags only droplets, not \(type.prefix(40))") }
            guard let id = Int64(text), let droplet = droplets[id], droplet.apiStatus(at: now) != nil else {
                return notFound(context)
            }
            ids.append(id)
        }
        for id in ids {
            guard var droplet = droplets[id] else { continue }
            if adding {
                if !droplet.tags.contains(tag) { droplet.tags.append(tag) }
            } else {
                droplet.tags.removeAll { $0 == tag }
            }
            droplets[id] = droplet
        }
        dirty = true
        return noContent(context)
    }

    /// `GET` (`body == nil`) lists a project's resources, paged like every list; `POST` assigns the
    /// droplets named by URN and answers with every resource of the project. 404 for an unknown
    /// project.
    mutating func projectResources(
        _ projectID: String,
        body: [UInt8]?,
        query: [(String, String)],
        now: Date,
        _ context: ResponseContext
    ) -> SimulatedDigitalOcean.Response {
        guard let project = resources.project(id: projectID) else { return notFound(context) }
        var statuses: [String: String] = [:]
        if let body {
            guard let document = try? JSONValue.parse(body), case .object = document else {
                return error(400, "bad_request", "error parsing request body", context)
            }
            guard let urns = document["resources"]?.arrayValue?.compactMap(\.stringValue),
                urns.count == document["resources"]?.arrayValue?.count, !urns.isEmpty
            else {
                return error(400, "bad_request", "resources must be a non-empty array of resource names", context)
            }
            for urn in urns {
                let parts = urn.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count == 3, parts[0] == "do" else {
                    return error(400, "bad_request", "\(urn.prefix(80)) is not a resource name", context)
                }
                guard parts[1] == "droplet", let id = Int64(parts[2]), var droplet = droplets[id],
                    droplet.apiStatus(at: now) != nil
                else {
                    statuses[urn] = "not_found"
                    continue
                }
                statuses[urn] = "ok"
                droplet.projectID = project.isDefault ? nil : project.id
                droplets[id] = droplet
            }
            dirty = true
        }
        let assignedAt = Self.timestamp(now)
        var listed: [JSONValue] = order.compactMap { id -> JSONValue? in
            guard let droplet = droplets[id], droplet.apiStatus(at: now) != nil,
                (droplet.projectID ?? resources.defaultProject.id) == project.id
            else { return nil }
            let urn = "do:droplet:\(id)"
            defer { statuses[urn] = nil }
            return .object([
                ("urn", .string(urn)), ("assigned_at", .string(assignedAt)),
                ("links", .object([("self", .string("https://api.digitalocean.com/v2/droplets/\(id)"))])),
                ("status", .string(statuses[urn] ?? "ok")),
            ])
        }
        guard body != nil else {
            return pagedList("resources", listed, query: query, path: "/v2/projects/\(project.id)/resources", context) {
                $0
            }
        }
        for (urn, status) in statuses.sorted(by: { $0.key < $1.key }) {
            listed.append(.object([("urn", .string(urn)), ("status", .string(status))]))
        }
        return json(200, ["resources": .array(listed)], context)
    }

    // MARK: - Added through the admin API

    mutating func addSSHKey(_ patch: JSONValue) throws -> SimulatedSSHKey {
        guard case .object = patch else { throw SimulatorError("the body must be a JSON object") }
        let id = patch["id"]?.intValue ?? ((resources.sshKeys.map(\.id).max() ?? 512_188) + 1)
        guard id >= 1, resources.sshKey(id: id) == nil else { throw SimulatorError("ssh key id \(id) is taken") }
        let fingerprint =
            patch["fingerprint"]?.stringValue
            ?? (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }
            .joined(separator: ":")
        guard resources.sshKey(fingerprint: fingerprint) == nil else {
            throw SimulatorError("fingerprint \(fingerprint) is taken")
        }
        let key = SimulatedSSHKey(id: id, fingerprint: fingerprint, name: patch["name"]?.stringValue ?? "key-\(id)")
        resources.sshKeys.append(key)
        dirty = true
        return key
    }

    mutating func addVPC(_ patch: JSONValue) throws -> SimulatedVPC {
        guard let region = patch["region"]?.stringValue, Catalog.region(region) != nil else {
            throw SimulatorError("a VPC needs a known region (\(Catalog.regions.map(\.slug).joined(separator: ", ")))")
        }
        let id = patch["id"]?.stringValue ?? rng.uuid()
        guard resources.vpc(id: id) == nil else { throw SimulatorError("VPC \(id) exists") }
        let vpc = SimulatedVPC(
            id: id,
            name: patch["name"]?.stringValue ?? "vpc-\(region)-\(resources.vpcs.count)",
            region: region,
            isDefault: false
        )
        resources.vpcs.append(vpc)
        dirty = true
        return vpc
    }

    mutating func addProject(_ patch: JSONValue) throws -> SimulatedProject {
        guard case .object = patch else { throw SimulatorError("the body must be a JSON object") }
        let id = patch["id"]?.stringValue ?? rng.uuid()
        guard resources.project(id: id) == nil else { throw SimulatorError("project \(id) exists") }
        let project = SimulatedProject(
            id: id,
            name: patch["name"]?.stringValue ?? "project-\(resources.projects.count)",
            isDefault: false
        )
        resources.projects.append(project)
        dirty = true
        return project
    }

    /// The newest `POST /v2/droplets` in the request log.
    var lastCreateRequest: SimulatorRequestRecord? {
        log.last { $0.method == "POST" && $0.route == "/v2/droplets" }
    }
}
