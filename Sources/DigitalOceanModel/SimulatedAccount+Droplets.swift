import Foundation

/// `GET /v2/droplets`, `GET /v2/droplets/{id}`, `DELETE /v2/droplets/{id}`, `DELETE /v2/droplets?tag_name=`.
extension SimulatedAccount {
    func read(dropletID: Int64?, now: Date, _ context: ResponseContext) -> SimulatedDigitalOcean.Response {
        guard let id = dropletID, let droplet = droplets[id], droplet.apiStatus(at: now) != nil,
            droplet.injected || droplet.createdAt.addingTimeInterval(faults.lookupLagSeconds) <= now
        else {
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
        record(.deleteRequested(droplet, by: context.requestedBy))
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
                guard let droplet = droplets[id], droplet.apiStatus(at: now) != nil,
                    visibleInList(droplet, tag: tag, now: now)
                else {
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
            record(.deleteRequested(droplet, by: context.requestedBy))
        }
        return noContent(context)
    }

    /// Whether a list (by `tag`, or of every droplet) shows `droplet` yet: a list by a tag other
    /// than the fleet's has its own lag (`identity_tag_lag_seconds`), with the droplet's spread.
    func visibleInList(_ droplet: SimulatedDroplet, tag: String?, now: Date) -> Bool {
        guard !droplet.injected, let tag, tag != faults.fleetTag, let identityLag = faults.identityTagLagSeconds else {
            return droplet.listVisibleAt <= now
        }
        let spread = max(0, droplet.listVisibleAt.timeIntervalSince(droplet.createdAt) - faults.listLagSeconds)
        return droplet.createdAt.addingTimeInterval(identityLag + spread) <= now
    }

    /// Deleted by hand (the control panel): no rate limit, no request log; gone after `deleteSeconds`.
    mutating func deleteOutOfBand(dropletID: Int64, now: Date) -> Bool {
        guard var droplet = droplets[dropletID], droplet.apiStatus(at: now) != nil, droplet.deleteRequestedAt == nil
        else { return false }
        droplet.deleteRequestedAt = now
        droplet.deletedAt = now.addingTimeInterval(deleteSeconds)
        droplets[dropletID] = droplet
        dirty = true
        return true
    }
}
