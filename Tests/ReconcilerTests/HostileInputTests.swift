import CitrusTestKit
import DigitalOceanSimulator
import Foundation
import Postgres
import Testing

/// Rows nobody should write, written anyway. The schema refuses some (too long, NULL where it is
/// NOT NULL); everything it accepts reaches the daemon, which must fail each bad row alone with a
/// `last_error` an operator can act on, never crash or stall, and converge the good rows beside them.
@Suite("Hostile input, end to end", .serialized)
struct HostileInputTests {
    static let quick = World.quick

    /// Names DigitalOcean refuses (hostname characters only, 1…255, ending alphanumeric). Each must
    /// fail locally: nothing about it may reach DigitalOcean.
    static let badNames: [(label: String, name: String)] = [
        ("empty", ""),
        ("quotes", #"it's "quoted" `too`"#),
        ("sql", "x'); DROP TABLE servers; --"),
        ("sql-comment", "a/*b*/; SELECT pg_sleep(10);"),
        ("shell", "$(touch /tmp/citrus-pwned); `id` | cat && rm -rf ~ > /dev/null"),
        ("unicode", "сервер-ünïcode"),
        ("emoji", "lemon-🍋"),
        ("newline", "line\nbreak"),
        ("crlf", "carriage\r\nreturn"),
        ("tab", "tab\there"),
        ("underscore", "under_score"),
        ("spaces", " padded "),
        ("trailing-dash", "ends-with-dash-"),
        ("trailing-dot", "ends-with-dot."),
        ("percent", "%s%n%x-format"),
        ("json", #"{"name":"x","tags":["citrus-host"]}"#),
        ("255-unicode", String(repeating: "é", count: 255)),
        ("control", "bell\u{07}escape\u{1B}[31m"),
    ]

    @Test("the schema refuses what cannot be stored: 256-character names, NULL names/regions/sizes/images, NUL bytes")
    func schemaRefuses() async throws {
        try await World.with { world in
            let long = String(repeating: "a", count: 256)
            await #expect(throws: PostgresError.self, "a 256-character name was stored") {
                try await world.db.query("INSERT INTO servers (name) VALUES (\(long))")
            }
            for column in ["name", "region", "size", "image"] {
                let sql =
                    column == "name"
                    ? "INSERT INTO servers (name) VALUES (NULL)"
                    : "INSERT INTO servers (name, \(column)) VALUES ('null-\(column)', NULL)"
                await #expect(throws: PostgresError.self, "NULL \(column) was stored") {
                    try await world.db.query(PostgresQuery(unsafeSQL: sql))
                }
            }
            await #expect(throws: PostgresError.self, "a 51-character region was stored") {
                try await world.db.query(
                    "INSERT INTO servers (name, region) VALUES ('x', \(String(repeating: "r", count: 51)))"
                )
            }
            // A NUL byte cannot be in a Postgres text value: it must be refused, never silently cut.
            await #expect(throws: (any Error).self, "a name with a NUL byte was stored (or truncated)") {
                try await world.db.query("INSERT INTO servers (name) VALUES (\("before\u{0}after"))")
            }
            try await world.db.query("DELETE FROM servers")
            let stored = try await world.rows()
            #expect(stored.isEmpty, "refused inserts left rows: \(stored)")
            // The longest name the schema takes is one DigitalOcean takes too.
            let longest = String(repeating: "a", count: 255)
            try await world.insert(longest)
            #expect(try await world.rows().map(\.name) == [longest])
        }
    }

    @Test(
        "bad names, unknown regions, sizes and images each fail alone with a clear last_error; good rows converge; the daemon neither crashes nor stalls"
    )
    func hostileRowsFailAlone() async throws {
        try await World.with { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }

            var good: [UUID] = []
            good.append(try await world.insert("good-1"))
            var badName: [UUID: String] = [:]
            for (label, name) in Self.badNames { badName[try await world.insert(name)] = label }
            // 255 characters: the longest name allowed.
            good.append(try await world.insert(String(repeating: "a", count: 251) + ".com"))
            var badField: [UUID: String] = [:]
            for region in ["mars1", "", "sfo3'; DROP TABLE servers; --", "SFO3 "] {
                badField[try await world.insert("region-\(badField.count)", region: region)] = "region"
            }
            for size in ["s-999vcpu", "", "$(reboot)"] {
                badField[try await world.insert("size-\(badField.count)", size: size)] = "size"
            }
            for image in ["windows-95", "", "ubuntu-22-04-x64\n"] {
                badField[try await world.insert("image-\(badField.count)", image: image)] = "image"
            }
            // NULLs wherever the schema allows them are simply "not yet known".
            good.append(
                try await world.db.query(
                    """
                    INSERT INTO servers (name, digital_ocean_id, ip_address, ipv6_address, last_error, agent_id, delete_requested_at)
                    VALUES ('explicit-nulls', NULL, NULL, NULL, NULL, NULL, NULL) RETURNING id
                    """
                ).single().decode(UUID.self, "id")
            )
            good.append(try await world.insert("good-2"))

            let expectedRows = good.count + badName.count + badField.count
            let settled = try await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                let rows = try await world.rows()
                return rows.count == expectedRows && rows.allSatisfy { $0.status == "active" || $0.status == "failed" }
            }
            let rows = Dictionary(uniqueKeysWithValues: try await world.rows().map { ($0.id, $0) })
            #expect(
                settled,
                "not settled: \(rows.values.filter { $0.status != "active" && $0.status != "failed" })\n\(daemon.output.suffix(3000))"
            )

            for id in good {
                #expect(
                    rows[id]?.status == "active",
                    "good row did not converge: \(rows[id].map(String.init(describing:)) ?? "missing")"
                )
            }
            let posts = world.requests(method: "POST", route: "/v2/droplets")
            for (id, label) in badName {
                let row = rows[id]
                #expect(row?.status == "failed", "\(label): \(row.map(String.init(describing:)) ?? "missing")")
                #expect(
                    row?.lastError?.contains("name") == true,
                    "\(label): last_error does not say it is the name: \(row?.lastError ?? "nil")"
                )
                let tag = "citrus-server:\(id.uuidString.lowercased())"
                #expect(
                    !posts.contains { $0.body?.contains(tag) == true },
                    "\(label): a locally invalid row reached DigitalOcean"
                )
                #expect(world.everCreated(for: id).isEmpty, "\(label): a droplet was created")
            }
            for (id, field) in badField {
                let row = rows[id]
                #expect(row?.status == "failed", "bad \(field): \(row.map(String.init(describing:)) ?? "missing")")
                #expect(
                    row?.lastError?.contains(field) == true,
                    "bad \(field): last_error does not say so: \(row?.lastError ?? "nil")"
                )
                #expect(world.everCreated(for: id).isEmpty, "bad \(field): a droplet was created anyway")
            }
            #expect(try await world.invariantViolations().isEmpty)
            #expect(!FileManager.default.fileExists(atPath: "/tmp/citrus-pwned"), "a row's name reached a shell")

            // Not stalled: a new row still converges at once, and a bad row's deletion is honoured.
            let late = try await world.insert("late-good")
            if let anyBad = badName.keys.first { try await world.requestDeletion(anyBad) }
            #expect(
                try await eventually(timeout: .seconds(20)) { try await world.row(late)?.status == "active" },
                "\(daemon.output.suffix(3000))"
            )
            try await world.converge(timeout: .seconds(30), daemon: daemon)
            #expect(daemon.isRunning, "the daemon died: \(daemon.output.suffix(3000))")
            #expect(!daemon.output.contains("Fatal error"))
            let events = try await world.db.query("SELECT count(*) AS n FROM server_events WHERE kind = 'failed'")
                .single().decode(Int.self, "n")
            #expect(events >= badName.count + badField.count, "not every failure reached the audit trail")
            await daemon.stop()
            #expect(daemon.exitStatus == 0, "\(daemon.output.suffix(2000))")
        }
    }

    @Test("tampered daemon columns (unknown status, a digital_ocean_id that is no id) fail the row saying what to fix")
    func tamperedDaemonColumns() async throws {
        try await World.with { world in
            let daemon = try world.daemon(Self.quick)
            defer { daemon.signal(SIGKILL) }
            let oddStatus = try await world.db.query(
                "INSERT INTO servers (name, status) VALUES ('odd-status', 'banana') RETURNING id"
            ).single().decode(UUID.self, "id")
            let oddID = try await world.db.query(
                "INSERT INTO servers (name, digital_ocean_id) VALUES ('odd-id', '12; DROP TABLE servers') RETURNING id"
            ).single().decode(UUID.self, "id")
            let good = try await world.insert("beside-them")
            let ok = try await eventually(timeout: .seconds(30)) {
                let rows = try await world.rows()
                return rows.first { $0.id == good }?.status == "active"
                    && rows.filter { $0.id == oddStatus || $0.id == oddID }.allSatisfy { $0.status == "failed" }
            }
            let rows = Dictionary(uniqueKeysWithValues: try await world.rows().map { ($0.id, $0) })
            #expect(ok, "\(rows.values.map(String.init(describing:)))")
            #expect(rows[oddStatus]?.lastError?.contains("banana") == true, "\(rows[oddStatus]?.lastError ?? "nil")")
            #expect(rows[oddID]?.lastError?.contains("digital_ocean_id") == true, "\(rows[oddID]?.lastError ?? "nil")")
            #expect(world.everCreated(for: oddStatus).isEmpty && world.everCreated(for: oddID).isEmpty)
            #expect(daemon.isRunning)
            await daemon.stop()
        }
    }
}
