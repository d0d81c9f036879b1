import CitrusTestKit
import DigitalOceanModel
import Foundation
import Postgres
import Testing

/// The droplet specification (issue 25) with the real daemon, Postgres and the simulator: what a
/// create carries, checked where DigitalOcean would check it, and what changes on a live droplet.
@Suite("Droplet specification, end to end")
struct DropletSpecificationEndToEndTests {
    static let key = SimulatedSSHKey.standard

    @Test(
        "droplets are made with the keys, VPC, tags and options the configuration and each row ask; the body as sent holds to DigitalOcean's schema; a bad key fails its row alone"
    )
    func createCarriesSpecification() async throws {
        try await World.with { world in
            let vpc = try world.simulator.addVPC(region: "nyc3")
            let project = try world.simulator.addProject(name: "platform")
            let daemon = try world.daemon(
                World.quick + [
                    "--ssh-keys", Self.key.fingerprint, "--vpcs", "nyc3=\(vpc.id)", "--tags", "env:prod",
                    "--backups", "on", "--droplet-agent", "off", "--project", project.id,
                ]
            )
            defer { daemon.signal(SIGKILL) }
            let plain = try await world.insert("plain", region: "nyc3")
            let custom = try await world.db.query(
                """
                INSERT INTO servers (name, region, ssh_keys, tags, ipv6, monitoring, backups)
                VALUES ('custom', 'sfo3', ARRAY[\(String(Self.key.id))], ARRAY['db', 'env:prod'], false, false, false)
                RETURNING id
                """
            ).single().decode(UUID.self, "id")
            let badKey = try await world.db.query(
                "INSERT INTO servers (name, ssh_keys) VALUES ('bad-key', ARRAY['SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8']) RETURNING id"
            ).single().decode(UUID.self, "id")

            let settled = try await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                let rows = try await world.rows()
                return rows.first { $0.id == badKey }?.status == "failed"
                    && rows.filter { $0.id != badKey }.allSatisfy { $0.status == "active" }
            }
            let rows = try await world.rows()
            #expect(settled, "\(rows)")
            let failed = try await world.row(badKey)
            #expect(failed?.lastError?.contains("ssh") == true, "\(String(describing: failed))")
            #expect(world.everCreated(for: badKey).isEmpty, "nothing was sent for the bad row")

            let made = try #require(world.droplets(for: plain).first)
            #expect(made.sshKeyIDs == [Self.key.id])
            #expect(made.vpcUUID == vpc.id)
            #expect(made.tags.contains("env:prod") && made.tags.contains("citrus-host"))
            #expect(made.ipv6 && made.monitoring && made.backups)
            #expect(made.withDropletAgent == false)
            let other = try #require(world.droplets(for: custom).first)
            #expect(other.sshKeyIDs == [Self.key.id])
            #expect(other.vpcUUID != vpc.id, "sfo3 has no VPC configured: its default one")
            #expect(
                Set(other.tags) == ["citrus-host", "citrus-server:\(custom.uuidString.lowercased())", "db", "env:prod"]
            )
            #expect(!other.ipv6 && !other.monitoring && !other.backups)
            let assigned = await eventually(timeout: .seconds(30), every: .milliseconds(250)) {
                world.simulator.projectID(ofDroplet: made.id) == project.id
                    && world.simulator.projectID(ofDroplet: other.id) == project.id
            }
            #expect(assigned, "both droplets are assigned to the configured project")

            // The create body as the simulator received it, against DigitalOcean's own schema.
            let body = try #require(
                world.requests(method: "POST", route: "/v2/droplets").compactMap(\.body).first {
                    $0.contains("\"plain\"")
                }
            )
            print("create request body as sent: \(body)")
            let directory = world.directory.appendingPathComponent("schemas")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let check = try OpenAPISchemas.validate([("create-request", Data(body.utf8))], in: directory)
            #expect(check.status == 0, "\(check.output)")
            let decoded = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            #expect(decoded?["ssh_keys"] as? [String] == [Self.key.fingerprint])
            #expect(decoded?["vpc_uuid"] as? String == vpc.id)
            #expect(decoded?["with_droplet_agent"] as? Bool == false)
            #expect(daemon.isRunning)
        }
    }

    @Test(
        "on a live row, tags are added and removed and backups switched in place on the same droplet; a changed key is drift, never acted on"
    )
    func liveChangesInPlace() async throws {
        try await World.with { world in
            let daemon = try world.daemon(World.quick + ["--tags", "env:prod"])
            defer { daemon.signal(SIGKILL) }
            let id = try await world.insert("web-1")
            try await world.converge(timeout: .seconds(60), daemon: daemon)
            let droplet = try #require(world.droplets(for: id).first)
            #expect(droplet.tags.contains("env:prod") && !droplet.backups)

            try await world.db.query("UPDATE servers SET tags = ARRAY['web', 'db'], backups = true WHERE id = \(id)")
            let changed = await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                guard let now = world.droplets(for: id).first else { return false }
                let own = Set(["citrus-host", "citrus-server:\(id.uuidString.lowercased())"])
                return Set(now.tags).subtracting(own) == ["web", "db"] && now.backups
            }
            #expect(changed, "\(world.droplets(for: id))")
            #expect(world.droplets(for: id).map(\.id) == [droplet.id], "changed in place, not made again")
            #expect(world.requests(method: "POST", route: "/v2/tags/{tag_id}/resources").count >= 2)
            #expect(world.requests(method: "DELETE", route: "/v2/tags/{tag_id}/resources").count >= 1)

            try await world.db.query("UPDATE servers SET ssh_keys = ARRAY[\(String(Self.key.id))] WHERE id = \(id)")
            let drift = try await eventually(timeout: .seconds(30), every: .milliseconds(250)) {
                try await world.db.query("SELECT drift FROM servers WHERE id = \(id)").single()
                    .decode(String?.self, "drift")?.contains("ssh_keys") == true
            }
            #expect(drift)
            #expect(world.droplets(for: id).map(\.id) == [droplet.id])
            #expect(world.everCreated(for: id).count == 1)
            #expect(daemon.isRunning)
        }
    }

    @Test("plan shows a create's keys, VPC and options, each tag and backups change, and the drift it would leave")
    func planShowsEach() async throws {
        try await World.with { world in
            let flags = ["--ssh-keys", String(Self.key.id), "--backups", "off"]
            let daemon = try world.daemon(World.quick + flags)
            let live = try await world.insert("web-1")
            let backedUp = try await world.insert("web-3")
            try await world.converge(timeout: .seconds(60), daemon: daemon)
            daemon.signal(SIGKILL)
            _ = await daemon.waitForExit(timeout: .seconds(10))
            let droplet = try #require(world.droplets(for: live).first)
            let other = try #require(world.droplets(for: backedUp).first)

            // One change at a time per droplet: the tag first on web-1; backups on web-3.
            try await world.db.query(
                "UPDATE servers SET tags = ARRAY['web'], ssh_keys = ARRAY[]::text[] WHERE id = \(live)"
            )
            try await world.db.query("UPDATE servers SET backups = true WHERE id = \(backedUp)")
            try await world.insert("web-2", region: "nyc3")
            let plan = try await world.command(["plan"] + flags)
            #expect(plan.status == 0, "\(plan.output)")
            #expect(plan.output.contains("tag      droplet \(droplet.id) for web-1"), "\(plan.output)")
            #expect(plan.output.contains("add web"), "\(plan.output)")
            #expect(plan.output.contains("backups  droplet \(other.id) for web-3"), "\(plan.output)")
            #expect(plan.output.contains("ssh_keys [\(Self.key.id)]") && plan.output.contains("now ask ssh_keys []"))
            let create = try #require(plan.output.split(separator: "\n").first { $0.hasPrefix("create") })
            #expect(
                create.contains("web-2") && create.contains("ssh_keys [\(Self.key.id)]") && create.contains("ipv6 on")
            )

            let json = try await world.command(["plan", "--output", "json"] + flags)
            let document = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
            let actions = document?["actions"] as? [[String: Any]] ?? []
            let creates = actions.filter { $0["action"] as? String == "create" }
            #expect(creates.first?["ssh_keys"] as? [String] == [String(Self.key.id)], "\(json.output)")
            #expect(creates.first?["backups"] as? Bool == false)
            #expect(actions.contains { $0["action"] as? String == "tag" && $0["tags"] as? [String] == ["web"] })
        }
    }
}
