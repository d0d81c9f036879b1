import Foundation

/// The simulator's mutable state and the API's behaviour. Always used under the engine's lock.
struct State: Sendable {
    var tokens: Set<String>
    var bootSeconds: Double
    var deleteSeconds: Double
    var faults: SimulatorFaults
    var rateLimits: SimulatorRateLimits
    var requestLogLimit: Int
    var rng: SeededGenerator

    var droplets: [Int64: SimulatedDroplet] = [:]
    /// Ids in creation order (ids only grow, so this is also id order).
    var order: [Int64] = []
    /// Above 2^32 on purpose: clients must use 64-bit ids.
    var nextDropletID: Int64 = 5_000_000_001
    var nextActionID: Int64 = 2_100_000_001
    var nextAddress: Int64 = 0
    var windows: [String: TokenWindow] = [:]
    var log: [SimulatorRequestRecord] = []
    var counts: [RouteKey: Int] = [:]
    var sequence = 0
    var dirty = false
    /// Agents by droplet id: in memory only (never in the state file or the request log).
    var agents: [Int64: AgentRecord] = [:]
    var agentTiming: SimulatorAgentTiming

    init(configuration: SimulatorConfiguration) {
        tokens = configuration.tokens
        bootSeconds = configuration.bootTime.seconds
        deleteSeconds = configuration.deleteTime.seconds
        faults = configuration.faults
        rateLimits = configuration.rateLimits
        requestLogLimit = max(1, configuration.requestLogLimit)
        agentTiming = configuration.agentTiming
        var system = SystemRandomNumberGenerator()
        rng = SeededGenerator(seed: configuration.seed ?? system.next())
    }

    mutating func restore(_ saved: PersistedState) {
        for droplet in saved.droplets.sorted(by: { $0.id < $1.id }) {
            droplets[droplet.id] = droplet
            order.append(droplet.id)
        }
        nextDropletID = max(nextDropletID, saved.nextDropletID)
        nextActionID = max(nextActionID, saved.nextActionID)
        nextAddress = max(nextAddress, saved.nextAddress)
    }

    func persistable() -> PersistedState {
        PersistedState(
            droplets: order.compactMap { droplets[$0] },
            nextDropletID: nextDropletID,
            nextActionID: nextActionID,
            nextAddress: nextAddress
        )
    }

    // MARK: - Dispatch

    mutating func handle(_ request: SimulatedDigitalOcean.Request, now: Date) -> SimulatedDigitalOcean.Outcome {
        let (path, query) = Self.split(request.uri)
        if path == "/_sim" || path.hasPrefix("/_sim/") {
            return .respond(admin(request, path: path, query: query, now: now), delay: .zero)
        }
        if path == "/admin" || path.hasPrefix("/admin/") {  // The same endpoints under another name.
            return .respond(
                admin(request, path: "/_sim" + path.dropFirst("/admin".count), query: query, now: now),
                delay: .zero
            )
        }
        let requestID = rng.uuid()
        let route = Self.route(of: path)
        sequence += 1
        var record = SimulatorRequestRecord(
            sequence: sequence,
            time: now,
            method: request.method,
            path: request.uri,
            route: route,
            status: nil,
            requestID: requestID,
            body: request.method == "POST" ? Self.loggedBody(request.body) : nil,
            bodyBytes: request.method == "POST" ? request.body.count : nil
        )
        counts[RouteKey(method: request.method, route: route), default: 0] += 1

        var context = ResponseContext(requestID: requestID, host: request.header("host") ?? "127.0.0.1")
        let result = api(request, path: path, query: query, now: now, context: &context)
        let delay = Duration.milliseconds(Int64(faults.latencySeconds * 1000))
        let outcome: SimulatedDigitalOcean.Outcome
        switch result {
        case .respond(var response):
            response.headers.append(contentsOf: context.commonHeaders)
            record.status = response.status
            outcome = .respond(response, delay: delay)
        case .drop:
            outcome = .dropConnection(delay: delay)
        }
        log.append(record)
        if log.count > requestLogLimit { log.removeFirst(max(1, requestLogLimit / 10)) }
        return outcome
    }

    struct ResponseContext {
        var requestID: String
        var host: String
        var rateHeaders: [(name: String, value: String)] = []

        var commonHeaders: [(name: String, value: String)] {
            [("x-request-id", requestID)] + rateHeaders
        }
    }

    enum APIResult {
        case respond(SimulatedDigitalOcean.Response)
        case drop
    }

    mutating func api(
        _ request: SimulatedDigitalOcean.Request,
        path: String,
        query: [(String, String)],
        now: Date,
        context: inout ResponseContext
    ) -> APIResult {
        // 1. Authentication: no rate-limit accounting for unknown tokens.
        guard let token = Self.bearerToken(request.header("authorization")), tokens.contains(token) else {
            context.rateHeaders = rateHeaders(window: TokenWindow(), now: now)
            return .respond(error(401, "unauthorized", "Unable to authenticate you", context))
        }
        // 2. Rate limits, per token, sliding windows. Rejected requests are not counted.
        var window = windows[token] ?? TokenWindow()
        let nowSeconds = now.timeIntervalSince1970
        window.prune(now: nowSeconds, limits: rateLimits)
        if window.inHour >= rateLimits.perHour {
            context.rateHeaders = rateHeaders(window: window, now: now)
            windows[token] = window
            return .respond(error(429, "too_many_requests", "API rate limit exceeded.", context))
        }
        if window.inMinute >= rateLimits.perMinute {
            context.rateHeaders = rateHeaders(window: window, now: now)
            let oldest = window.oldestInMinute ?? nowSeconds
            let retryAfter = max(1, Int((oldest + rateLimits.minuteWindowSeconds - nowSeconds).rounded(.up)))
            windows[token] = window
            var response = error(429, "too_many_requests", "API rate limit exceeded.", context)
            response.headers.append(("retry-after", String(retryAfter)))
            return .respond(response)
        }
        window.times.append(nowSeconds)
        windows[token] = window
        context.rateHeaders = rateHeaders(window: window, now: now)

        // 3. Faults that happen before anything is done.
        if faults.failNextRequests > 0 {
            faults.failNextRequests -= 1
            return .respond(error(500, "server_error", "Unexpected server-side error", context))
        }
        if rng.chance(faults.serverErrorProbability) {
            return .respond(error(500, "server_error", "Unexpected server-side error", context))
        }

        // 4. Routes.
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        switch (request.method, parts.count) {
        case ("GET", 2) where parts == ["v2", "droplets"]:
            return .respond(list(query: query, now: now, context))
        case ("POST", 2) where parts == ["v2", "droplets"]:
            return create(body: request.body, now: now, context)
        case ("DELETE", 2) where parts == ["v2", "droplets"]:
            return .respond(deleteByTag(query: query, now: now, context))
        case ("GET", 3) where parts[0] == "v2" && parts[1] == "droplets":
            guard let id = Int64(parts[2]), let droplet = droplets[id], droplet.apiStatus(at: now) != nil else {
                return .respond(notFound(context))
            }
            return .respond(json(200, ["droplet": render(droplet, now: now)], context))
        case ("DELETE", 3) where parts[0] == "v2" && parts[1] == "droplets":
            guard let id = Int64(parts[2]), var droplet = droplets[id], droplet.apiStatus(at: now) != nil,
                droplet.deleteRequestedAt == nil
            else {
                return .respond(notFound(context))
            }
            droplet.deleteRequestedAt = now
            droplet.deletedAt = now.addingTimeInterval(deleteSeconds)
            droplets[id] = droplet
            dirty = true
            return .respond(noContent(context))
        default:
            return .respond(notFound(context))
        }
    }

    // MARK: - List

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
        var page = 1
        var perPage = 20
        if let text = value("page") {
            guard let number = Int(text), number >= 1 else {
                return error(400, "bad_request", "page must be a positive integer", context)
            }
            page = number
        }
        if let text = value("per_page") {
            guard let number = Int(text), number >= 1 else {
                return error(400, "bad_request", "per_page must be a positive integer", context)
            }
            perPage = min(number, 200)  // DigitalOcean's maximum; larger values are capped.
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
        let total = matching.count
        let lastPage = max(1, (total + perPage - 1) / perPage)
        let start = min(total, (page - 1) * perPage)
        let pageItems = matching[start..<min(total, start + perPage)]

        let base = query.filter { $0.0 != "page" }
        func link(_ number: Int) -> JSONValue {
            .string("http://\(context.host)/v2/droplets?" + Self.encodeQuery(base + [("page", String(number))]))
        }
        var pages: [(String, JSONValue)] = []
        if page > 1 {
            pages.append(("first", link(1)))
            pages.append(("prev", link(min(page - 1, lastPage))))
        }
        if page < lastPage {
            pages.append(("last", link(lastPage)))
            pages.append(("next", link(page + 1)))
        }
        let links: JSONValue = pages.isEmpty ? .object([]) : .object([("pages", .object(pages))])
        return json(
            200,
            [
                "droplets": .array(pageItems.map { render($0, now: now) }),
                "links": links,
                "meta": .object([("total", .int(Int64(total)))]),
            ],
            context
        )
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

    // MARK: - Create

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
            guard Self.isValidName(name) else {
                return invalid(
                    name.utf8.count > 255 || name.isEmpty
                        ? "Name must be between 1 and 255 characters."
                        : "Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)"
                )
            }
        }
        guard let sizeSlug = document["size"]?.stringValue, let size = Catalog.size(sizeSlug) else {
            return invalid("You specified an invalid size for Droplet creation.")
        }
        let imageKey: String? = document["image"]?.stringValue ?? document["image"]?.intValue.map { String($0) }
        guard let imageKey, let image = Catalog.image(imageKey) else {
            return invalid("You specified an invalid image for Droplet creation.")
        }
        let regionSlug: String
        switch document["region"] {
        case nil, .some(.null):
            // "If the region is omitted … the Droplet may deploy in any region."
            regionSlug = Catalog.regions[Int.random(in: 0..<Catalog.regions.count, using: &rng)].slug
        case .some(let value):
            guard let text = value.stringValue,
                let match = Catalog.region(text)
                    ?? Catalog.regions.first(where: { !text.isEmpty && $0.slug.hasPrefix(text) })
            else {
                return invalid("You specified an invalid region for Droplet creation.")
            }
            regionSlug = match.slug
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
                createdAt: now,
                active: false,
                injected: false
            )
            if let agentCredentials { planAgent(for: droplet.id, credentials: agentCredentials) }
            created.append(droplet)
        }
        dirty = true

        // Faults that happen after the droplets exist.
        if rng.chance(faults.createResponseLostProbability) { return .drop }
        if rng.chance(faults.createServerErrorProbability) {
            return .respond(error(500, "server_error", "Unexpected server-side error", context))
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
        injected: Bool
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
        var activeAt: Date? = active ? createdAt : createdAt.addingTimeInterval(bootSeconds)
        if !active, rng.chance(faults.vanishProbability) {
            vanishesAt = createdAt.addingTimeInterval(bootSeconds / 2)
            activeAt = nil
        }
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
            vpcUUID: rng.uuid(),
            injected: injected,
            actionID: actionID,
            createdAt: createdAt,
            activeAt: activeAt,
            listVisibleAt: injected ? createdAt : createdAt.addingTimeInterval(faults.listLagSeconds),
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

    // MARK: - Rendering (droplet.yml)

    func render(_ d: SimulatedDroplet, now: Date) -> JSONValue {
        let size = Catalog.size(d.size) ?? Catalog.sizes[0]
        let image = Catalog.image(d.image) ?? Catalog.images[0]
        let region = Catalog.region(d.region) ?? Catalog.regions[0]
        let status = d.apiStatus(at: now) ?? "active"
        let diskInfo: JSONValue = [
            .object([("type", "local"), ("size", .object([("amount", .int(size.disk)), ("unit", "gib")]))])
        ]
        var features: [String] = ["private_networking", "droplet_agent"]
        if d.backups { features.append("backups") }
        if d.ipv6 { features.append("ipv6") }
        if d.monitoring { features.append("monitoring") }
        var v4: [JSONValue] = []
        var v6: [JSONValue] = []
        if status == "active" {
            if let ip = d.publicIPv4 {
                let gateway = ip.split(separator: ".").dropLast().joined(separator: ".") + ".1"
                v4.append(
                    .object([
                        ("ip_address", .string(ip)), ("netmask", "255.255.255.0"), ("gateway", .string(gateway)),
                        ("type", "public"),
                    ])
                )
            }
            if let ip = d.privateIPv4 {
                // Private interfaces have no gateway.
                v4.append(.object([("ip_address", .string(ip)), ("netmask", "255.255.240.0"), ("type", "private")]))
            }
            if let ip = d.publicIPv6 {
                let gateway = String(ip.dropLast()) + "1"
                v6.append(
                    .object([
                        ("ip_address", .string(ip)), ("netmask", 64), ("gateway", .string(gateway)), ("type", "public"),
                    ])
                )
            }
        }
        let nextBackupWindow: JSONValue =
            d.backups
            ? .object([
                ("start", .string(Self.timestamp(d.createdAt.addingTimeInterval(86_400)))),
                ("end", .string(Self.timestamp(d.createdAt.addingTimeInterval(90_000)))),
            ])
            : .null
        return .object([
            ("id", .int(d.id)),
            ("name", .string(d.name)),
            ("memory", .int(size.memory)),
            ("vcpus", .int(size.vcpus)),
            ("disk", .int(size.disk)),
            ("disk_info", diskInfo),
            ("locked", .bool(false)),
            ("status", .string(status)),
            ("kernel", .null),
            ("created_at", .string(Self.timestamp(d.createdAt))),
            ("features", .strings(features)),
            ("backup_ids", []),
            ("next_backup_window", nextBackupWindow),
            ("snapshot_ids", []),
            (
                "image",
                .object([
                    ("id", .int(image.id)), ("name", .string(image.name)),
                    ("distribution", .string(image.distribution)),
                    ("slug", .string(image.slug)), ("public", true), ("regions", .strings(Catalog.regions.map(\.slug))),
                    ("created_at", .string(image.createdAt)), ("type", "base"), ("min_disk_size", .int(image.minDisk)),
                    ("size_gigabytes", .double(image.sizeGigabytes)),
                    ("description", .string("\(image.distribution) \(image.name)")),
                    ("tags", []), ("status", "available"), ("error_message", ""),
                ])
            ),
            ("volume_ids", []),
            (
                "size",
                .object([
                    ("slug", .string(size.slug)), ("memory", .int(size.memory)), ("vcpus", .int(size.vcpus)),
                    ("disk", .int(size.disk)), ("transfer", .double(size.transfer)),
                    ("price_monthly", .double(size.priceMonthly)),
                    ("price_hourly", .double((size.priceMonthly / 672 * 100_000).rounded() / 100_000)),
                    ("regions", .strings(Catalog.regions.map(\.slug))), ("available", true), ("description", "Basic"),
                    ("disk_info", diskInfo),
                ])
            ),
            ("size_slug", .string(size.slug)),
            ("networks", .object([("v4", .array(v4)), ("v6", .array(v6))])),
            (
                "region",
                .object([
                    ("name", .string(region.name)), ("slug", .string(region.slug)),
                    ("features", .strings(Catalog.regionFeatures)),
                    ("available", true), ("sizes", .strings(Catalog.sizes.map(\.slug))),
                ])
            ),
            ("tags", .strings(d.tags)),
            ("vpc_uuid", .string(d.vpcUUID)),
        ])
    }

    // MARK: - Responses

    func rateHeaders(window: TokenWindow, now: Date) -> [(name: String, value: String)] {
        let reset =
            window.oldestInHour.map { Int64(($0 + rateLimits.hourWindowSeconds).rounded(.up)) }
            ?? Int64(now.timeIntervalSince1970)
        return [
            ("ratelimit-limit", String(rateLimits.perHour)),
            ("ratelimit-remaining", String(max(0, rateLimits.perHour - window.inHour))),
            ("ratelimit-reset", String(reset)),
        ]
    }

    func json(
        _ status: Int,
        _ object: KeyValuePairs<String, JSONValue>,
        _ context: ResponseContext
    ) -> SimulatedDigitalOcean.Response {
        SimulatedDigitalOcean.Response(
            status: status,
            headers: [("content-type", "application/json; charset=utf-8")],
            body: JSONValue.object(object.map { ($0.key, $0.value) }).serialized()
        )
    }

    func error(
        _ status: Int,
        _ id: String,
        _ message: String,
        _ context: ResponseContext
    ) -> SimulatedDigitalOcean.Response {
        json(
            status,
            ["id": .string(id), "message": .string(message), "request_id": .string(context.requestID)],
            context
        )
    }

    func notFound(_ context: ResponseContext) -> SimulatedDigitalOcean.Response {
        error(404, "not_found", "The resource you were accessing could not be found.", context)
    }

    func noContent(_ context: ResponseContext) -> SimulatedDigitalOcean.Response {
        // 204 with a content-type (shared/responses/no_content_with_content_type.yml).
        SimulatedDigitalOcean.Response(
            status: 204,
            headers: [("content-type", "application/json; charset=utf-8")],
            body: []
        )
    }

    // MARK: - Helpers

    /// A POST body as the request log keeps it: JSON with the value of `user_data` replaced by a
    /// note of its size, or nil when the body is not JSON (it might be anything; only its size is
    /// kept). Never the text of `user_data`.
    static func loggedBody(_ body: [UInt8]) -> String? {
        guard !body.isEmpty, let document = try? JSONValue.parse(body) else { return nil }
        var logged = document
        if case .object(let pairs) = document {
            logged = .object(
                pairs.map { key, value in
                    guard key == "user_data", !value.isNull else { return (key, value) }
                    let size = value.stringValue.map { $0.utf8.count } ?? value.serialized().count
                    return (key, .string("<present, \(size) bytes>"))
                }
            )
        }
        return String(decoding: logged.serialized().prefix(65 * 1024), as: UTF8.self)
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
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

    static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    static func split(_ uri: String) -> (String, [(String, String)]) {
        let pieces = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(pieces[0])
        guard pieces.count > 1 else { return (path, []) }
        let query = pieces[1].split(separator: "&").map { item -> (String, String) in
            let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (s: Substring) in
                (String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s))
            }
            return (decode(kv[0]), kv.count > 1 ? decode(kv[1]) : "")
        }
        return (path, query)
    }

    static func encodeQuery(_ items: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~:")
        return items.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(
            separator: "&"
        )
    }

    static func route(of path: String) -> String {
        let parts = path.split(separator: "/").map(String.init)
        if parts.count == 3, parts[0] == "v2", parts[1] == "droplets", Int64(parts[2]) != nil {
            return "/v2/droplets/{droplet_id}"
        }
        if parts.count == 3, parts[0] == "v2", parts[1] == "actions" { return "/v2/actions/{action_id}" }
        return path
    }
}

public struct SimulatorError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
