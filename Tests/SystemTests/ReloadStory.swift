import CitrusTestKit
import Foundation
import Postgres
import Testing

extension Story {
    /// `systemctl reload` rotates the token with no failed request: the simulator takes only the old
    /// token, the credential's source file gets a new one, the simulator takes both, reload, then
    /// only the new one; a new row converges, the unit stayed active in the same process, nothing
    /// got a 401, and the journal says what was reloaded (never the token). Then SIGHUP itself
    /// (what ExecReload= sends) is not fatal, and an empty token file on reload keeps the token.
    func reloadRotatesTheTokenWithoutAFailedRequest() async throws {
        let newToken = "dop_v1_rotated_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased())"
        let before = try await systemd.properties(["MainPID", "NRestarts", "ActiveState"], of: unit)
        try #require(before["ActiveState"] == "active", "\(before)")
        #expect(sim.simulator.tokens == [token], "the simulator takes only the old token at first")

        try writeToken(newToken)
        sim.simulator.setTokens([token, newToken])
        let reloadsBefore = try await reloadLines().count
        let reload = try await systemd.run(["/bin/systemctl", "reload", unit], timeout: .seconds(30))
        if !reload.succeeded {
            let journal = try await systemd.journalctl("--no-pager", "-n", "40", "-u", unit)
            Issue.record("systemctl reload: \(reload)\n\(journal.stdout)")
            return
        }
        // Type=notify under systemd 252: `systemctl reload` returns when ExecReload= is done; the
        // daemon's journal line says the swap happened.
        var lines: [String] = []
        let reloaded = try await eventually(timeout: .seconds(10), every: .milliseconds(100)) {
            lines = try await reloadLines()
            return lines.count > reloadsBefore
        }
        try #require(reloaded, "no reload line in the journal: \(lines)")
        let line = lines[reloadsBefore]
        #expect(line.contains("DigitalOcean token from the credential file refreshed by ExecReload="), "\(line)")
        #expect(line.contains("(changed)"), "\(line)")
        #expect(line.contains("log level info"), "\(line)")
        #expect(line.contains("needs a restart"), "\(line)")
        sim.simulator.setTokens([newToken])

        let id = try await db.query("INSERT INTO servers (name) VALUES ('web-reload.system-test') RETURNING id")
            .single().decode(UUID.self, "id")
        var status = ""
        let converged = try await eventually(timeout: .seconds(40), every: .milliseconds(200)) {
            status = try await db.query("SELECT status FROM servers WHERE id = \(id)").single().decode(
                String.self,
                "status"
            )
            return status == "active"
        }
        #expect(converged, "the row inserted after the rotation did not converge: \(status)")

        // SIGHUP alone (no refreshed file needed) reloads and does not kill.
        let hangup = try await systemd.systemctl("kill", "--kill-who=main", "--signal=SIGHUP", unit)
        try #require(hangup.succeeded, "\(hangup)")
        let hungUp = try await eventually(timeout: .seconds(10), every: .milliseconds(100)) {
            try await reloadLines().count > reloadsBefore + 1
        }
        #expect(hungUp, "SIGHUP did not reload")

        // A bad new token (empty file) keeps the current one and says so.
        try writeToken("")
        let bad = try await systemd.run(["/bin/systemctl", "reload", unit], timeout: .seconds(30))
        #expect(bad.succeeded, "\(bad)")
        var messages: [String] = []
        let refused = try await eventually(timeout: .seconds(10), every: .milliseconds(100)) {
            messages = try await systemd.journalEntries(["_SYSTEMD_UNIT=\(unit)"]).compactMap { $0["MESSAGE"] }
            return messages.contains { $0.hasPrefix("reload: kept the current DigitalOcean token") }
        }
        #expect(refused, "no error for an empty token file on reload")
        try writeToken(newToken)
        _ = try await systemd.run(["/bin/systemctl", "reload", unit], timeout: .seconds(30))
        // Still working with the new token after the refused one.
        let id2 = try await db.query("INSERT INTO servers (name) VALUES ('web-reload-2.system-test') RETURNING id")
            .single().decode(UUID.self, "id")
        let converged2 = try await eventually(timeout: .seconds(40), every: .milliseconds(200)) {
            try await db.query("SELECT status FROM servers WHERE id = \(id2)").single().decode(String.self, "status")
                == "active"
        }
        #expect(converged2, "no longer converging after a refused token")

        let after = try await systemd.properties(["MainPID", "NRestarts", "ActiveState", "SubState"], of: unit)
        #expect(after["ActiveState"] == "active" && after["SubState"] == "running", "\(after)")
        #expect(after["MainPID"] == before["MainPID"], "the daemon was replaced: \(before) → \(after)")
        #expect(after["NRestarts"] == before["NRestarts"], "restarted: \(before) → \(after)")
        let failed = sim.simulator.requestLog().filter { $0.status == 401 }
        #expect(failed.isEmpty, "requests refused across the rotation: \(failed.map { "\($0.method) \($0.path)" })")

        _ = try await systemd.run(["/bin/journalctl", "--sync"])
        let journal = try await systemd.journalctl("--no-pager", "-o", "verbose", "-u", unit)
        #expect(journal.succeeded && journal.stdout.contains("reloaded: "), "\(journal.stderr)")
        #expect(!journal.stdout.contains(newToken), "the new token is in the journal")
        #expect(!journal.stdout.contains(token), "the old token is in the journal")
    }

    /// The daemon's "reloaded: …" journal lines, oldest first.
    private func reloadLines() async throws -> [String] {
        try await systemd.journalEntries(["_SYSTEMD_UNIT=\(unit)"]).compactMap { $0["MESSAGE"] }.filter {
            $0.hasPrefix("reloaded: ")
        }
    }

    /// Replaces the credential's source file as an operator would: a new file, renamed over it.
    private func writeToken(_ value: String) throws {
        let staging = installation.tokenFile + ".new"
        guard
            FileManager.default.createFile(
                atPath: staging,
                contents: Data(value.utf8),
                attributes: [.posixPermissions: 0o600]
            )
        else {
            throw SystemdHarnessError("could not write \(staging)")
        }
        guard rename(staging, installation.tokenFile) == 0 else {
            throw SystemdHarnessError("could not rename \(staging)")
        }
    }
}
