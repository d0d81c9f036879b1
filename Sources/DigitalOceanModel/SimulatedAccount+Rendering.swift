import Foundation

/// Droplets as `droplet.yml` describes them, actions as `action.yml` does, and the shapes of every answer.
extension SimulatedAccount {
    func render(_ d: SimulatedDroplet, now: Date) -> JSONValue {
        let size = Catalog.size(d.size) ?? Catalog.sizes[0]
        let image = Catalog.image(d.image) ?? Catalog.images[0]
        let region = Catalog.region(d.region) ?? Catalog.regions[0]
        let status = d.apiStatus(at: now) ?? "active"
        func diskInfo(_ gigabytes: Int64) -> JSONValue {
            [.object([("type", "local"), ("size", .object([("amount", .int(gigabytes)), ("unit", "gib")]))])]
        }
        let disk = diskGB(of: d)
        // Every droplet is in a VPC; the console agent is there unless the create said no.
        var features: [String] = ["private_networking"]
        if d.withDropletAgent != false { features.append("droplet_agent") }
        if d.backups { features.append("backups") }
        if d.ipv6 { features.append("ipv6") }
        if d.monitoring { features.append("monitoring") }
        var v4: [JSONValue] = []
        var v6: [JSONValue] = []
        // Addresses stay while it is off; a booting droplet has none yet.
        if status == "active" || status == "off" {
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
            ("disk", .int(disk)),
            ("disk_info", diskInfo(disk)),
            ("locked", .bool(isLocked(d, now: now))),
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
                    ("disk_info", diskInfo(size.disk)),
                ])
            ),
            ("size_slug", .string(size.slug)),
            ("networks", .object([("v4", .array(v4)), ("v6", .array(v6))])),
            ("region", render(region)),
            ("tags", .strings(d.tags)),
            ("vpc_uuid", .string(d.vpcUUID)),
        ])
    }

    /// `regions/models/region.yml`.
    func render(_ region: Catalog.RegionInfo) -> JSONValue {
        .object([
            ("name", .string(region.name)), ("slug", .string(region.slug)),
            ("features", .strings(Catalog.regionFeatures)),
            ("available", true), ("sizes", .strings(Catalog.sizes.map(\.slug))),
        ])
    }

    /// `actions/models/action.yml`: `completed_at` is null while in progress.
    func render(_ action: SimulatedAction, now: Date) -> JSONValue {
        let region = Catalog.region(action.region) ?? Catalog.regions[0]
        let inProgress = now < action.endsAt
        return .object([
            ("id", .int(action.id)),
            ("status", .string(action.status(at: now))),
            ("type", .string(action.type)),
            ("started_at", .string(Self.timestamp(action.startedAt))),
            ("completed_at", inProgress ? .null : .string(Self.timestamp(action.endsAt))),
            ("resource_id", .int(action.dropletID)),
            ("resource_type", "droplet"),
            ("region", render(region)),
            ("region_slug", .string(region.slug)),
        ])
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

    func serverError(_ context: ResponseContext) -> SimulatedDigitalOcean.Response {
        error(500, "server_error", "Unexpected server-side error", context)
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

    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }
}
