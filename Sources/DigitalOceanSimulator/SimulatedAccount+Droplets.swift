import Foundation

/// `GET /v2/droplets`, `GET /v2/droplets/{id}`, `DELETE /v2/droplets/{id}`, `DELETE /v2/droplets?tag_name=`.
extension SimulatedAccount {
    func read(dropletID: Int64?, now: Date, _ context: ResponseContext) -> SimulatedDigitalOcean.Response {
        guard let id = dropletID, let droplet = droplets[id], droplet.apiStatus(at: now) != nil else {
            return notFound(context)
        }
        return json(200, ["droplet": render(droplet, now: now)], context)
    }

    mutating func delete(dropletID: Int64?, now: Date, _ context: ResponseContext) -> SimulatedDigitalOcean.Response {
        guard let id = dropletID, var droplet = droplets[id], droplet.apiStatus(at: now) != nil,
            droplet.deleteRequestedAt == nil
        else {
            return notFound(context)
        }
        droplet.deleteRequestedAt = now
        droplet.deletedAt = now.addingTimeInterval(deleteSeconds)
        droplets[id] = droplet
        dirty = true
        return noContent(context)
    }

    mutating func list(
        query: [(String, String)],
        now: Date,
        _ context: ResponseContext
    ) -> SimulatedDigitalOcean.Response {
        func value(_ name: String) -> String? { query.last { $0.0 == name }?.1 }
        let tag = value("tag_name")
        let name = value("name")
        let type = value("type")
        if tag != nil && (name != nil || type != nil) {
            return error(422, "unprocessable_entity", "tag_name cannot be combined with name or type", context)
        }
        if let type, type != "droplets" && type != "gpus" {
            return error(422, "unprocessable_entity", "type must be droplets or gpus", context)
        }
        var matching: [SimulatedDroplet] = []
        if type != "gpus" {  // The simulator has no GPU droplets.
            for id in order {
                guard let droplet = droplets[id], droplet.apiStatus(at: now) != nil, droplet.listVisibleAt <= now else {
                    continue
                }
                if let tag, !droplet.tags.contains(tag) { continue }
                if let name, droplet.name.lowercased() != name.lowercased() { continue }
                matching.append(droplet)
            }
        }
        return pagedList("droplets", matching, query: query, path: "/v2/droplets", context) { render($0, now: now) }
    }

    mutating func deleteByTag(
        query: [(String, String)],
        now: Date,
        _ context: ResponseContext
    ) -> SimulatedDigitalOcean.Response {
        guard let tag = query.last(where: { $0.0 == "tag_name" })?.1, !tag.isEmpty else {
            return error(400, "bad_request", "tag_name is required", context)
        }
        for id in order {
            guard var droplet = droplets[id], droplet.apiStatus(at: now) != nil, droplet.deleteRequestedAt == nil,
                droplet.tags.contains(tag)
            else { continue }
            droplet.deleteRequestedAt = now
            droplet.deletedAt = now.addingTimeInterval(deleteSeconds)
            droplets[id] = droplet
            dirty = true
        }
        return noContent(context)
    }
}
