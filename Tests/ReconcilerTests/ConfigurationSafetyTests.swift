import CitrusTestKit
import DigitalOceanSimulator
import Foundation
import Postgres
import Testing

/// Bad configuration found at start-up: exit 78 with one line saying what to fix (the unit does
/// not restart on 78), never a crash, a retry loop, or a secret in the output.
@Suite("Configuration safety, end to end", .serialized)
struct ConfigurationSafetyTests {
    /// `citrus-reconciler run` with exactly these arguments (no world defaults appended).
    static func run(
        _ world: World,
        _ arguments: [String],
        environment: [String: String] = [:],
        timeout: Duration = .seconds(30)
    ) async throws -> (status: Int32?, output: String) {
        let process = ChildProcess(
            executable: try BuiltProducts.executable(named: "citrus-reconciler"),
            arguments: ["run", "--log-format", "text"] + arguments,
            environment: ["PATH": "/usr/bin:/bin", "HOME": world.directory.path].merging(environment) { $1 },
            logFile: world.directory.appendingPathComponent("config-\(UUID().uuidString.prefix(8)).log")
        )
        try process.start()
        let status = await process.waitForExit(timeout: timeout)
        if status == nil { await process.stop() }
        return (status, process.output)
    }

    static func configurationLines(_ output: String) -> [Substring] {
        output.split(separator: "\n").filter { $0.contains("configuration error") }
    }

    @Test(
        "every duration outside its range exits 78 with one line naming the flag and the range (1e300s used to crash with SIGILL)"
    )
    func durationRanges() async throws {
        try await World.with { world in
            let hub = ["--engine-url", "ws://127.0.0.1:1/agent"]
            let cases: [([String], String)] = [
                (["--resync-interval", "1e300s"], "--resync-interval \"1e300s\" must be a duration from 1s to 1d"),
                (["--resync-interval", "99999999999999999999h"], "--resync-interval"),
                (["--resync-interval", "25h"], "from 1s to 1d"),
                (["--resync-interval", "500ms"], "from 1s to 1d"),
                (["--fast-interval", "50ms"], "--fast-interval \"50ms\" must be a duration from 100ms to 1h"),
                (["--fast-interval", "-1s"], "--fast-interval"),
                (["--settle-period", "0s"], "--settle-period \"0s\" must be a duration from 1s to 1h"),
                (["--settle-period", "2h"], "from 1s to 1h"),
                (
                    ["--orphans", "delete", "--orphan-grace", "31d"],
                    "--orphan-grace \"31d\" must be a duration from 0s to 30d"
                ),
                (
                    hub + ["--bootstrap-timeout", "1e300s"],
                    "--bootstrap-timeout \"1e300s\" must be a duration from 1s to 1d"
                ),
                (hub + ["--agent-stale-after", "nan"], "--agent-stale-after \"nan\" must be a duration from 1s to 1d"),
                (
                    ["--max-concurrent-calls", "65"],
                    "--max-concurrent-calls \"65\" must be a whole number from 1 to 64"
                ),
                (["--rate-per-minute", "0"], "--rate-per-minute"),
            ]
            for (flags, mentions) in cases {
                let result = try await world.command(["run"] + flags, timeout: .seconds(20))
                #expect(result.status == 78, "\(flags): \(result.output)")
                let lines = Self.configurationLines(result.output)
                #expect(lines.count == 1 && lines[0].contains(mentions), "\(flags): \(result.output)")
            }
            // The same through the environment (an EnvironmentFile=).
            let fromEnvironment = try await Self.run(
                world,
                world.connectionArguments,
                environment: ["CITRUS_RESYNC_INTERVAL": "1e300s"],
                timeout: .seconds(20)
            )
            #expect(fromEnvironment.status == 78, "\(fromEnvironment.output)")
            #expect(
                Self.configurationLines(fromEnvironment.output).first?.contains("--resync-interval") == true,
                "\(fromEnvironment.output)"
            )
            #expect(world.simulator.requestLog().isEmpty, "a refused configuration still called DigitalOcean")
        }
    }

    @Test("http:// to another host is refused (the token would travel in clear); loopback http:// is accepted")
    func plainHTTPOnlyToLoopback() async throws {
        try await World.with { world in
            let token = [
                "--digitalocean-token-file", world.directory.appendingPathComponent("token").path, "--database-url",
                world.databaseURL,
            ]
            for url in [
                "http://203.0.113.5", "http://api.digitalocean.com", "HTTP://10.0.0.1:8080/", "http://[2001:db8::1]/",
            ] {
                let result = try await Self.run(world, token + ["--digitalocean-url", url], timeout: .seconds(20))
                #expect(result.status == 78, "\(url): \(result.output)")
                let lines = Self.configurationLines(result.output)
                #expect(
                    lines.count == 1 && lines[0].contains("clear text") && lines[0].contains("https://"),
                    "\(url): \(result.output)"
                )
            }
            // Loopback http:// (the simulator) starts and serves.
            let daemon = try world.daemon()
            defer { daemon.signal(SIGKILL) }
            let id = try await world.insert("plain-http-ok")
            let active = try await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
                try await world.row(id)?.status == "active"
            }
            #expect(active, "\(daemon.output.suffix(2000))")
        }
    }

    @Test("a token with a control character exits 78 and appears nowhere: not in the output, not at the simulator")
    func controlCharacterInToken() async throws {
        try await World.with { world in
            let secret = "dop_v1_SECRETSECRET\u{1B}[2J\u{07}0123456789"
            let file = world.directory.appendingPathComponent("bad-token")
            try Data((secret + "\n").utf8).write(to: file)
            chmod(file.path, 0o600)
            let base = ["--database-url", world.databaseURL, "--digitalocean-url", world.sim.baseURL]
            let fromFile = try await Self.run(world, base + ["--digitalocean-token-file", file.path])
            let fromEnvironment = try await Self.run(world, base, environment: ["DIGITALOCEAN_ACCESS_TOKEN": secret])
            for result in [fromFile, fromEnvironment] {
                #expect(result.status == 78, "\(result.output)")
                let lines = Self.configurationLines(result.output)
                #expect(lines.count == 1 && lines[0].contains("control character"), "\(result.output)")
                #expect(!result.output.contains("SECRETSECRET"), "the token was printed: \(result.output)")
                #expect(!result.output.contains("\u{1B}"), "raw control characters reached the output")
            }
            #expect(world.simulator.requestLog().isEmpty, "something was sent: \(world.simulator.requestLog())")
        }
    }

    @Test(
        "token files: over 64 KiB refused unread, not a regular file refused, group/world-readable warned about (without the token)"
    )
    func tokenFileChecks() async throws {
        try await World.with { world in
            let base = ["--database-url", world.databaseURL, "--digitalocean-url", world.sim.baseURL]
            let huge = world.directory.appendingPathComponent("huge-token")
            try Data(repeating: UInt8(ascii: "a"), count: 64 * 1024 + 1).write(to: huge)
            let result = try await Self.run(world, base + ["--digitalocean-token-file", huge.path])
            #expect(result.status == 78, "\(result.output)")
            #expect(Self.configurationLines(result.output).first?.contains("65537 bytes") == true, "\(result.output)")

            let directoryResult = try await Self.run(world, base + ["--digitalocean-token-file", world.directory.path])
            #expect(directoryResult.status == 78, "\(directoryResult.output)")
            #expect(
                Self.configurationLines(directoryResult.output).first?.contains("not a regular file") == true,
                "\(directoryResult.output)"
            )

            let long = world.directory.appendingPathComponent("long-token")
            try Data(repeating: UInt8(ascii: "b"), count: 5000).write(to: long)
            let longResult = try await Self.run(world, base + ["--digitalocean-token-file", long.path])
            #expect(longResult.status == 78 && longResult.output.contains("at most 4096"), "\(longResult.output)")

            // Readable by others: a warning, and the daemon still runs.
            let open = world.directory.appendingPathComponent("token")
            #expect(chmod(open.path, 0o644) == 0)
            let daemon = try world.daemon()
            defer { daemon.signal(SIGKILL) }
            let warned = await eventually(timeout: .seconds(20), every: .milliseconds(100)) {
                daemon.output.contains("group or world access (mode 0644)")
            }
            #expect(warned, "\(daemon.output)")
            #expect(!daemon.output.contains(world.sim.token), "the token was printed")
            #expect(daemon.isRunning, "a readable token file is a warning, not a refusal: \(daemon.output)")
        }
    }

    @Test(
        "start-up: an unknown role and a role without privileges exit 78 at once; run --migrate without the owner says it needs the owner"
    )
    func databasePermissions() async throws {
        try await World.with { world in
            let cloud = world.connectionArguments.filter { $0 != world.databaseURL && $0 != "--database-url" }
            func url(role: String, database: String? = nil) -> String {
                var components = URLComponents(string: database ?? world.databaseURL)!
                components.user = role
                return components.string!
            }
            // No such role: an authentication failure (SQLSTATE 28000), not "database not ready" forever.
            let ghost = try await Self.run(
                world,
                cloud + ["--database-url", url(role: "ghost")],
                timeout: .seconds(20)
            )
            #expect(ghost.status == 78, "\(ghost.output)")
            #expect(
                Self.configurationLines(ghost.output).first?.contains("refused to let this role in") == true,
                "\(ghost.output)"
            )
            #expect(!ghost.output.contains("database not ready"), "\(ghost.output)")

            // A role that may log in but read nothing: SQLSTATE 42501.
            try await world.db.query("CREATE ROLE citrus_nobody LOGIN")
            let nobody = try await Self.run(
                world,
                cloud + ["--database-url", url(role: "citrus_nobody")],
                timeout: .seconds(20)
            )
            #expect(nobody.status == 78, "\(nobody.output)")
            let line = Self.configurationLines(nobody.output).first ?? ""
            #expect(line.contains("lacks a privilege") && line.contains("42501"), "\(nobody.output)")

            // An empty database and --migrate by a role that may not create tables.
            let empty = try await world.cluster.createDatabase()
            let migrate = try await Self.run(
                world,
                cloud + ["--database-url", url(role: "citrus_nobody", database: empty), "--migrate"],
                timeout: .seconds(20)
            )
            #expect(migrate.status == 78, "\(migrate.output)")
            #expect(
                Self.configurationLines(migrate.output).first?.contains("needs the tables' owner") == true,
                "\(migrate.output)"
            )
        }
    }
}
