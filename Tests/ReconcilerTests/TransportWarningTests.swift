import CitrusTestKit
import Foundation
import Postgres
import Testing

/// The journal warns when the database session goes to another host without encryption. The other
/// host is an address of the documentation range (198.51.100.7) put on the loopback interface for
/// the test: not a local address by the daemon's rules, and no packet leaves the machine.
@Suite("Unencrypted database sessions to another host are warned about", .serialized)
struct TransportWarningTests {
    static let address = "198.51.100.7"

    static func ip(_ arguments: [String]) async throws -> SystemdCommandResult {
        try await SystemdCommand.run(
            ["/usr/sbin/ip"] + arguments,
            environment: ["PATH": "/usr/sbin:/usr/bin:/bin"],
            timeout: .seconds(10)
        )
    }

    @Test("a session to a non-local address without TLS is warned about once at start; 127.0.0.1 is not")
    func warnsForAnotherHostWithoutTLS() async throws {
        // An earlier run may have left the address behind: an `ip` killed for taking too long on a
        // loaded machine can have done its work all the same.
        _ = try? await Self.ip(["addr", "del", "\(Self.address)/32", "dev", "lo"])
        let added: SystemdCommandResult
        do {
            added = try await Self.ip(["addr", "add", "\(Self.address)/32", "dev", "lo"])
        } catch {
            _ = try? await Self.ip(["addr", "del", "\(Self.address)/32", "dev", "lo"])
            throw error
        }
        try #require(added.succeeded, "cannot add \(Self.address) to lo: \(added)")

        do {
            try await Self.check()
        } catch {
            _ = try? await Self.ip(["addr", "del", "\(Self.address)/32", "dev", "lo"])
            throw error
        }
        let removed = try await Self.ip(["addr", "del", "\(Self.address)/32", "dev", "lo"])
        #expect(removed.succeeded, "\(removed)")
    }

    static func check() async throws {
        try await World.with { world in
            // Postgres listens on the extra address too, and lets the test role in from it.
            try await world.db.query("ALTER SYSTEM SET listen_addresses = \(unsafeSQL: "'127.0.0.1,\(Self.address)'")")
            let hba = world.cluster.dataDirectory + "/pg_hba.conf"
            let rules = try String(contentsOfFile: hba, encoding: .utf8)
            try (rules + "\nhost all all \(Self.address)/32 trust\n").write(
                toFile: hba,
                atomically: false,
                encoding: .utf8
            )
            await world.db.close()
            try await world.cluster.stop()
            try await world.cluster.start()

            var components = URLComponents(string: world.databaseURL)!
            components.host = Self.address
            components.query = "sslmode=disable"
            let cloud = world.connectionArguments.filter { $0 != world.databaseURL && $0 != "--database-url" }
            for (url, warns) in [(components.string!, true), (world.databaseURL, false)] {
                let daemon = ChildProcess(
                    executable: try BuiltProducts.executable(named: "citrus-reconciler"),
                    arguments: ["run", "--log-format", "text", "--database-url", url] + cloud,
                    environment: ["PATH": "/usr/bin:/bin", "HOME": world.directory.path],
                    logFile: world.directory.appendingPathComponent("transport-\(warns).log")
                )
                try daemon.start()
                let leads = await eventually(timeout: .seconds(30)) { daemon.output.contains("this replica now leads") }
                #expect(leads, "\(daemon.output)")
                // The check runs once, after start-up and before the loop: by the first pass it has spoken.
                try await Task.sleep(for: .seconds(1))
                await daemon.stop()
                let warnings = daemon.output.split(separator: "\n").filter {
                    $0.contains("warning") && $0.contains("not encrypted")
                }
                if warns {
                    #expect(warnings.count == 1, "\(daemon.output)")
                    #expect(warnings.first?.contains(Self.address) == true, "\(warnings)")
                } else {
                    #expect(warnings.isEmpty, "\(warnings)")
                }
            }
        }
    }
}
