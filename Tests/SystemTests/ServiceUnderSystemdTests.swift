import CitrusTestKit
import DigitalOceanSimulator
import EngineHubSimulator
import Foundation
import Postgres
import ReconcileCore
import Testing

let namespaceSupport = SystemdCommand.namespaceSupport

/// The real daemon binary, installed by `deploy/install.sh`, run by a real systemd 252 as PID 1 of
/// a private PID + mount namespace (CitrusTestKit's `SystemdSandbox`), under the shipped unit's
/// hardening, against a throwaway Postgres and the in-process simulator on 127.0.0.1.
///
/// One systemd, one cluster, one simulator for the whole story, told in order: a slow database
/// at start, a row converging, a frozen loop, a stop with a request in flight, bad
/// configuration, a timed start, and finally the token's absence from everything systemd
/// recorded. Everything is torn down also when a check fails.
@Suite(
    "The daemon under a real systemd",
    .serialized,
    .enabled(if: namespaceSupport.supported, Comment(rawValue: namespaceSupport.reason))
)
struct ServiceUnderSystemdTests {
    static let unit = "citrus-reconciler.service"
    static let bogusOrphansUnit = "citrus-reconciler-bogus-orphans.service"
    static let noTokenUnit = "citrus-reconciler-no-token.service"
    /// Started at boot; refers to the units under test, as an enabled unit is referred to by
    /// multi-user.target. Otherwise systemd unloads a unit once it is inactive, and with it the
    /// exit status and Result= the test reads after a stop.
    static let anchor = "citrus-system-test-anchor.target"

    @Test(
        "installed unit: readiness, audit trail in the journal, watchdog, clean stop, exit 78, no token anywhere",
        .timeLimit(.minutes(5))
    )
    func installedServiceLifecycle() async throws {
        // A token of this run only, so finding it anywhere is a leak, not a coincidence.
        let token = "dop_v1_systemtest_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased())"
        var simulatorConfiguration = SimulatorHarness.testConfiguration(seed: 7)
        simulatorConfiguration.tokens = [token]
        // The agent connects well after a pass (every 1 s here) has seen its droplet active, so
        // the row is seen waiting in `initializing` first.
        simulatorConfiguration.agentBootDelay = .seconds(3)

        try await withPostgresCluster { cluster in
            let ownerURL = try await cluster.createDatabase()
            let database = String(ownerURL.split(separator: "/").last ?? "")
            try await prepareDatabase(ownerURL: ownerURL)

            // Agent bootstrap on: the simulator plays cloud-init and the agent, the hub stand-in
            // runs on the same database, and the daemon makes agents through its own role.
            try await withEngineHub(configuration: .init(databaseURL: ownerURL)) { hub in
                try await SimulatorHarness.withSimulator(configuration: simulatorConfiguration) { sim in
                    let installation = try await Installation.install(token: token)
                    defer { installation.remove() }
                    // The daemon connects as the least-privileged role of deploy/database-role.sql.
                    try installation.writeEnvironment([
                        "CITRUS_DATABASE_URL":
                            "postgresql://citrus_reconciler@\(cluster.host):\(cluster.port)/\(database)",
                        "CITRUS_DIGITALOCEAN_URL": sim.baseURL,
                        "CITRUS_FAST_INTERVAL": "1s",
                        "CITRUS_RESYNC_INTERVAL": "5s",
                        "CITRUS_SETTLE_PERIOD": "3s",
                        "CITRUS_ENGINE_URL": hub.url,
                    ])
                    let units = [
                        Self.unit: try installation.unit(),
                        Self.bogusOrphansUnit: try installation.unit(arguments: ["--orphans", "bogus"]),
                        Self.noTokenUnit: try installation.unit(loadsToken: false),
                        Self.anchor: """
                        [Unit]
                        Description=keeps the units under test loaded after they stop
                        After=\(Self.unit) \(Self.bogusOrphansUnit) \(Self.noTokenUnit)

                        """,
                    ]
                    try await withSystemdSandbox(units: units, start: [Self.anchor]) { systemd in
                        try await Story.slowDatabaseKeepsItActivatingUntilTheFirstPass(
                            systemd: systemd,
                            cluster: cluster,
                            sim: sim
                        )
                        // Connected only now: stopping the database above would have ended the session.
                        let db = try await PostgresConnection.connect(ownerURL)
                        let story = Story(systemd: systemd, db: db, sim: sim, installation: installation, token: token)
                        try await story.insertedRowConvergesAndTheJournalTellsItsStory()
                        try await story.tokenIsNotInTheEnvironmentOrArgv()
                        try await story.reloadRotatesTheTokenWithoutAFailedRequest()
                        try await story.frozenLoopIsRestartedByTheWatchdog()
                        try await story.slowDigitalOceanIsNoReasonToRestart()
                        try await story.stopWaitsForTheRequestInFlightAndExitsZero()
                        try await story.badConfigurationExits78AndIsNotRestarted()
                        try await story.timedStart()
                        try await story.secretsAreNotInTheJournal()
                        await db.close()
                    }
                }
            }
        }
    }

    /// Migrations as the table owner, then the daemon's role, both as an operator would run them.
    private func prepareDatabase(ownerURL: String) async throws {
        let migrate = try await SystemdCommand.run(
            [try BuiltProducts.executable(named: "citrus-reconciler").path, "migrate", "--database-url", ownerURL],
            environment: ["PATH": "/usr/bin:/bin"],
            timeout: .seconds(60)
        )
        try #require(migrate.succeeded, "\(migrate)")
        let role = try await SystemdCommand.run(
            [
                try findPsql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", ownerURL,
                "-f", repositoryRoot.appendingPathComponent("deploy/database-role.sql").path,
            ],
            environment: ["PATH": "/usr/bin:/bin"],
            timeout: .seconds(60)
        )
        try #require(role.succeeded, "\(role)")
    }
}

/// The checks, in the order they run against the one installed unit.
struct Story {
    let systemd: SystemdSandbox
    let db: PostgresConnection
    let sim: SimulatorHarness.Running
    let installation: Installation
    let token: String

    var unit: String { ServiceUnderSystemdTests.unit }

    // MARK: Readiness

    /// Postgres is down when the unit starts: it stays `activating` and says why, and becomes
    /// `active` only once the first full pass (which lists the droplets) is done.
    static func slowDatabaseKeepsItActivatingUntilTheFirstPass(
        systemd: SystemdSandbox,
        cluster: PostgresCluster,
        sim: SimulatorHarness.Running
    ) async throws {
        let unit = ServiceUnderSystemdTests.unit
        try await cluster.stop()
        let start = try await systemd.systemctl("start", "--no-block", unit)
        try #require(start.succeeded, "\(start)")

        var states: [String] = []
        var status = ""
        let until = ContinuousClock.now + .seconds(4)
        while ContinuousClock.now < until {
            let now = try await systemd.properties(["ActiveState", "StatusText"], of: unit)
            states.append(now["ActiveState"] ?? "?")
            status = now["StatusText"] ?? ""
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(Set(states) == ["activating"], "while the database is down: \(states)")
        #expect(status.hasPrefix("starting: waiting for the database"), "StatusText: \(status)")
        #expect(sim.simulator.requestLog().isEmpty, "no DigitalOcean call before the database is there")

        try await cluster.start()
        let databaseUp = ContinuousClock.now
        try await systemd.waitFor(unit: unit, activeState: "active", timeout: .seconds(60))
        print("figure: database up → active in \(milliseconds(ContinuousClock.now - databaseUp)) ms")

        // READY=1 came after the first pass: that pass listed the fleet.
        let lists = sim.simulator.requestLog().filter { $0.method == "GET" && $0.route == "/v2/droplets" }
        #expect(lists.contains { $0.status == 200 }, "active before the first pass listed the droplets")
        let ready = try await systemd.property("StatusText", of: unit)
        // The first pass listed the whole fleet: the summary says how old that view is.
        #expect(
            ready.hasPrefix("leader: no servers; 0 orphans; full view ") && ready.hasSuffix("s old"),
            "StatusText: \(ready)"
        )
    }

    // MARK: Audit trail

    func insertedRowConvergesAndTheJournalTellsItsStory() async throws {
        let name = "web-1.system-test"
        let id = try await db.query(
            "INSERT INTO servers (name, region, size, image) VALUES (\(name), 'sfo3', 's-1vcpu-512mb-10gb', 'ubuntu-22-04-x64') RETURNING id"
        ).single().decode(UUID.self, "id")
        let serverID = id.uuidString.lowercased()

        var row: (status: String, droplet: String?) = ("", nil)
        let converged = try await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
            let r = try await db.query("SELECT status, digital_ocean_id FROM servers WHERE id = \(id)").single()
            row = (try r.decode(String.self, "status"), try r.decode(String?.self, "digital_ocean_id"))
            let events = try await db.query(
                "SELECT count(*) AS n FROM server_events WHERE server_id = \(id) AND to_status = 'active'"
            ).single().decode(Int.self, "n")
            return row.status == "active" && events > 0
        }
        if !converged {
            let journal = try? await systemd.journalctl("-u", unit, "-n", "60", "-o", "cat")
            Issue.record("the daemon's journal: \(journal?.stdout ?? "unreadable")")
        }
        try #require(converged, "row did not converge: \(row)")
        let droplet = try #require(row.droplet)
        let create = try #require(
            sim.simulator.requestLog().first { $0.method == "POST" && $0.body?.contains(serverID) == true }
        )

        var status = ""
        let summarised = try await eventually(timeout: .seconds(10)) {
            status = try await systemd.property("StatusText", of: unit)
            return status.hasPrefix("leader: 1 active; 0 orphans; full view ") && status.hasSuffix("s old")
        }
        #expect(summarised, "StatusText: \(status)")

        // The journal: every audit entry for the row, in order, with the documented fields.
        let kinds = Dictionary(uniqueKeysWithValues: AuditKind.allCases.map { ($0.messageID, $0) })
        let entries = try await systemd.journalEntries(["SERVER_ID=\(serverID)"])
        let journal = entries.map { entry in
            Event(
                kind: entry["MESSAGE_ID"].flatMap { kinds[$0]?.rawValue }
                    ?? "unknown MESSAGE_ID \(entry["MESSAGE_ID"] ?? "none")",
                from: entry["FROM_STATUS"],
                to: entry["TO_STATUS"],
                droplet: entry["DROPLET_ID"],
                requestID: entry["DO_REQUEST_ID"]
            )
        }
        let expected = [
            Event(kind: "create_requested", from: "creating", to: "creating", droplet: nil, requestID: nil),
            // The row is written first, so the accepted entry's TO_STATUS is what the row became.
            Event(
                kind: "status_changed",
                from: "creating",
                to: "provisioning",
                droplet: droplet,
                requestID: create.requestID
            ),
            Event(
                kind: "create_accepted",
                from: "creating",
                to: "provisioning",
                droplet: droplet,
                requestID: create.requestID
            ),
            Event(kind: "agent_awaited", from: "provisioning", to: "initializing", droplet: droplet, requestID: nil),
            Event(kind: "agent_connected", from: "initializing", to: "active", droplet: droplet, requestID: nil),
        ]
        #expect(journal == expected, "journalctl SERVER_ID=\(serverID)")
        for entry in entries {
            #expect(entry["SERVER_NAME"] == name)
            #expect(entry["_SYSTEMD_UNIT"] == unit)
            #expect(entry["_TRANSPORT"] == "journal", "native journal entry, not a line on stderr")
            #expect(entry["SYSLOG_IDENTIFIER"] == "citrus-reconciler")
            #expect(entry["MESSAGE"]?.isEmpty == false)
        }

        // server_events holds the same story.
        let stored = try await db.query(
            "SELECT kind, from_status, to_status, droplet_id, do_request_id FROM server_events WHERE server_id = \(id) ORDER BY id"
        ).map { r in
            Event(
                kind: try r.decode(String.self, "kind"),
                from: try r.decode(String?.self, "from_status"),
                to: try r.decode(String?.self, "to_status"),
                droplet: try r.decode(Int64?.self, "droplet_id").map(String.init),
                requestID: try r.decode(String?.self, "do_request_id")
            )
        }
        #expect(stored == journal, "server_events differs from the journal")

        // journalctl -x explains the entries from the catalog install.sh compiled.
        let copy = try await systemd.run([
            "/bin/sh", "-c", "mkdir -p /var/lib/systemd/catalog && cp \"$0\" /var/lib/systemd/catalog/database",
            installation.catalogDatabase,
        ])
        #expect(copy.succeeded, "\(copy)")
        let explained = try await systemd.journalctl(
            "-x",
            "SERVER_ID=\(serverID)",
            "MESSAGE_ID=\(AuditKind.createAccepted.messageID)"
        )
        let subject = try catalogSubject(of: .createAccepted)
            .replacingOccurrences(of: "@DROPLET_ID@", with: droplet).replacingOccurrences(
                of: "@SERVER_NAME@",
                with: name
            )
        #expect(
            explained.stdout.contains("Defined-By: citrus-reconciler"),
            "journalctl -x shows no catalog entry:\n\(explained.stdout)"
        )
        #expect(
            explained.stdout.contains(subject),
            "journalctl -x does not show the catalog's \"\(subject)\":\n\(explained.stdout)"
        )
    }

    struct Event: Equatable, CustomStringConvertible {
        var kind: String
        var from: String?
        var to: String?
        var droplet: String?
        var requestID: String?
        var description: String {
            "\(kind) \(from ?? "-")→\(to ?? "-") droplet=\(droplet ?? "-") request=\(requestID ?? "-")"
        }
    }

    private func catalogSubject(of kind: AuditKind) throws -> String {
        let catalog = try String(
            contentsOf: repositoryRoot.appendingPathComponent("deploy/citrus-reconciler.catalog"),
            encoding: .utf8
        )
        let block = try #require(catalog.components(separatedBy: "\n-- ").first { $0.hasPrefix(kind.messageID) })
        let line = try #require(block.split(separator: "\n").first { $0.hasPrefix("Subject: ") })
        return String(line.dropFirst("Subject: ".count))
    }

    // MARK: The token

    /// The credential reaches the daemon as a file; its environment and argv never hold the token.
    func tokenIsNotInTheEnvironmentOrArgv() async throws {
        let pid = try await systemd.property("MainPID", of: unit)
        try #require(Int(pid) ?? 0 > 0, "MainPID \(pid)")
        let environ = try await systemd.run(["/bin/cat", "/proc/\(pid)/environ"])
        try #require(environ.succeeded, "\(environ)")
        let variables = environ.stdout.split(separator: "\0").map(String.init)
        #expect(
            variables.contains { $0.hasPrefix("CREDENTIALS_DIRECTORY=") },
            "the token comes by LoadCredential=: \(variables)"
        )
        #expect(
            variables.contains { $0.hasPrefix("CITRUS_DATABASE_URL=") },
            "this is the daemon's environment: \(variables)"
        )
        #expect(!environ.stdout.contains(token), "the token is in the daemon's environment")
        let cmdline = try await systemd.run(["/bin/cat", "/proc/\(pid)/cmdline"])
        try #require(cmdline.succeeded, "\(cmdline)")
        #expect(
            cmdline.stdout.split(separator: "\0") == [Substring(installation.binary), "run"],
            "argv: \(cmdline.stdout)"
        )
        #expect(!cmdline.stdout.contains(token), "the token is in the daemon's argv")

        // No core dump can carry the token or a key: no core size, and the process is not dumpable
        // (which makes its /proc files root's, although it runs as its own dynamic user).
        let limits = try await systemd.run(["/bin/cat", "/proc/\(pid)/limits"])
        let core = limits.stdout.split(separator: "\n").first { $0.hasPrefix("Max core file size") } ?? ""
        #expect(
            core.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2) == ["0", "0"],
            "\(core)"
        )
        let owners = try await systemd.run([
            "/usr/bin/stat", "-c", "%U", "/proc/\(pid)/status", "/proc/\(pid)/loginuid",
        ])
        let uid = try await systemd.run(["/bin/sh", "-c", "awk '/^Uid:/ {print $2}' /proc/\(pid)/status"])
        #expect(uid.stdout.trimmingCharacters(in: .whitespacesAndNewlines) != "0", "the daemon runs as root: \(uid)")
        #expect(owners.stdout.split(separator: "\n").first == "root", "the daemon is dumpable: \(owners)")
    }

    /// Read at the very end, so it covers everything the daemon and systemd logged: neither the
    /// token nor any agent's key (each create's, read back from the simulator) is in the journal.
    /// The export format is binary where a field is (multi-line messages), so it is searched with
    /// `grep -a` inside the sandbox, the patterns read from a root-only file (not put in argv).
    func secretsAreNotInTheJournal() async throws {
        let keys = sim.simulator.droplets().compactMap { sim.simulator.agentCredentials(dropletID: $0.id)?.key }
        #expect(!keys.isEmpty, "no droplet carried an agent key: agent bootstrap was not exercised")
        let secrets = installation.configurationDirectory + "/secrets-to-search-for"
        try ([token] + keys).joined(separator: "\n").appending("\n").write(
            toFile: secrets,
            atomically: true,
            encoding: .utf8
        )
        defer { try? FileManager.default.removeItem(atPath: secrets) }
        _ = try await systemd.run(["/bin/journalctl", "--sync"])
        for scope in [["-u", unit], []] {
            let script = """
                journalctl --no-pager -o export "$@" >/tmp/citrus-export
                echo "entries $(grep -a -c '^__CURSOR=' /tmp/citrus-export)"
                echo "daemon $(grep -a -c '^SYSLOG_IDENTIFIER=citrus-reconciler$' /tmp/citrus-export)"
                echo "token $(grep -a -c -F -f "$0" /tmp/citrus-export)"
                echo "control $(grep -a -c -F -f "$0" "$0")"
                rm -f /tmp/citrus-export
                """
            let result = try await systemd.run(["/bin/sh", "-c", script, secrets] + scope)
            let counts = Dictionary(
                result.stdout.split(separator: "\n").compactMap { line -> (String, Int)? in
                    let parts = line.split(separator: " ")
                    guard parts.count == 2, let n = Int(parts[1]) else { return nil }
                    return (String(parts[0]), n)
                },
                uniquingKeysWith: { $1 }
            )
            #expect(
                (counts["daemon"] ?? 0) > 10,
                "journalctl -o export \(scope): too little of the daemon to search: \(result)"
            )
            #expect(
                counts["control"] == 1 + keys.count,
                "the search does not find the secrets where they are: \(result)"
            )
            #expect(
                counts["token"] == 0,
                "the token or an agent's key is in the journal (journalctl -o export \(scope)): \(result)"
            )
        }
    }

    // MARK: Watchdog

    /// SIGSTOP freezes the whole process, loop and watchdog pinger alike: systemd's WatchdogSec=
    /// (4s here) expires, it kills the daemon and Restart=on-failure brings it back.
    func frozenLoopIsRestartedByTheWatchdog() async throws {
        let before = try await systemd.properties(["MainPID", "NRestarts"], of: unit)
        #expect(before["NRestarts"] == "0")
        let freeze = try await systemd.systemctl("kill", "--kill-who=main", "--signal=SIGSTOP", unit)
        try #require(freeze.succeeded, "\(freeze)")
        let frozenAt = ContinuousClock.now

        // Caught in auto-restart, while systemd waits RestartSec= (2s here) before starting it again.
        var seen: [String: String] = [:]
        let killed = try await eventually(timeout: .seconds(30), every: .milliseconds(100)) {
            seen = try await systemd.properties(
                ["ActiveState", "SubState", "Result", "ExecMainCode", "ExecMainStatus"],
                of: unit
            )
            return seen["SubState"] == "auto-restart"
        }
        #expect(killed, "not killed: \(seen)")
        #expect(seen["Result"] == "watchdog", "\(seen)")
        // Died of the watchdog's SIGABRT (6), not of the SIGKILL (9) TimeoutAbortSec= sends to a
        // process that hangs in its crash handler.
        #expect(seen["ExecMainStatus"] == "6", "\(seen)")
        // The last ping came at most WatchdogSec/2 before the freeze (pings every 2s).
        #expect(ContinuousClock.now - frozenAt >= .seconds(1.5), "killed long before WatchdogSec=4s could expire")

        var restarted: [String: String] = [:]
        let back = try await eventually(timeout: .seconds(60), every: .milliseconds(200)) {
            restarted = try await systemd.properties(["ActiveState", "SubState", "NRestarts", "Result"], of: unit)
            return restarted["ActiveState"] == "active" && restarted["NRestarts"] == "1"
        }
        #expect(back, "not restarted: \(restarted)")
        let after = try await systemd.property("MainPID", of: unit)
        #expect(after != before["MainPID"] && after != "0", "same main process \(after)")
        print(
            "figure: frozen → active again in \(milliseconds(ContinuousClock.now - frozenAt)) ms (WatchdogSec=4s, RestartSec=2s)"
        )
    }

    /// DigitalOcean answers every request 12 s after it comes (three times WatchdogSec=4s, within
    /// the 30 s request timeout) for 36 s, and a row is inserted meanwhile: the loop waits on
    /// requests within their deadlines, which the watchdog counts as life. systemd never goes
    /// WatchdogSec= without a ping, restarts nothing, and the row converges.
    func slowDigitalOceanIsNoReasonToRestart() async throws {
        let restartsBefore = try await systemd.property("NRestarts", of: unit)
        func withheld() async throws -> Int {
            try await systemd.journalEntries(["_SYSTEMD_UNIT=\(unit)"]).filter {
                $0["MESSAGE"]?.contains("withholding WATCHDOG=1") == true
            }.count
        }
        let withheldBefore = try await withheld()
        sim.simulator.updateFaults { $0.latencySeconds = 12 }
        defer { sim.simulator.updateFaults { $0.latencySeconds = 0 } }
        let started = ContinuousClock.now
        let startedDate = Date()
        let startedMonotonic = monotonicSeconds()
        var pings: [Double] = []
        var seen: [String: String] = [:]
        var id: UUID?
        while ContinuousClock.now - started < .seconds(36) {
            seen = try await systemd.properties(["NRestarts", "WatchdogTimestampMonotonic", "ActiveState"], of: unit)
            if let micro = seen["WatchdogTimestampMonotonic"].flatMap(Double.init), micro > 0,
                pings.last.map({ micro / 1e6 > $0 }) ?? true
            {
                pings.append(micro / 1e6)
            }
            if seen["NRestarts"] != restartsBefore { break }
            if id == nil, ContinuousClock.now - started >= .seconds(2) {
                id = try await db.query(
                    "INSERT INTO servers (name) VALUES ('web-3.system-test') RETURNING id"
                ).single().decode(UUID.self, "id")
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        sim.simulator.updateFaults { $0.latencySeconds = 0 }
        let ended = ContinuousClock.now
        let endedMonotonic = monotonicSeconds()
        #expect(seen["NRestarts"] == restartsBefore, "restarted while DigitalOcean was slow: \(seen)")
        #expect(seen["ActiveState"] == "active", "\(seen)")
        let marks =
            [pings.last { $0 <= startedMonotonic } ?? startedMonotonic]
            + pings.filter { $0 > startedMonotonic } + [endedMonotonic]
        let longest = zip(marks, marks.dropFirst()).map { $1 - $0 }.max() ?? 0
        #expect(longest < 4, "systemd went \(longest) s without WATCHDOG=1 (WatchdogSec=4s)")
        #expect(try await withheld() == withheldBefore, "the daemon withheld its pings while DigitalOcean was slow")
        let requests = sim.simulator.requestLog().filter { $0.path.hasPrefix("/v2") && $0.time >= startedDate }
        #expect(requests.count >= 3, "DigitalOcean was hardly asked anything: \(requests.map(\.path))")

        let row = try #require(id, "no row inserted")
        var status = ""
        let converged = try await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
            status = try await db.query("SELECT status FROM servers WHERE id = \(row)").single().decode(
                String.self,
                "status"
            )
            return status == "active"
        }
        #expect(converged, "the row inserted while DigitalOcean was slow is \(status)")
        print(
            "figure: DigitalOcean answering after 12 s for 36 s under WatchdogSec=4s: NRestarts \(restartsBefore) → \(seen["NRestarts"] ?? "?"), longest time without WATCHDOG=1 \(String(format: "%.1f", longest)) s (\(pings.count) pings), \(requests.count) requests; the row inserted meanwhile active \(milliseconds(ContinuousClock.now - ended)) ms after it ended"
        )
        #expect(try await systemd.property("NRestarts", of: unit) == restartsBefore)
    }

    // MARK: Stop

    /// A create is in flight (the simulator answers after 3s) when `systemctl stop` comes: the
    /// daemon says STOPPING, the unit is `deactivating`, the answer is recorded, and it exits 0.
    func stopWaitsForTheRequestInFlightAndExitsZero() async throws {
        sim.simulator.updateFaults { $0.latencySeconds = 3 }
        defer { sim.simulator.updateFaults { $0.latencySeconds = 0 } }
        let id = try await db.query(
            "INSERT INTO servers (name) VALUES ('web-2.system-test') RETURNING id"
        ).single().decode(UUID.self, "id")
        let tag = "citrus-server:\(id.uuidString.lowercased())"
        // The simulator logs a request when it arrives; its answer is 3s away.
        let sent = await eventually(timeout: .seconds(20), every: .milliseconds(50)) {
            sim.simulator.requestLog().contains { $0.method == "POST" && $0.body?.contains(tag) == true }
        }
        try #require(sent, "the create for web-2 never reached the simulator")

        let restartsBefore = try await systemd.property("NRestarts", of: unit)
        let stopAt = ContinuousClock.now
        let stop = try await systemd.systemctl("stop", "--no-block", unit)
        try #require(stop.succeeded, "\(stop)")
        var stopping: [String: String] = [:]
        let saidStopping = try await eventually(timeout: .seconds(5), every: .milliseconds(100)) {
            stopping = try await systemd.properties(["ActiveState", "StatusText"], of: unit)
            return stopping["ActiveState"] == "deactivating" && stopping["StatusText"]?.hasPrefix("stopping") == true
        }
        #expect(saidStopping, "no STOPPING while deactivating: \(stopping)")

        try await systemd.waitFor(unit: unit, activeState: "inactive", timeout: .seconds(30))
        let stopped = ContinuousClock.now - stopAt
        print("figure: systemctl stop with a create in flight → inactive in \(milliseconds(stopped)) ms")
        #expect(stopped >= .seconds(1), "exited without waiting for the create in flight")

        let end = try await systemd.properties(
            ["Result", "ExecMainCode", "ExecMainStatus", "ExecMainPID", "NRestarts", "ActiveState", "SubState"],
            of: unit
        )
        #expect(end["Result"] == "success", "\(end)")
        #expect(end["ExecMainCode"] == "1" && end["ExecMainStatus"] == "0", "did not exit 0: \(end)")
        #expect(restartsBefore == "1")
        // Longer than RestartSec= (2s): a clean exit is not restarted.
        try await Task.sleep(for: .seconds(2.5))
        #expect(try await systemd.property("ActiveState", of: unit) == "inactive")

        // The answer that came during the stop was recorded before the exit.
        let row = try await db.query("SELECT status, digital_ocean_id FROM servers WHERE id = \(id)").single()
        let droplet = try row.decode(String?.self, "digital_ocean_id")
        let made = sim.simulator.droplets().filter { $0.tags.contains(tag) }
        #expect(made.count == 1)
        #expect(
            droplet != nil && droplet == made.first.map { String($0.id) },
            "the accepted droplet was not recorded: \(String(describing: droplet)), made \(made.map(\.id))"
        )
        #expect(try row.decode(String.self, "status") == "provisioning")
        let accepted = try await db.query(
            "SELECT count(*) AS n FROM server_events WHERE server_id = \(id) AND kind = 'create_accepted'"
        ).single().decode(Int.self, "n")
        #expect(accepted == 1, "create_accepted not in server_events")
    }

    // MARK: Bad configuration

    /// Exit 78 (EX_CONFIG), one line saying what to fix, and no restart (RestartPreventExitStatus=78).
    func badConfigurationExits78AndIsNotRestarted() async throws {
        let cases = [
            (ServiceUnderSystemdTests.bogusOrphansUnit, "--orphans \"bogus\" is not a policy"),
            (ServiceUnderSystemdTests.noTokenUnit, "no DigitalOcean token"),
        ]
        for (name, _) in cases {
            let start = try await systemd.systemctl("start", "--no-block", name)
            try #require(start.succeeded, "\(start)")
        }
        for (name, _) in cases {
            try await systemd.waitFor(unit: name, activeState: "failed", timeout: .seconds(30))
        }
        // Longer than RestartSec= (2s here): a restart would have happened by now.
        try await Task.sleep(for: .seconds(3))
        for (name, line) in cases {
            let state = try await systemd.properties(
                ["ActiveState", "Result", "ExecMainStatus", "NRestarts"],
                of: name
            )
            #expect(state["ActiveState"] == "failed", "\(name): \(state)")
            #expect(state["Result"] == "exit-code", "\(name): \(state)")
            #expect(state["ExecMainStatus"] == "78", "\(name): \(state)")
            #expect(state["NRestarts"] == "0", "\(name) was restarted: \(state)")
            let messages = try await systemd.journalEntries(["_SYSTEMD_UNIT=\(name)"]).compactMap { $0["MESSAGE"] }
            #expect(
                messages.contains { $0.contains("configuration error") && $0.contains(line) },
                "\(name): \(messages)"
            )
        }
    }

    // MARK: Start-up time

    /// `systemctl start` of a Type=notify unit returns once READY=1 came: the time an operator waits.
    func timedStart() async throws {
        let startedAt = ContinuousClock.now
        let start = try await systemd.run(["/bin/systemctl", "start", unit], timeout: .seconds(60))
        let elapsed = ContinuousClock.now - startedAt
        try #require(start.succeeded, "\(start)")
        #expect(try await systemd.property("ActiveState", of: unit) == "active")
        print("figure: systemctl start → active in \(milliseconds(elapsed)) ms (database up, 2 rows)")
        let stop = try await systemd.run(["/bin/systemctl", "stop", unit], timeout: .seconds(30))
        #expect(stop.succeeded, "\(stop)")
        let end = try await systemd.properties(["Result", "ExecMainCode", "ExecMainStatus"], of: unit)
        #expect(end["Result"] == "success" && end["ExecMainCode"] == "1" && end["ExecMainStatus"] == "0", "\(end)")
    }
}

/// CLOCK_MONOTONIC, the clock of systemd's `…Monotonic` timestamps (the sandbox has no time namespace).
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

func milliseconds(_ duration: Duration) -> Int64 {
    duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
}
