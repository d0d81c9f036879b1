import Foundation

/// `POST /v2/droplets` (single and multi), and droplets injected through `/_sim`.
extension SimulatedAccount {
    mutating func create(body: [UInt8], now: Date, _ context: ResponseContext) -> APIResult {
        guard let document = try? JSONValue.parse(body), case .object = document else {
            return .respond(error(400, "bad_request", "error parsing request body", context))
        }
        func invalid(_ message: String) -> APIResult { .respond(error(422, "unprocessable_entity", message, context)) }
        if faults.createRefusedEchoingBody {
            return invalid("cannot create a droplet from \(String(decoding: body, as: UTF8.self))")
        }

        let names: [String]
        let multi: Bool
        switch (document["name"], document["names"]) {
        case (.some(let single), nil):
            guard let name = single.stringValue else { return invalid("name must be a string") }
            names = [name]
            multi = false
        case (nil, .some(let many)):
            guard let items = many.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                return invalid("names must be an array of strings")
            }
            guard !items.isEmpty else { return invalid("names must not be empty") }
            guard items.count <= 10 else { return invalid("You may only create up to 10 Droplets at a time.") }
            names = items.compactMap(\.stringValue)
            multi = true
        case (.some, .some):
            return invalid("Specify either name or names, not both.")
        case (nil, nil):
            return invalid("Name is required.")
        }
        for name in names {
            if let problem = Self.nameProblem(name) { return invalid(problem) }
        }
        guard let sizeSlug = document["size"]?.stringValue, let size = Catalog.size(sizeSlug) else {
            return invalid("You specified an invalid size for Droplet creation.")
        }
        let imageKey: String? = document["image"]?.stringValue ?? document["image"]?.intValue.map { String($0) }
        guard let imageKey, let image = Catalog.image(imageKey) else {
            return invalid("You specified an invalid image for Droplet creation.")
        }
        var vpc: SimulatedVPC?
        if let value = document["vpc_uuid"], !value.isNull {
            guard let text = value.stringValue else { return invalid("vpc_uuid must be a string") }
            guard let known = resources.vpc(id: text) else {
                return invalid("You specified invalid VPC parameters for Droplet creation: no VPC \(text.prefix(80)).")
            }
            vpc = known
        }
        let regionSlug: String
        switch document["region"] {
        case nil, .some(.null):
            // "If the region is omitted … the Droplet may deploy in any region": the VPC's, when one is named.
            regionSlug = vpc?.region ?? Catalog.regions[Int.random(in: 0..<Catalog.regions.count, using: &rng)].slug
        case .some(let value):
            guard let text = value.stringValue,
                let match = Catalog.region(text)
                    ?? Catalog.regions.first(where: { !text.isEmpty && $0.slug.hasPrefix(text) })
            else {
                return invalid("You specified an invalid region for Droplet creation.")
            }
            regionSlug = match.slug
        }
        if let vpc, vpc.region != regionSlug {
            return invalid(
                "You specified invalid VPC parameters for Droplet creation: VPC \(vpc.id) is in \(vpc.region), "
                    + "not \(regionSlug)."
            )
        }
        var sshKeyIDs: [Int64] = []
        switch document["ssh_keys"] {
        case nil, .some(.null): break
        case .some(let value):
            guard let items = value.arrayValue else { return invalid("ssh_keys must be an array") }
            for item in items {
                // An id is an integer, a fingerprint a string: an id sent as a string names no key.
                let key: SimulatedSSHKey?
                switch item {
                case .int(let id): key = resources.sshKey(id: id)
                case .string(let fingerprint): key = resources.sshKey(fingerprint: fingerprint)
                default: return invalid("ssh_keys must hold key ids (integers) and fingerprints (strings)")
                }
                guard let key else {
                    return invalid(
                        "You specified an invalid SSH key for Droplet creation: \(item.text.prefix(80)) is not a key of this account."
                    )
                }
                if !sshKeyIDs.contains(key.id) { sshKeyIDs.append(key.id) }
            }
        }
        var withDropletAgent: Bool?
        if let value = document["with_droplet_agent"], !value.isNull {
            guard let bool = value.boolValue else { return invalid("with_droplet_agent must be a boolean") }
            withDropletAgent = bool
        }
        var tags: [String] = []
        switch document["tags"] {
        case nil, .some(.null): break
        case .some(let value):
            guard let items = value.arrayValue?.compactMap(\.stringValue), items.count == value.arrayValue?.count else {
                return invalid("tags must be an array of strings")
            }
            for tag in items where !Self.isValidTag(tag) {
                return invalid(
                    "Tag \"\(tag.prefix(300))\" is invalid: tag names may only contain letters, numbers, colons, dashes and underscores, and be at most 255 characters long."
                )
            }
            for tag in items where !tags.contains(tag) { tags.append(tag) }
        }
        // Messages about user_data never quote it: it carries the agent's key.
        var hasUserData = false
        var agentCredentials: AgentCredentials?
        if let userData = document["user_data"], !userData.isNull {
            guard let text = userData.stringValue else { return invalid("user_data must be a string") }
            guard text.utf8.count <= 64 * 1024 else { return invalid("user_data must not exceed 64 KiB.") }
            hasUserData = true
            agentCredentials = AgentCredentials.extract(fromScript: text)
        }
        var flags: [String: Bool] = ["ipv6": false, "monitoring": false, "backups": false, "public_networking": true]
        for key in Array(flags.keys) {
            guard let value = document[key], !value.isNull else { continue }
            guard let bool = value.boolValue else { return invalid("\(key) must be a boolean") }
            flags[key] = bool
        }
        if flags["public_networking"] == false && flags["ipv6"] == true {
            return invalid("ipv6 must be false when public_networking is false.")
        }

        if let limit = faults.dropletLimit,
            droplets.values.count(where: { $0.apiStatus(at: now) != nil && $0.deleteRequestedAt == nil }) + names.count
                > limit
        {
            return invalid(Self.dropletLimitMessage)
        }

        // Accepted, but carried out after the client has given up: no answer, a droplet later.
        var createdAt = now
        let late = rng.chance(faults.createLateProbability)
        if late {
            createdAt = now.addingTimeInterval(
                faults.createLateSeconds + Double.random(in: 0...1, using: &rng) * faults.createLateSpreadSeconds
            )
        }
        resources.makeTags(tags)  // "Tag names can either be existing or new tags."
        var created: [SimulatedDroplet] = []
        for name in names {
            let droplet = makeDroplet(
                name: name,
                region: regionSlug,
                size: size.slug,
                image: image.slug,
                tags: tags,
                ipv6: flags["ipv6"] ?? false,
                monitoring: flags["monitoring"] ?? false,
                backups: flags["backups"] ?? false,
                publicNetworking: flags["public_networking"] ?? true,
                hasUserData: hasUserData,
                createdAt: createdAt,
                active: false,
                injected: false,
                vpcUUID: vpc?.id,
                sshKeyIDs: sshKeyIDs,
                withDropletAgent: withDropletAgent
            )
            if let agentCredentials { planAgent(for: droplet.id, credentials: agentCredentials) }
            created.append(droplet)
            record(.created(droplet, userData: document["user_data"]?.stringValue, by: context.requestedBy))
        }
        dirty = true
        if late { return .drop }

        // Faults that happen after the droplets exist.
        if rng.chance(faults.createResponseLostProbability) { return .drop }
        if rng.chance(faults.createServerErrorProbability) {
            return .respond(serverError(context))
        }
        let actions = JSONValue.array(
            created.map { droplet in
                .object([
                    ("id", .int(droplet.actionID)), ("rel", "create"),
                    ("href", .string("http://\(context.host)/v2/actions/\(droplet.actionID)")),
                ])
            }
        )
        if multi {
            return .respond(
                json(
                    202,
                    [
                        "droplets": .array(created.map { render($0, now: now) }),
                        "links": .object([("actions", actions)]),
                    ],
                    context
                )
            )
        }
        return .respond(
            json(202, ["droplet": render(created[0], now: now), "links": .object([("actions", actions)])], context)
        )
    }

    /// DigitalOcean's words for a create past the account's droplet limit (422).
    static let dropletLimitMessage = "creating this/these droplet(s) will exceed your droplet limit"

    mutating func makeDroplet(
        name: String,
        region: String,
        size: String,
        image: String,
        tags: [String],
        ipv6: Bool,
        monitoring: Bool,
        backups: Bool,
        publicNetworking: Bool,
        hasUserData: Bool,
        createdAt: Date,
        active: Bool,
        injected: Bool,
        vpcUUID: String? = nil,
        sshKeyIDs: [Int64] = [],
        withDropletAgent: Bool? = nil
    ) -> SimulatedDroplet {
        let id = nextDropletID
        nextDropletID += 1 + Int64.random(in: 0..<3, using: &rng)
        let actionID = nextActionID
        nextActionID += 1
        let n = nextAddress
        nextAddress += 1
        // Documentation ranges only (RFC 5737, RFC 3849): 3 × 253 distinct public IPv4 addresses.
        let networks = ["192.0.2", "198.51.100", "203.0.113"]
        let publicIPv4 = "\(networks[Int((n / 253) % 3)]).\(2 + n % 253)"
        let privateIPv4 = "10.124.\((n / 250) % 16).\(2 + n % 250)"
        let publicIPv6 = "2001:db8:0:\(String(n % 65536, radix: 16))::2"
        var vanishesAt: Date?
        var boot = bootSeconds
        if bootSpreadSeconds > 0 { boot += Double.random(in: 0...1, using: &rng) * bootSpreadSeconds }
        var activeAt: Date? = active ? createdAt : createdAt.addingTimeInterval(boot)
        if !active, rng.chance(faults.vanishProbability) {
            // Placement failed after the 202: the droplet errors and is gone before it was active.
            vanishesAt = createdAt.addingTimeInterval(boot / 2)
            activeAt = nil
        }
        var listLag = faults.listLagSeconds
        if faults.listLagSpreadSeconds > 0 {
            listLag += Double.random(in: 0...1, using: &rng) * faults.listLagSpreadSeconds
        }
        // Drawn as before droplets had their region's VPC, so a seed makes the ids it always made.
        _ = rng.uuid()
        let droplet = SimulatedDroplet(
            id: id,
            name: name,
            region: region,
            size: size,
            image: image,
            tags: tags,
            ipv6: ipv6,
            monitoring: monitoring,
            backups: backups,
            publicNetworking: publicNetworking,
            hasUserData: hasUserData,
            vpcUUID: vpcUUID ?? resources.defaultVPC(region: region)?.id ?? "",
            sshKeyIDs: sshKeyIDs.isEmpty ? nil : sshKeyIDs,
            withDropletAgent: withDropletAgent,
            projectID: nil,
            injected: injected,
            actionID: actionID,
            createdAt: createdAt,
            activeAt: activeAt,
            listVisibleAt: injected ? createdAt : createdAt.addingTimeInterval(listLag),
            vanishesAt: vanishesAt,
            vanishedAt: nil,
            deleteRequestedAt: nil,
            deletedAt: nil,
            publicIPv4: publicNetworking ? publicIPv4 : nil,
            privateIPv4: privateIPv4,
            publicIPv6: publicNetworking && ipv6 ? publicIPv6 : nil
        )
        droplets[id] = droplet
        order.append(id)
        return droplet
    }

    mutating func inject(_ injection: SimulatorDropletInjection, now: Date) throws -> SimulatedDroplet {
        guard Self.isValidName(injection.name) else {
            throw SimulatorError("invalid droplet name \"\(injection.name)\"")
        }
        for tag in injection.tags where !Self.isValidTag(tag) { throw SimulatorError("invalid tag \"\(tag)\"") }
        guard Catalog.region(injection.region) != nil else {
            throw SimulatorError("unknown region \(injection.region)")
        }
        guard Catalog.size(injection.size) != nil else { throw SimulatorError("unknown size \(injection.size)") }
        guard Catalog.image(injection.image) != nil else { throw SimulatorError("unknown image \(injection.image)") }
        let created = now.addingTimeInterval(-max(0, injection.ageSeconds))
        resources.makeTags(injection.tags)
        let droplet = makeDroplet(
            name: injection.name,
            region: injection.region,
            size: injection.size,
            image: injection.image,
            tags: injection.tags,
            ipv6: injection.ipv6,
            monitoring: true,
            backups: false,
            publicNetworking: true,
            hasUserData: false,
            createdAt: created,
            active: injection.active,
            injected: true
        )
        return droplet
    }

    /// DigitalOcean's words for a name it refuses (for a create and a rename alike), or nil.
    static func nameProblem(_ name: String) -> String? {
        guard !isValidName(name) else { return nil }
        return name.utf8.count > 255 || name.isEmpty
            ? "Name must be between 1 and 255 characters."
            : "Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)"
    }

    static func isValidName(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard !scalars.isEmpty, scalars.count <= 255, let last = scalars.last, isAlphanumeric(last) else {
            return false
        }
        return scalars.allSatisfy { isAlphanumeric($0) || $0 == "." || $0 == "-" }
    }

    static func isValidTag(_ tag: String) -> Bool {
        let scalars = Array(tag.unicodeScalars)
        guard !scalars.isEmpty, scalars.count <= 255 else { return false }
        return scalars.allSatisfy { isAlphanumeric($0) || $0 == "_" || $0 == "-" || $0 == ":" }
    }

    static func isAlphanumeric(_ s: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(s) || ("A"..."Z").contains(s) || ("0"..."9").contains(s)
    }
}
