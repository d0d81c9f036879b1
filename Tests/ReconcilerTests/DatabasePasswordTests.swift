import CitrusTestKit
import Foundation
import Postgres
import Testing

/// The database password reaches the daemon as a file named by `PGPASSFILE` (the unit's
/// `LoadCredential=pgpass:` + `Environment=PGPASSFILE=%d/pgpass`), never in its environment file,
/// argv or logs.
@Suite("Database password through PGPASSFILE", .serialized)
struct DatabasePasswordTests {
    @Test(
        "a role that needs a password logs in with PGPASSFILE, is refused (exit 78) without it, and the password is in no output"
    )
    func passwordFile() async throws {
        try await World.with { world in
            let password = "pw-\(UUID().uuidString)"
            // A UUID: no quote to escape.
            try await world.db.query("CREATE ROLE citrus_pw LOGIN SUPERUSER PASSWORD \(unsafeSQL: "'\(password)'")")
            // The role, and only it, must show a password over TCP (first matching line wins).
            let hba = world.cluster.dataDirectory + "/pg_hba.conf"
            let rules = try String(contentsOfFile: hba, encoding: .utf8)
            try ("host all citrus_pw 127.0.0.1/32 scram-sha-256\n" + rules).write(
                toFile: hba,
                atomically: false,
                encoding: .utf8
            )
            try await world.db.query("SELECT pg_reload_conf()")

            var components = URLComponents(string: world.databaseURL)!
            components.user = "citrus_pw"
            let url = components.string!
            let cloud = world.connectionArguments.filter { $0 != world.databaseURL && $0 != "--database-url" }
            func daemon(_ environment: [String: String], _ name: String) throws -> ChildProcess {
                let process = ChildProcess(
                    executable: try BuiltProducts.executable(named: "citrus-reconciler"),
                    arguments: ["run", "--log-format", "text", "--database-url", url, "--fast-interval", "300ms"]
                        + cloud,
                    environment: ["PATH": "/usr/bin:/bin", "HOME": world.directory.path].merging(environment) { $1 },
                    logFile: world.directory.appendingPathComponent("\(name).log")
                )
                try process.start()
                return process
            }

            // No password anywhere: refused at once, as bad configuration.
            let refused = try daemon([:], "no-password")
            let status = await refused.waitForExit(timeout: .seconds(20))
            if status == nil { await refused.stop() }
            #expect(status == 78, "\(refused.output)")

            // The password in a pgpass file of mode 0600 named by PGPASSFILE.
            let pgpass = world.directory.appendingPathComponent("pgpass")
            let database = components.path.dropFirst()
            try "\(world.cluster.host):\(world.cluster.port):\(database):citrus_pw:\(password)\n".write(
                to: pgpass,
                atomically: true,
                encoding: .utf8
            )
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: pgpass.path)
            let running = try daemon(["PGPASSFILE": pgpass.path], "with-password")
            defer { running.signal(SIGKILL) }
            let id = try await world.insert("web-password")
            let active = try await eventually(timeout: .seconds(30)) { try await world.row(id)?.status == "active" }
            #expect(active, "\(running.output)")
            await running.stop()
            #expect(running.exitStatus == 0)
            for output in [refused.output, running.output] {
                #expect(!output.contains(password), "the password is in the daemon's output")
            }
        }
    }
}
