import CitrusTestKit
import DigitalOceanSimulator
import Foundation
import Logging
import Postgres
import Testing

@testable import EngineHubSimulator

/// Issue 11 end to end: the real daemon binary, a real Postgres, the simulator playing cloud-init
/// and the agent, and the Engine Hub stand-in, all on loopback. Serialized like the other
/// end-to-end suites.
@Suite("Agent bootstrap and health, end to end", .serialized)
struct AgentBootstrapTests {
    static let quiet = Logger(label: "agent-bootstrap", factory: { _ in SwiftLogNoOpLogHandler() })
    /// Short everything: boot 0.3 s and agents 0.2 s after it (the harness), bootstrap timeout 6 s,
    /// stale after 3 s (the simulator's agents beat every second).
    static func flags(_ hub: EngineHub, timeout: String = "6s", staleAfter: String = "3s") -> [String] {
        [
            "--engine-url", hub.url, "--bootstrap-timeout", timeout, "--agent-stale-after", staleAfter,
            "--fast-interval", "300ms", "--resync-interval", "1s", "--settle-period", "3s",
        ]
    }

    /// A world with a hub on its database.
    static func with(
        simulator configuration: SimulatorConfiguration = SimulatorHarness.testConfiguration(),
        _ body: (World, EngineHub) async throws -> Void
    ) async throws {
        try await World.with(simulator: configuration) { world in
            try await withEngineHub(configuration: .init(databaseURL: world.databaseURL), logger: quiet) { hub in
                try await body(world, hub)
            }
        }
    }

    /// The statuses a row went through, in order, as its audit trail tells them.
    static func statusTrail(_ world: World, _ id: UUID) async throws -> [String] {
        try await world.db.query(
            "SELECT to_status FROM server_events WHERE server_id = \(id) AND from_status IS DISTINCT FROM to_status AND to_status IS NOT NULL ORDER BY id"
        ).map { try $0.decode(String.self, "to_status") }.reduce(into: []) { trail, status in
            // A create's acceptance and its write both say provisioning.
            if trail.last != status { trail.append(status) }
        }
    }

    static func status(_ world: World, _ id: UUID) async throws -> String? { try await world.row(id)?.status }

    static func waitFor(
        _ status: String,
        _ world: World,
        _ id: UUID,
        timeout: Duration = .seconds(30)
    ) async throws -> Bool {
        try await eventually(timeout: timeout, every: .milliseconds(100)) { try await Self.status(world, id) == status }
    }

    static func agentRow(
        _ world: World,
        _ id: UUID
    ) async throws -> (agent: UUID?, keySHA256: String?, connectedAt: Date?) {
        let row = try await world.db.query(
            "SELECT s.agent_id, a.key_sha256, a.connected_at FROM servers s LEFT JOIN agents a ON a.id = s.agent_id WHERE s.id = \(id)"
        ).single()
        return (
            try row.decode(UUID?.self, "agent_id"), try row.decode(String?.self, "key_sha256"),
            try row.decode(Date?.self, "connected_at")
        )
    }

    @Test(
        "happy path: creating → provisioning → initializing → active through the agent; status shows when it was seen"
    )
    func happyPath() async throws {
        var configuration = SimulatorHarness.testConfiguration()
        configuration.agentBootDelay = .milliseconds(1500)  // well after a pass has seen the droplet active
        try await Self.with(simulator: configuration) { world, hub in
            let daemon = try world.daemon(Self.flags(hub))
            defer { daemon.signal(SIGKILL) }
            let id = try await world.insert("agent-1")
            // Read while the droplet boots: the key is cleared once the agent has connected.
            var intentKeySHA256: String?
            #expect(
                try await eventually(timeout: .seconds(20), every: .milliseconds(50)) {
                    intentKeySHA256 = try await Self.agentRow(world, id).keySHA256
                    return intentKeySHA256 != nil
                }
            )
            let active = try await Self.waitFor("active", world, id)
            let row = try await world.row(id)
            #expect(active, "never active: \(String(describing: row))\n\(daemon.output.suffix(3000))")
            #expect(try await Self.statusTrail(world, id) == ["provisioning", "initializing", "active"])
            let kinds = try await world.events().filter { $0.serverID == id }.map(\.kind)
            #expect(kinds.contains("agent_awaited") && kinds.contains("agent_connected"), "\(kinds)")

            let (agent, keySHA256, connectedAt) = try await Self.agentRow(world, id)
            let agentID = try #require(agent)
            #expect(connectedAt != nil)
            // The droplet's user_data carried this agent and a key whose SHA-256 is what is stored.
            let dropletID = try #require(try await world.row(id)?.dropletID)
            let credentials = try #require(world.simulator.agentCredentials(dropletID: dropletID))
            #expect(credentials.agentID == agentID.uuidString.lowercased())
            #expect(credentials.engineURL == hub.url)
            #expect(credentials.key.count == 64 && credentials.key.allSatisfy(\.isHexDigit))
            let hashed = try await world.db.query(
                "SELECT encode(sha256(convert_to(\(credentials.key), 'UTF8')), 'hex') AS h"
            ).single()
            #expect(try hashed.decode(String.self, "h") == intentKeySHA256)
            #expect(keySHA256 == nil, "the bootstrap key is single-use: cleared once the agent connected")
            #expect(hub.stats().refused == 0)

            let status = try await world.command(["status"])
            #expect(status.output.contains("seen "), "\(status.output)")
            await daemon.stop()
            #expect(daemon.exitStatus == 0)
        }
    }

    @Test(
        "a wrong key is refused by the hub: the row stays initializing, then fails after the timeout; the droplet is left"
    )
    func wrongKey() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 111)
        configuration.faults.agentWrongKeyProbability = 1
        try await Self.with(simulator: configuration) { world, hub in
            let daemon = try world.daemon(Self.flags(hub))
            defer { daemon.signal(SIGKILL) }
            let id = try await world.insert("wrong-key")
            #expect(try await Self.waitFor("initializing", world, id))
            #expect(
                await eventually(timeout: .seconds(10)) { hub.stats().refused >= 2 },
                "the hub refused nothing: \(hub.stats())"
            )
            #expect(try await Self.status(world, id) == "initializing")
            #expect(try await Self.waitFor("failed", world, id, timeout: .seconds(20)))
            let row = try #require(try await world.row(id))
            #expect(row.lastError?.contains("did not connect") == true, "\(row)")
            #expect(try await Self.agentRow(world, id).connectedAt == nil)
            #expect(world.droplets(for: id).count == 1, "the droplet must be left for the operator")
            #expect(try await world.events().contains { $0.serverID == id && $0.kind == "agent_timed_out" })
            #expect(try await !Self.statusTrail(world, id).contains("active"))
        }
    }

    @Test("an agent that never connects fails its row after the timeout; the hub never saw it")
    func neverConnects() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 112)
        configuration.faults.agentNeverConnectProbability = 1
        try await Self.with(simulator: configuration) { world, hub in
            let daemon = try world.daemon(Self.flags(hub, timeout: "4s"))
            defer { daemon.signal(SIGKILL) }
            let id = try await world.insert("never")
            #expect(try await Self.waitFor("initializing", world, id))
            let waitingSince = Date()
            #expect(try await Self.waitFor("failed", world, id, timeout: .seconds(20)))
            #expect(Date().timeIntervalSince(waitingSince) > 3, "failed before the bootstrap timeout")
            #expect(hub.stats().totalConnections == 0)
            #expect(try await Self.statusTrail(world, id) == ["provisioning", "initializing", "failed"])
        }
    }

    @Test(
        "a heartbeat that stops makes the row unreachable; when it resumes, active again; the same for a hub that drops the agent"
    )
    func heartbeatStopsAndResumes() async throws {
        try await Self.with { world, hub in
            let daemon = try world.daemon(Self.flags(hub))
            defer { daemon.signal(SIGKILL) }
            let id = try await world.insert("beating")
            #expect(try await Self.waitFor("active", world, id))
            let dropletID = try #require(try await world.row(id)?.dropletID)

            #expect(world.simulator.controlAgent(dropletID: dropletID, heartbeats: false))
            #expect(try await Self.waitFor("unreachable", world, id, timeout: .seconds(15)))
            let down = try #require(try await world.row(id))
            #expect(down.lastError?.contains("last seen") == true, "\(down)")
            #expect(world.simulator.controlAgent(dropletID: dropletID, heartbeats: true))
            #expect(try await Self.waitFor("active", world, id, timeout: .seconds(15)))
            #expect(try await world.row(id)?.lastError == nil)

            let agent = try #require(try await Self.agentRow(world, id).agent)
            #expect(hub.drop(agent: agent, for: .seconds(6)) >= 1)
            #expect(try await Self.waitFor("unreachable", world, id, timeout: .seconds(15)))
            #expect(try await Self.waitFor("active", world, id, timeout: .seconds(20)))

            let kinds = try await world.events().filter { $0.serverID == id }.map(\.kind)
            #expect(kinds.filter { $0 == "agent_unreachable" }.count == 2, "\(kinds)")
            #expect(kinds.filter { $0 == "agent_reachable" }.count == 2, "\(kinds)")
            #expect(world.droplets(for: id).count == 1)
        }
    }

    @Test(
        "the bootstrap key is single-use: cleared in the write that makes the row active; the agent comes back with the hub's credential"
    )
    func bootstrapKeyIsSingleUse() async throws {
        try await Self.with { world, hub in
            let daemon = try world.daemon(Self.flags(hub))
            defer { daemon.signal(SIGKILL) }
            let id = try await world.insert("single-use")
            #expect(try await Self.waitFor("active", world, id), "\(daemon.output.suffix(3000))")
            let (agent, keySHA256, connectedAt) = try await Self.agentRow(world, id)
            let agentID = try #require(agent)
            #expect(connectedAt != nil)
            #expect(keySHA256 == nil, "the key still lets anyone who read it in")
            let credential = try await world.db.query(
                "SELECT hub_credential_sha256 AS c FROM agents WHERE id = \(agentID)"
            ).single().decode(String?.self, "c")
            #expect(credential?.count == 64, "the hub gave the agent no credential of its own")
            let connected = try await world.events().filter { $0.serverID == id && $0.kind == "agent_connected" }
            #expect(connected.count == 1)
            #expect(connected.first?.message.contains("bootstrap key is cleared") == true, "\(connected)")
            // The key the droplet's user_data carries, presented again, is refused by the hub's check.
            let dropletID = try #require(try await world.row(id)?.dropletID)
            let key = try #require(world.simulator.agentCredentials(dropletID: dropletID)).key
            let directory = AgentDirectory(
                connectionString: world.databaseURL,
                connectTimeout: .seconds(5),
                logger: Self.quiet
            )
            #expect(
                await directory.authenticate(agentID: agentID, key: PresentedKey(key)) == .refused(.bootstrapKeyUsed)
            )
            await directory.close()

            // The hub drops the agent: it reconnects with the hub's credential, not the used key.
            let welcomed = hub.stats().welcomed
            #expect(hub.drop(agent: agentID) >= 1)
            #expect(
                await eventually(timeout: .seconds(10)) { hub.stats().welcomed > welcomed },
                "not welcomed again: \(hub.stats())"
            )
            #expect(hub.stats().refused == 0, "\(hub.stats())")
            try await Task.sleep(for: .seconds(4))  // past --agent-stale-after
            #expect(try await Self.status(world, id) == "active")
            #expect(try await Self.agentRow(world, id).connectedAt == connectedAt, "connected_at keeps its first value")
            let trail = try await Self.statusTrail(world, id)
            #expect(trail == ["provisioning", "initializing", "active"], "\(trail)")
            await daemon.stop()
        }
    }

    @Test("a create retried after an unknown outcome carries a new key: the first no longer works, the second does")
    func retriedCreateGetsNewKey() async throws {
        var configuration = SimulatorHarness.testConfiguration(seed: 113)
        // The first create is performed, its answer lost, and the droplet vanishes (half-way
        // through its boot) before any list shows it (list lag): after the settle period the
        // daemon finds no droplet with the row's identity and creates again.
        configuration.faults.createResponseLostProbability = 1
        configuration.faults.vanishProbability = 1
        configuration.faults.listLagSeconds = 4
        configuration.bootTime = .seconds(4)
        try await Self.with(simulator: configuration) { world, hub in
            let daemon = try world.daemon(Self.flags(hub))
            defer { daemon.signal(SIGKILL) }
            let id = try await world.insert("retried")
            #expect(await eventually(timeout: .seconds(20)) { world.everCreated(for: id).count == 1 })
            let first = try #require(world.everCreated(for: id).first)
            world.simulator.updateFaults {
                $0.createResponseLostProbability = 0
                $0.vanishProbability = 0
            }
            let firstKey = try #require(world.simulator.agentCredentials(dropletID: first.id)).key
            let firstAgent = try #require(world.simulator.agentCredentials(dropletID: first.id)).agentID

            // The first create's settle period ends 3 s after the last instant it could have reached
            // DigitalOcean: its intent + the 5 s send window + the 30 s request deadline. The key
            // is read while the second droplet boots (4 s): once its agent connects, it is cleared.
            #expect(
                await eventually(timeout: .seconds(70)) { world.everCreated(for: id).count >= 2 },
                "\(daemon.output.suffix(3000))"
            )
            let stored = try #require(try await Self.agentRow(world, id).keySHA256)
            #expect(try await Self.waitFor("active", world, id, timeout: .seconds(30)), "\(daemon.output.suffix(3000))")
            let created = world.everCreated(for: id)
            #expect(created.count == 2, "creates: \(created.map(\.id))")
            let second = try #require(created.last)
            let secondCredentials = try #require(world.simulator.agentCredentials(dropletID: second.id))
            #expect(secondCredentials.agentID == firstAgent, "the row's agent is re-keyed, not replaced")
            #expect(secondCredentials.key != firstKey)

            let hashes = try await world.db.query(
                """
                SELECT encode(sha256(convert_to(\(firstKey), 'UTF8')), 'hex') AS first,
                       encode(sha256(convert_to(\(secondCredentials.key), 'UTF8')), 'hex') AS second
                """
            ).single()
            #expect(try hashes.decode(String.self, "first") != stored, "the first key still authenticates")
            #expect(try hashes.decode(String.self, "second") == stored)
            #expect(hub.stats().welcomed >= 1 && hub.stats().refused == 0, "\(hub.stats())")
        }
    }

    @Test("bootstrap off: no user_data, no agent, provisioning → active as before")
    func bootstrapOff() async throws {
        try await World.with { world in
            let daemon = try world.daemon(["--fast-interval", "300ms", "--resync-interval", "1s"])
            defer { daemon.signal(SIGKILL) }
            let id = try await world.insert("plain")
            #expect(try await Self.waitFor("active", world, id))
            #expect(try await Self.statusTrail(world, id) == ["provisioning", "active"])
            #expect(try await Self.agentRow(world, id).agent == nil)
            let creates = world.requests(method: "POST", route: "/v2/droplets")
            #expect(creates.count == 1)
            #expect(creates.allSatisfy { !($0.body ?? "").contains("user_data") }, "\(creates.map { $0.body ?? "" })")
            #expect(world.simulator.agents().isEmpty)
        }
    }

    @Test(
        "configuration errors exit 78 with one line: a template over 64 KiB, one without {AGENT_KEY}, one others may write or own, ws:// to another host"
    )
    func configurationErrors() async throws {
        try await World.with { world in
            let big = world.directory.appendingPathComponent("big.tmpl")
            try ("#!/bin/bash\n# {AGENT_KEY}\n" + String(repeating: "x", count: 64 * 1024)).write(
                to: big,
                atomically: true,
                encoding: .utf8
            )
            let keyless = world.directory.appendingPathComponent("keyless.tmpl")
            try "#!/bin/bash\necho {AGENT_ID}\n".write(to: keyless, atomically: true, encoding: .utf8)
            // A good template, but others may change what runs as root on every new server.
            let writable = world.directory.appendingPathComponent("writable.tmpl")
            try "#!/bin/bash\n# {AGENT_ID} {AGENT_KEY} {ENGINE_WS_URL}\n".write(
                to: writable,
                atomically: true,
                encoding: .utf8
            )
            try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: writable.path)
            var cases: [([String], String)] = [
                (
                    ["--engine-url", "ws://127.0.0.1:1/agent", "--cloud-init-template", writable.path],
                    "is writable by its group or by others (mode 0666)"
                ),
                (["--engine-url", "ws://127.0.0.1:1/agent", "--cloud-init-template", big.path], "64 KiB"),
                (["--engine-url", "ws://127.0.0.1:1/agent", "--cloud-init-template", keyless.path], "{AGENT_KEY}"),
                (["--engine-url", "ws://hub.example.com/agent"], "wss://"),
                (["--cloud-init-template", big.path], "--engine-url"),
                (
                    ["--engine-url", "wss://hub.example.com/agent", "--bootstrap-timeout", "soon"],
                    "--bootstrap-timeout"
                ),
            ]
            if geteuid() == 0 {
                // Owned by someone else (nobody), even though no one else may write it.
                let foreign = world.directory.appendingPathComponent("foreign.tmpl")
                try "#!/bin/bash\n# {AGENT_ID} {AGENT_KEY} {ENGINE_WS_URL}\n".write(
                    to: foreign,
                    atomically: true,
                    encoding: .utf8
                )
                try FileManager.default.setAttributes(
                    [.posixPermissions: 0o644, .ownerAccountID: 65534],
                    ofItemAtPath: foreign.path
                )
                cases.append(
                    (
                        ["--engine-url", "ws://127.0.0.1:1/agent", "--cloud-init-template", foreign.path],
                        "is owned by uid 65534, neither root nor this daemon's user"
                    )
                )
            }
            for (flags, mentions) in cases {
                let result = try await world.command(["run"] + flags, timeout: .seconds(20))
                #expect(result.status == 78, "\(flags): \(result.output)")
                let lines = result.output.split(separator: "\n").filter { $0.contains("configuration error") }
                #expect(lines.count == 1 && lines[0].contains(mentions), "\(flags): \(result.output)")
            }
        }
    }

    @Test(
        "the key never leaves the create request: not in logs, events, rows, plan, status, echoed errors or the request log"
    )
    func keyNeverLeaves() async throws {
        try await Self.with { world, hub in
            // A short script, so that an echo of the request still holds the key within the 1 KiB
            // of DigitalOcean's words an error keeps.
            let template = world.directory.appendingPathComponent("short.tmpl")
            try "#!/bin/sh\nAGENT_KEY={AGENT_KEY}\nAGENT_ID={AGENT_ID}\nENGINE_WS_URL={ENGINE_WS_URL}\n".write(
                to: template,
                atomically: true,
                encoding: .utf8
            )
            let daemon = try world.daemon(
                Self.flags(hub) + ["--log-level", "trace", "--cloud-init-template", template.path]
            )
            defer { daemon.signal(SIGKILL) }
            let good = try await world.insert("secret-1")
            #expect(try await Self.waitFor("active", world, good))
            // A create refused with an answer that quotes the request back, user_data and all.
            world.simulator.updateFaults { $0.createRefusedEchoingBody = true }
            let echoed = try await world.insert("secret-2")
            #expect(try await Self.waitFor("failed", world, echoed))
            let refusal = try #require(try await world.row(echoed)?.lastError)
            #expect(refusal.contains("[redacted]"), "the echo was not where expected: \(refusal)")
            world.simulator.updateFaults { $0.createRefusedEchoingBody = false }

            let dropletID = try #require(try await world.row(good)?.dropletID)
            let key = try #require(world.simulator.agentCredentials(dropletID: dropletID)).key
            let plan = try await world.command(["plan", "--engine-url", hub.url])
            let status = try await world.command(["status"])
            await daemon.stop()

            let events = try await world.db.query("SELECT * FROM server_events").map { row in
                try ["server_name", "kind", "message", "from_status", "to_status", "do_request_id"].map {
                    try row.decode(String?.self, $0) ?? ""
                }
                .joined(separator: " ")
            }.joined(separator: "\n")
            let rows = try await world.db.query("SELECT row_to_json(s)::text AS j FROM servers s").map {
                try $0.decode(String.self, "j")
            }
            .joined(separator: "\n")
            let requestLog = world.simulator.requestLog().map { "\($0.path) \($0.body ?? "")" }.joined(separator: "\n")
            let places: [(String, String)] = [
                ("the daemon's log (trace level)", daemon.output), ("server_events", events), ("servers rows", rows),
                ("plan", plan.output), ("status", status.output), ("the simulator's request log", requestLog),
                ("the echoed refusal", refusal),
            ]
            let anyKey = try Regex("[0-9a-f]{64}")
            // Also as the bytes on the wire would be dumped: the key's text, hex-encoded.
            let keyAsHexBytes = key.utf8.map { String(format: "%02x", $0) }.joined()
            for (place, text) in places {
                #expect(!text.isEmpty, "nothing to search in \(place)")
                #expect(!text.contains(key), "the key is in \(place)")
                #expect(!text.lowercased().contains(keyAsHexBytes), "the key's bytes, hex-dumped, are in \(place)")
                let match = text.firstMatch(of: anyKey).map { text[$0.range] }
                #expect(match == nil, "a 64-hex-digit secret-shaped text is in \(place): \(match ?? "")")
            }
            #expect(
                requestLog.contains("<present, "),
                "the request log does not even note the user_data: \(requestLog.prefix(500))"
            )
        }
    }
}
