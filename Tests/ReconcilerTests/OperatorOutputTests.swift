import CitrusTestKit
import Foundation
import Postgres
import ReconcileCore
import ServerStore
import Testing

/// Issue 12's machine-readable output and the operator's commands: `plan --output json` and
/// `--detailed-exitcode`, `status --output json|wide`, `--status`, `--watch`, `events`, and
/// untrusted text (row names, error texts) escaped on the terminal.
@Suite("Operator output: plan, status, events", .serialized)
struct OperatorOutputTests {
    static let quick = ["--fast-interval", "300ms", "--resync-interval", "1s"]

    static func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    @Test(
        "plan --detailed-exitcode: 0 with nothing to do, 2 with changes pending, 1 on error; --output json lists the actions"
    )
    func planExitCodesAndJSON() async throws {
        try await World.with { world in
            let empty = try await world.command(["plan", "--detailed-exitcode"])
            #expect(empty.status == 0, "\(empty.output)")
            #expect(empty.output.contains("nothing to do"))

            let id = try await world.insert("web-plan")
            let pending = try await world.command(["plan", "--detailed-exitcode"])
            #expect(pending.status == 2, "\(pending.output)")
            #expect(pending.output.contains("create   web-plan"))
            // Without the flag, pending changes are still a success.
            #expect(try await world.command(["plan"]).status == 0)

            let json = try await world.command(["plan", "--output", "json", "--detailed-exitcode"])
            #expect(json.status == 2)
            let document = try #require(try Self.json(json.output) as? [String: Any], "\(json.output)")
            #expect(document["changes"] as? Bool == true)
            let actions = try #require(document["actions"] as? [[String: Any]])
            let create = try #require(actions.first { $0["action"] as? String == "create" }, "\(actions)")
            #expect(create["server_id"] as? String == id.uuidString.lowercased())
            #expect(create["server_name"] as? String == "web-plan")
            #expect(create["region"] as? String == "sfo3")
            #expect((create["tags"] as? [String])?.contains("citrus-server:\(id.uuidString.lowercased())") == true)
            #expect(world.requests(method: "POST").isEmpty, "plan sent a create")

            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            try await world.converge(timeout: .seconds(30), daemon: daemon)
            await daemon.stop()
            let settled = try await world.command(["plan", "--detailed-exitcode", "--output", "json"])
            #expect(settled.status == 0, "\(settled.output)")
            #expect((try Self.json(settled.output) as? [String: Any])?["changes"] as? Bool == false)

            let unreachable = try await World.commandAgainst(
                world,
                ["plan", "--detailed-exitcode", "--database-url", "postgresql://postgres@127.0.0.1:1/none"]
            )
            #expect(unreachable.status == 1, "\(unreachable.output)")
        }
    }

    @Test("status: --output json and wide, --status filters, unknown states are exit 78")
    func statusFormatsAndFilters() async throws {
        try await World.with { world in
            let good = try await world.insert("web-ok")
            let bad = try await world.insert("bad_name")
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            try await world.converge(timeout: .seconds(30), daemon: daemon)

            let json = try await world.command(["status", "--output", "json"])
            #expect(json.status == 0)
            let rows = try #require(try Self.json(json.output) as? [[String: Any]], "\(json.output)")
            #expect(
                Set(rows.compactMap { $0["id"] as? String })
                    == [good, bad].map { $0.uuidString.lowercased() }.reduce(into: []) { $0.insert($1) }
            )
            let ok = try #require(rows.first { $0["name"] as? String == "web-ok" })
            #expect(ok["status"] as? String == "active")
            #expect(ok["droplet_id"] is NSNumber)
            #expect(
                (rows.first { $0["name"] as? String == "bad_name" }?["last_error"] as? String)?.contains("droplet name")
                    == true
            )

            let failed = try await world.command(["status", "--status", "failed"])
            #expect(failed.output.contains("bad_name") && !failed.output.contains("web-ok"), "\(failed.output)")
            #expect(failed.output.contains("1 server: 1 failed"))
            let both = try await world.command(["status", "--status", "failed,active"])
            #expect(both.output.contains("bad_name") && both.output.contains("web-ok"))
            // The daemon's last full list, as it recorded it: one page, the two droplets or fewer.
            #expect(both.output.contains("DigitalOcean last seen in full "), "\(both.output)")
            #expect(both.output.contains("(1 page, "), "\(both.output)")

            let wide = try await world.command(["status", "--output", "wide"])
            #expect(wide.output.contains("AGENT ID") && wide.output.contains("ATTEMPTS"), "\(wide.output)")
            #expect(wide.output.contains(good.uuidString.lowercased()), "wide shows whole ids")

            let unknown = try await world.command(["status", "--status", "broken"])
            #expect(unknown.status == 78, "\(unknown.output)")
            #expect(unknown.output.contains("is not a state"))
        }
    }

    @Test("status says under its table how stale the last full view of DigitalOcean is; the JSON stays an array")
    func statusFullView() async throws {
        try await World.with { world in
            try await world.insert("web-view")
            let before = try await world.command(["status"])
            #expect(before.status == 0)
            #expect(before.output.contains("DigitalOcean last seen in full: never"), "\(before.output)")

            let store = ServerStore(connection: world.db)
            let now = try await store.now()
            try await store.recordFullView(
                FullViewRecord(
                    listedAt: now.addingTimeInterval(-252),
                    pages: 250,
                    droplets: 50_000,
                    took: .milliseconds(71_200),
                    nextListAt: now.addingTimeInterval(-3)
                )
            )
            for output in ["table", "wide"] {
                let after = try await world.command(["status", "--output", output])
                #expect(after.status == 0)
                // The age is on the database's clock, a moment after `now`: 4m12s or a second more.
                #expect(after.output.contains("DigitalOcean last seen in full 4m1"), "\(after.output)")
                #expect(after.output.contains("(250 pages, 50,000 droplets, listed in 1m11s)"), "\(after.output)")
                #expect(after.output.contains("next full list overdue by "), "\(after.output)")
            }
            let json = try await world.command(["status", "--output", "json"])
            #expect((try Self.json(json.output) as? [[String: Any]])?.count == 1, "\(json.output)")
        }
    }

    @Test("status --watch redraws until interrupted")
    func statusWatch() async throws {
        try await World.with { world in
            try await world.insert("web-watch")
            let watcher = ChildProcess(
                executable: try BuiltProducts.executable(named: "citrus-reconciler"),
                arguments: ["status", "--watch", "--interval", "200ms", "--database-url", world.databaseURL],
                environment: ["PATH": "/usr/bin:/bin"],
                logFile: world.directory.appendingPathComponent("watch.log")
            )
            try watcher.start()
            let redrawn = await eventually(timeout: .seconds(20)) {
                watcher.output.components(separatedBy: "web-watch").count > 3
            }
            #expect(redrawn, "fewer than 3 tables: \(watcher.output)")
            #expect(watcher.isRunning)
            watcher.signal(SIGINT)
            #expect(await watcher.waitForExit(timeout: .seconds(10)) != nil, "still running after SIGINT")
        }
    }

    @Test("events prints one server's story, newest last, by name, id or id prefix; ambiguous or unknown is exit 1")
    func events() async throws {
        try await World.with { world in
            let id = try await world.insert("web-story")
            try await world.insert("twin")
            try await world.insert("twin")
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            try await world.converge(timeout: .seconds(30), daemon: daemon)
            await daemon.stop()

            let byName = try await world.command(["events", "web-story"])
            #expect(byName.status == 0, "\(byName.output)")
            let lines = byName.output.split(separator: "\n").map(String.init)
            #expect(
                lines.first?.contains("web-story (\(id.uuidString.lowercased())): active") == true,
                "\(byName.output)"
            )
            let kinds = lines.dropFirst(2).map { $0.split(separator: " ", omittingEmptySubsequences: true)[1] }
            #expect(kinds.first == "create_requested" && kinds.last == "status_changed", "\(kinds)")
            #expect(lines.last?.contains("provisioning → active") == true, "newest last: \(byName.output)")

            let prefix = String(id.uuidString.lowercased().prefix(8))
            #expect(try await world.command(["events", prefix]).output == byName.output)
            #expect(try await world.command(["events", id.uuidString]).output == byName.output)

            let json = try await world.command(["events", "web-story", "--output", "json"])
            let entries = try #require(try Self.json(json.output) as? [[String: Any]], "\(json.output)")
            #expect(entries.first?["kind"] as? String == "create_requested")
            #expect(entries.last?["to_status"] as? String == "active")

            let ambiguous = try await world.command(["events", "twin"])
            #expect(ambiguous.status == 1)
            #expect(ambiguous.output.contains("matches 2 servers"), "\(ambiguous.output)")
            let unknown = try await world.command(["events", "nobody"])
            #expect(unknown.status == 1)
            #expect(unknown.output.contains("no server matches"))
        }
    }

    @Test("a row name with control characters reaches no terminal raw: status, plan and events escape it")
    func controlCharactersEscaped() async throws {
        try await World.with { world in
            let name = "evil\u{1b}[2J\u{1b}[31mred\nforged line\u{7}"
            try await world.db.query("INSERT INTO servers (name) VALUES (\(name))")
            let plan = try await world.command(["plan"])
            let status = try await world.command(["status"])
            let wide = try await world.command(["status", "--output", "wide"])
            let events = try await world.command(["events", name])
            for (command, result) in [("plan", plan), ("status", status), ("status wide", wide), ("events", events)] {
                #expect(
                    !result.output.unicodeScalars.contains { $0 == "\u{1b}" || $0 == "\u{7}" },
                    "\(command) printed a raw control character"
                )
                #expect(!result.output.contains("\nforged line"), "\(command) let the name start a line of its own")
                #expect(result.output.contains("evil\\u{1b}[2J"), "\(command): \(result.output)")
            }
        }
    }
}

extension World {
    /// Runs a subcommand with exactly `arguments` (no database or DigitalOcean arguments added).
    static func commandAgainst(_ world: World, _ arguments: [String]) async throws -> (status: Int32?, output: String) {
        let process = ChildProcess(
            executable: try BuiltProducts.executable(named: "citrus-reconciler"),
            arguments: arguments + [
                "--digitalocean-url", world.sim.baseURL, "--digitalocean-token-file",
                world.directory.appendingPathComponent("token").path,
            ],
            environment: ["PATH": "/usr/bin:/bin", "HOME": world.directory.path],
            logFile: world.directory.appendingPathComponent("command-\(UUID().uuidString.prefix(8)).log")
        )
        try process.start()
        let status = await process.waitForExit(timeout: .seconds(60))
        if status == nil { await process.stop() }
        return (status, process.output)
    }
}
